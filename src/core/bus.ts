/**
 * A small message bus between the processes of one installation, for cache invalidation
 * (an edited app, link or report is dropped from every server's cache). Through Redis pub/sub when
 * REDIS_URL is set; in process otherwise. Delivery is best effort: a subscriber whose connection
 * dropped is told (onResync) so it can clear its caches instead of serving stale entries; caches
 * keep a short TTL as the last safety net.
 */
import { Redis } from 'ioredis';
import type { Logger } from 'pino';

export type BusHandler = (message: string) => void;

export interface Bus {
  publish(topic: string, message: string): void;
  subscribe(topic: string, handler: BusHandler, onResync?: () => void): void;
  mode(): 'local' | 'redis';
  close(): Promise<void>;
}

class LocalBus implements Bus {
  private handlers = new Map<string, Set<BusHandler>>();
  publish(topic: string, message: string): void {
    for (const h of this.handlers.get(topic) ?? []) h(message);
  }
  subscribe(topic: string, handler: BusHandler): void {
    let set = this.handlers.get(topic);
    if (!set) this.handlers.set(topic, (set = new Set()));
    set.add(handler);
  }
  mode(): 'local' {
    return 'local';
  }
  async close(): Promise<void> {
    this.handlers.clear();
  }
}

class RedisBus implements Bus {
  private pub: Redis;
  private sub: Redis;
  private local = new LocalBus();
  private resync = new Set<() => void>();
  private topics = new Set<string>();
  private everReady = false;

  constructor(url: string, private readonly prefix: string, log: Logger) {
    const opts = { lazyConnect: false, maxRetriesPerRequest: 0, connectTimeout: 2000, retryStrategy: (n: number) => Math.min(n * 200, 2000) };
    this.pub = new Redis(url, { ...opts, enableOfflineQueue: false });
    this.sub = new Redis(url, { ...opts, enableOfflineQueue: true });
    let warned = false;
    const onError = (e: Error) => {
      if (!warned) log.warn({ err: e.message }, 'bus: redis unreachable; caches fall back to their TTL');
      warned = true;
    };
    this.pub.on('error', onError);
    this.sub.on('error', onError);
    this.sub.on('message', (channel: string, message: string) => {
      if (channel.startsWith(this.prefix)) this.local.publish(channel.slice(this.prefix.length), message);
    });
    this.sub.on('ready', () => {
      warned = false;
      // after a reconnect, messages may have been missed: let every subscriber start over
      if (this.everReady) for (const r of this.resync) r();
      this.everReady = true;
    });
  }

  publish(topic: string, message: string): void {
    // always local first (this process must not wait for Redis to see its own change)
    this.local.publish(topic, message);
    if (this.pub.status === 'ready') this.pub.publish(this.prefix + topic, message).catch(() => {});
  }

  subscribe(topic: string, handler: BusHandler, onResync?: () => void): void {
    this.local.subscribe(topic, handler);
    if (onResync) this.resync.add(onResync);
    if (!this.topics.has(topic)) {
      this.topics.add(topic);
      this.sub.subscribe(this.prefix + topic).catch(() => {});
    }
  }

  mode(): 'redis' {
    return 'redis';
  }

  async close(): Promise<void> {
    this.pub.disconnect();
    this.sub.disconnect();
    await this.local.close();
  }
}

export function createBus(redisUrl: string, prefix: string, log: Logger): Bus {
  return redisUrl ? new RedisBus(redisUrl, `${prefix}bus:`, log) : new LocalBus();
}
