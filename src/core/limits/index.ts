import type { Logger } from 'pino';
import { Redis } from 'ioredis';

export interface HitResult {
  allowed: boolean;
  /** Requests left in this window. */
  remaining: number;
  /** Milliseconds until the window resets. */
  resetMs: number;
}

/**
 * Rate limits (fixed windows) and nonce memory. In process by default; in Redis when configured,
 * so that every server process shares them. When Redis cannot be reached each call falls back to
 * the in-process store (limits become per process) and the outage is logged once, then its end.
 */
export interface Limits {
  hit(key: string, limit: number, windowMs: number): Promise<HitResult>;
  /** Hits of `key` in its current window so far, without adding one, and ms until that window resets. */
  count(key: string, windowMs: number): Promise<{ n: number; resetMs: number }>;
  /** True the first time a nonce is seen within ttlMs; false for a replay. */
  firstUse(nonce: string, ttlMs: number): Promise<boolean>;
  /** 'memory', 'redis' or 'redis-fallback' (Redis configured but unreachable right now). */
  mode(): string;
  close(): Promise<void>;
}

export class MemoryLimits implements Limits {
  private windows = new Map<string, { count: number; reset: number }>();
  /**
   * Nonces in generations, newest first: a nonce goes into the newest set, a new generation starts
   * every ttl/2 and the oldest of three is dropped whole. So a nonce is remembered for at least its
   * ttl and at most 1.5 × ttl, with no expiry time per nonce and no sweep over them — a sweep over
   * per-nonce expiries paused the event loop ~115 ms per 3 million nonces (5,000 signed requests/s
   * over a 10-minute window), every 10 s.
   */
  private nonces: Set<string>[] = [new Set()];
  private genStart: number;
  private genMs = 0;
  private sweeper: NodeJS.Timeout;

  constructor(private readonly now: () => number = Date.now) {
    this.genStart = now();
    this.sweeper = setInterval(() => this.sweep(), 10_000);
    this.sweeper.unref();
  }

  hitSync(key: string, limit: number, windowMs: number): HitResult {
    const t = this.now();
    let w = this.windows.get(key);
    if (!w || w.reset <= t) {
      w = { count: 0, reset: t + windowMs };
      this.windows.set(key, w);
    }
    w.count++;
    return { allowed: w.count <= limit, remaining: Math.max(0, limit - w.count), resetMs: w.reset - t };
  }

  async hit(key: string, limit: number, windowMs: number): Promise<HitResult> {
    return this.hitSync(key, limit, windowMs);
  }

  async count(key: string, windowMs: number): Promise<{ n: number; resetMs: number }> {
    const t = this.now();
    const w = this.windows.get(key);
    return w && w.reset > t ? { n: w.count, resetMs: w.reset - t } : { n: 0, resetMs: windowMs };
  }

  firstUseSync(nonce: string, ttlMs: number): boolean {
    this.rotate(this.now(), Math.ceil(ttlMs / 2));
    for (const g of this.nonces) if (g.has(nonce)) return false;
    this.nonces[0].add(nonce);
    return true;
  }

  /** Nonces remembered now (all generations). */
  get nonceCount(): number {
    return this.nonces.reduce((n, g) => n + g.size, 0);
  }

  private rotate(t: number, genMs: number): void {
    if (genMs > this.genMs) this.genMs = genMs; // the longest ttl asked for sets the pace
    const passed = Math.floor((t - this.genStart) / this.genMs);
    if (!(passed >= 1)) return;
    if (passed >= 3) this.nonces = [new Set()];
    else for (let i = 0; i < passed; i++) this.nonces = [new Set<string>(), ...this.nonces].slice(0, 3);
    this.genStart += passed * this.genMs;
  }

  async firstUse(nonce: string, ttlMs: number): Promise<boolean> {
    return this.firstUseSync(nonce, ttlMs);
  }

  sweep(): void {
    const t = this.now();
    for (const [k, w] of this.windows) if (w.reset <= t) this.windows.delete(k);
    if (this.genMs > 0) this.rotate(t, this.genMs);
  }

  mode(): string {
    return 'memory';
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
  }
}

const HIT_SCRIPT = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
`;

export class RedisLimits implements Limits {
  readonly redis: Redis;
  private readonly fallback: MemoryLimits;
  private down = false;

  constructor(
    url: string,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
    private readonly prefix = 'menhu:',
    timeoutMs = 500,
  ) {
    this.fallback = new MemoryLimits(now);
    this.redis = new Redis(url, {
      lazyConnect: false,
      enableOfflineQueue: false, // fail fast while disconnected instead of queueing
      maxRetriesPerRequest: 0,
      connectTimeout: 2000,
      commandTimeout: timeoutMs,
      retryStrategy: (times) => Math.min(times * 200, 2000),
    });
    this.redis.on('error', () => {}); // reported through outage() below
    this.redis.on('ready', () => {
      if (this.down) {
        this.down = false;
        this.log.warn('redis is reachable again; rate limits and nonces are shared again');
      }
    });
    this.redis.defineCommand('menhuHit', { numberOfKeys: 1, lua: HIT_SCRIPT });
  }

  private outage(e: unknown): void {
    if (!this.down) {
      this.down = true;
      this.log.error({ err: String((e as Error)?.message ?? e) }, 'redis unreachable: rate limits and nonces fall back to this process');
    }
  }

  /** The Redis key of `key`'s window at time t: windows are aligned to the clock, so every server agrees on them. */
  private windowKey(key: string, t: number, windowMs: number): string {
    return `${this.prefix}rl:${key}:${Math.floor(t / windowMs)}`;
  }

  async hit(key: string, limit: number, windowMs: number): Promise<HitResult> {
    try {
      // the key outlives its window a little (expiry: two windows)
      const t = this.now();
      const n = await (this.redis as unknown as { menhuHit(k: string, ttl: number): Promise<number> }).menhuHit(this.windowKey(key, t, windowMs), windowMs * 2);
      return { allowed: n <= limit, remaining: Math.max(0, limit - n), resetMs: windowMs - (t % windowMs) };
    } catch (e) {
      this.outage(e);
      return this.fallback.hit(key, limit, windowMs);
    }
  }

  async count(key: string, windowMs: number): Promise<{ n: number; resetMs: number }> {
    try {
      const t = this.now();
      const v = await this.redis.get(this.windowKey(key, t, windowMs));
      return { n: Number(v ?? 0), resetMs: windowMs - (t % windowMs) };
    } catch (e) {
      this.outage(e);
      return this.fallback.count(key, windowMs);
    }
  }

  async firstUse(nonce: string, ttlMs: number): Promise<boolean> {
    try {
      const r = await this.redis.set(`${this.prefix}nonce:${nonce}`, '1', 'PX', ttlMs, 'NX');
      return r === 'OK';
    } catch (e) {
      this.outage(e);
      return this.fallback.firstUse(nonce, ttlMs);
    }
  }

  mode(): string {
    return this.down || this.redis.status !== 'ready' ? 'redis-fallback' : 'redis';
  }

  async close(): Promise<void> {
    await this.fallback.close();
    this.redis.disconnect();
  }
}

export function createLimits(redisUrl: string, log: Logger, now?: () => number, prefix?: string, timeoutMs?: number): Limits {
  return redisUrl ? new RedisLimits(redisUrl, log, now, prefix, timeoutMs) : new MemoryLimits(now);
}
