import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

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
  /** How long a Redis command may take before the call falls back to in-process limits, ms. */
  redisTimeoutMs: number;
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
  /** Failed password checks per account within loginWindowSeconds before every attempt on it is refused until the window ends; 0 = no limit. */
  loginMaxFailures: number;
  loginWindowSeconds: number;
  /** Default per-app rate limit (requests per second) when the app sets none. 0 = unlimited. */
  defaultRateLimit: number;
  /** Open developer registration through the Ulord dialect. */
  openRegistration: boolean;
  /** Seconds incoming ledger payments stay unmatured (held) before they can be spent; 0 = at once. */
  ledgerHoldSeconds: number;
  /** In-process job runner concurrency; 0 disables the in-process runner (use `menhu worker`). */
  jobConcurrency: number;
  logLevel: string;
  bqpPrefix: string;
  /** Schema file (YAML or JSON) declaring the BQP objects; default: the shipped example. */
  bqpSchema: string;
  trustProxy: boolean;
  photos: PhotosConfig;
  requestLog: RequestLogConfig;
}

/** The request log and usage aggregates (services/usage). 0 turns a limit off. */
export interface RequestLogConfig {
  /** Days a request stays in the log. */
  days: number;
  /** Most rows kept in the log (the oldest go first). */
  maxRows: number;
  /** Days the hourly usage aggregates are kept. */
  usageDays: number;
}

/** Photo restoration jobs (services/photos, Fangtang dialect). */
export interface PhotosConfig {
  /** Largest accepted input in pixels (width × height); beyond it uploads are refused. */
  maxPixels: number;
  /** Largest accepted upload in bytes. */
  maxBytes: number;
  /** Photo jobs processed at once (each in its own child process). */
  concurrency: number;
  /** onnxruntime intra-op threads per job; 0 = onnxruntime's default (one per core). */
  threads: number;
  /** Super-resolution factor: 2, 3, 4 or 8 (the weights the npm package ships). */
  srScale: number;
  /** Super-resolution: one onnxruntime run reads at most tile² input pixels (larger images go in tiles). */
  tile: number;
  /** Path of an ONNX colourization model (contract in docs/fangtang.md); empty = colour refused. */
  colourModel: string;
  /** How long inputs and results are kept after a job ends, ms. */
  retentionMs: number;
  /** A job not finished this long after upload is failed and refunded, ms. */
  jobTimeoutMs: number;
  /** Lease of a running photo job, ms: a job whose worker died is taken again by another after this. */
  leaseMs: number;
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
  const photoMax = int(env, 'MENHU_PHOTOS_MAX_PIXELS', 2_000_000);
  const cfg: Config = {
    dataDir: resolve(env.MENHU_DATA ?? 'data'),
    host,
    port,
    publicUrl: env.MENHU_PUBLIC_URL ?? '',
    databaseUrl: env.DATABASE_URL ?? '',
    redisUrl: env.REDIS_URL ?? '',
    redisPrefix: env.MENHU_REDIS_PREFIX ?? 'menhu:',
    redisTimeoutMs: int(env, 'MENHU_REDIS_TIMEOUT_MS', 500),
    masterKey: env.MENHU_MASTER_KEY ?? '',
    s3,
    bodyLimit: int(env, 'MENHU_BODY_LIMIT', 1024 * 1024),
    uploadLimit: int(env, 'MENHU_UPLOAD_LIMIT', 50 * 1024 * 1024),
    secretGraceSeconds: int(env, 'MENHU_SECRET_GRACE', 24 * 3600),
    hmacSkewSeconds: int(env, 'MENHU_HMAC_SKEW', 300),
    defaultRateLimit: int(env, 'MENHU_RATE_LIMIT', 0),
    loginMaxFailures: int(env, 'MENHU_LOGIN_MAX_FAILURES', 10),
    loginWindowSeconds: int(env, 'MENHU_LOGIN_WINDOW', 900),
    openRegistration: bool(env, 'MENHU_OPEN_REGISTRATION', true),
    ledgerHoldSeconds: int(env, 'MENHU_LEDGER_HOLD_SECONDS', 0),
    jobConcurrency: int(env, 'MENHU_JOB_CONCURRENCY', 1),
    logLevel: env.LOG_LEVEL ?? 'info',
    bqpPrefix: env.MENHU_BQP_PREFIX ?? '/api',
    bqpSchema: resolve(env.MENHU_BQP_SCHEMA || fileURLToPath(new URL('../../examples/bqp-schema.yaml', import.meta.url))),
    trustProxy: bool(env, 'MENHU_TRUST_PROXY', false),
    photos: {
      maxPixels: photoMax,
      maxBytes: int(env, 'MENHU_PHOTOS_MAX_BYTES', 20 * 1024 * 1024),
      concurrency: int(env, 'MENHU_PHOTOS_CONCURRENCY', 1),
      threads: int(env, 'MENHU_PHOTOS_THREADS', 0),
      srScale: int(env, 'MENHU_PHOTOS_SR_SCALE', 2),
      // by default every upload within the size cap goes through the network in one run
      tile: int(env, 'MENHU_PHOTOS_TILE', Math.ceil(Math.sqrt(photoMax))),
      colourModel: env.MENHU_PHOTOS_COLOUR_MODEL ?? '',
      retentionMs: int(env, 'MENHU_PHOTOS_RETENTION_S', 3600) * 1000,
      jobTimeoutMs: int(env, 'MENHU_PHOTOS_JOB_TIMEOUT_S', 3600) * 1000,
      leaseMs: Math.max(1, int(env, 'MENHU_PHOTOS_LEASE_S', 60)) * 1000,
    },
    requestLog: {
      days: int(env, 'MENHU_REQUEST_LOG_DAYS', 7),
      maxRows: int(env, 'MENHU_REQUEST_LOG_MAX_ROWS', 1_000_000),
      usageDays: int(env, 'MENHU_USAGE_DAYS', 400),
    },
    ...overrides,
  };
  if (!cfg.publicUrl) cfg.publicUrl = `http://${cfg.host === '0.0.0.0' ? '127.0.0.1' : cfg.host}:${cfg.port}`;
  cfg.publicUrl = cfg.publicUrl.replace(/\/+$/, '');
  return cfg;
}
