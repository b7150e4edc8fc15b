import { resolve } from 'node:path';

/** One typed configuration, read from the environment (and CLI flags layered on top). */
export interface Config {
  /** Folder for the SQLite file, blobs, the master key and the log key. */
  dataDir: string;
  host: string;
  port: number;
  /** Public base URL used in short links and returned URLs; defaults to http://host:port. */
  publicUrl: string;
  /** PostgreSQL connection string; when empty the embedded SQLite file is used. */
  databaseUrl: string;
  /** Redis connection string; when empty rate limits and nonces live in process. */
  redisUrl: string;
  /** Prefix of every Redis key, so several deployments (or test databases) can share one Redis. */
  redisPrefix: string;
  /** Hex or base64 32-byte key; when empty it is generated once into dataDir/master.key. */
  masterKey: string;
  s3: { endpoint: string; bucket: string; region: string; accessKeyId: string; secretAccessKey: string; forcePathStyle: boolean } | null;
  /** Largest request body accepted, in bytes (uploads have their own limits per service). */
  bodyLimit: number;
  uploadLimit: number;
  /** Seconds a rotated secret stays valid. */
  secretGraceSeconds: number;
  /** Allowed clock skew for the native HMAC scheme, seconds; nonces are kept twice as long. */
  hmacSkewSeconds: number;
  /** Default per-app rate limit (requests per second) when the app sets none. 0 = unlimited. */
  defaultRateLimit: number;
  /** Open developer registration through the Ulord dialect. */
  openRegistration: boolean;
  /** In-process job runner concurrency; 0 disables the in-process runner (use `menhu worker`). */
  jobConcurrency: number;
  logLevel: string;
  bqpPrefix: string;
  trustProxy: boolean;
}

type Env = Record<string, string | undefined>;

/** A setting is wrong: the process refuses to start and says which one, without a stack trace. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

function int(env: Env, name: string, dflt: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return dflt;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new ConfigError(`${name} must be a non-negative integer, got ${JSON.stringify(raw)}`);
  return n;
}

function bool(env: Env, name: string, dflt: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return dflt;
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  throw new ConfigError(`${name} must be true or false, got ${JSON.stringify(raw)}`);
}

export function loadConfig(env: Env = process.env, overrides: Partial<Config> = {}): Config {
  const host = overrides.host ?? env.MENHU_HOST ?? '127.0.0.1';
  const port = overrides.port ?? int(env, 'PORT', 8080);
  const s3 = env.S3_BUCKET
    ? {
        endpoint: env.S3_ENDPOINT ?? '',
        bucket: env.S3_BUCKET,
        region: env.S3_REGION ?? 'us-east-1',
        accessKeyId: env.S3_ACCESS_KEY_ID ?? '',
        secretAccessKey: env.S3_SECRET_ACCESS_KEY ?? '',
        forcePathStyle: bool(env, 'S3_FORCE_PATH_STYLE', true),
      }
    : null;
  const cfg: Config = {
    dataDir: resolve(env.MENHU_DATA ?? 'data'),
    host,
    port,
    publicUrl: env.MENHU_PUBLIC_URL ?? '',
    databaseUrl: env.DATABASE_URL ?? '',
    redisUrl: env.REDIS_URL ?? '',
    redisPrefix: env.MENHU_REDIS_PREFIX ?? 'menhu:',
    masterKey: env.MENHU_MASTER_KEY ?? '',
    s3,
    bodyLimit: int(env, 'MENHU_BODY_LIMIT', 1024 * 1024),
    uploadLimit: int(env, 'MENHU_UPLOAD_LIMIT', 50 * 1024 * 1024),
    secretGraceSeconds: int(env, 'MENHU_SECRET_GRACE', 24 * 3600),
    hmacSkewSeconds: int(env, 'MENHU_HMAC_SKEW', 300),
    defaultRateLimit: int(env, 'MENHU_RATE_LIMIT', 0),
    openRegistration: bool(env, 'MENHU_OPEN_REGISTRATION', true),
    jobConcurrency: int(env, 'MENHU_JOB_CONCURRENCY', 1),
    logLevel: env.LOG_LEVEL ?? 'info',
    bqpPrefix: env.MENHU_BQP_PREFIX ?? '/api',
    trustProxy: bool(env, 'MENHU_TRUST_PROXY', false),
    ...overrides,
  };
  if (!cfg.publicUrl) cfg.publicUrl = `http://${cfg.host === '0.0.0.0' ? '127.0.0.1' : cfg.host}:${cfg.port}`;
  cfg.publicUrl = cfg.publicUrl.replace(/\/+$/, '');
  return cfg;
}
