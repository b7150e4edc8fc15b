import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, readFile, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { Kysely } from 'kysely';
import type { Config } from '../config.js';
import type { BlobRow, DB } from '../db/schema.js';
import { DomainError } from '../errors.js';

/** Where bytes live. Metadata (size, type, hash, expiry) lives in the `blobs` table. */
export interface BlobBackend {
  readonly name: string;
  write(key: string, data: Buffer, contentType: string): Promise<void>;
  read(key: string): Promise<Buffer>;
  stream(key: string): Promise<Readable>;
  remove(key: string): Promise<void>;
}

const KEY_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}(\/[A-Za-z0-9][A-Za-z0-9._-]{0,127}){0,7}$/;

export function checkBlobKey(key: string): void {
  if (!KEY_RE.test(key) || key.includes('..')) throw new DomainError('VALIDATION', `invalid blob key ${JSON.stringify(key)}`, { field: 'key' });
}

export class LocalBackend implements BlobBackend {
  readonly name = 'local';
  constructor(readonly root: string) {}

  private path(key: string): string {
    checkBlobKey(key);
    return join(this.root, key);
  }

  async write(key: string, data: Buffer): Promise<void> {
    const file = this.path(key);
    await mkdir(dirname(file), { recursive: true });
    const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
    const fh = await open(tmp, 'wx', 0o600);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } catch (e) {
      await fh.close().catch(() => {});
      await rm(tmp, { force: true });
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOSPC' || code === 'EDQUOT') throw new DomainError('UNAVAILABLE', 'blob storage is full', { details: { code } });
      throw e;
    }
    await fh.close();
    await rename(tmp, file);
  }

  async read(key: string): Promise<Buffer> {
    try {
      return await readFile(this.path(key));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new DomainError('NOT_FOUND', 'blob not found');
      throw e;
    }
  }

  async stream(key: string): Promise<Readable> {
    const p = this.path(key);
    await stat(p).catch(() => {
      throw new DomainError('NOT_FOUND', 'blob not found');
    });
    return createReadStream(p);
  }

  async remove(key: string): Promise<void> {
    await rm(this.path(key), { force: true });
  }
}

export class S3Backend implements BlobBackend {
  readonly name = 's3';
  readonly client: S3Client;
  constructor(private readonly cfg: NonNullable<Config['s3']>) {
    this.client = new S3Client({
      endpoint: cfg.endpoint || undefined,
      region: cfg.region,
      forcePathStyle: cfg.forcePathStyle,
      credentials: cfg.accessKeyId ? { accessKeyId: cfg.accessKeyId, secretAccessKey: cfg.secretAccessKey } : undefined,
    });
  }

  async write(key: string, data: Buffer, contentType: string): Promise<void> {
    checkBlobKey(key);
    await this.client.send(new PutObjectCommand({ Bucket: this.cfg.bucket, Key: key, Body: data, ContentType: contentType }));
  }

  private async get(key: string) {
    checkBlobKey(key);
    try {
      return await this.client.send(new GetObjectCommand({ Bucket: this.cfg.bucket, Key: key }));
    } catch (e) {
      const name = (e as { name?: string }).name;
      if (name === 'NoSuchKey' || name === 'NotFound') throw new DomainError('NOT_FOUND', 'blob not found');
      throw e;
    }
  }

  async read(key: string): Promise<Buffer> {
    const out = await this.get(key);
    return Buffer.from(await out.Body!.transformToByteArray());
  }

  async stream(key: string): Promise<Readable> {
    const out = await this.get(key);
    return out.Body as Readable;
  }

  async remove(key: string): Promise<void> {
    checkBlobKey(key);
    await this.client.send(new DeleteObjectCommand({ Bucket: this.cfg.bucket, Key: key }));
  }
}

export interface PutOptions {
  contentType?: string;
  tenantId?: number | null;
  /** Epoch ms after which the sweeper deletes the blob; null = keep. */
  expiresAt?: number | null;
}

/**
 * The blob store: bytes in a backend, one row of metadata per blob. Bytes are written first and
 * the row second, so a row always points at complete bytes; a failed row insert removes the bytes.
 */
export class BlobStore {
  constructor(
    readonly backend: BlobBackend,
    private readonly db: Kysely<DB>,
    private readonly now: () => number,
    readonly maxBytes: number,
  ) {}

  async put(key: string, data: Buffer, opts: PutOptions = {}): Promise<BlobRow> {
    checkBlobKey(key);
    if (data.length > this.maxBytes) throw new DomainError('PAYLOAD_TOO_LARGE', `blob larger than ${this.maxBytes} bytes`);
    const row: BlobRow = {
      key,
      tenant_id: opts.tenantId ?? null,
      size: data.length,
      content_type: opts.contentType ?? 'application/octet-stream',
      sha256: createHash('sha256').update(data).digest('hex'),
      created_at: this.now(),
      expires_at: opts.expiresAt ?? null,
    };
    await this.backend.write(key, data, row.content_type);
    try {
      await this.db
        .insertInto('blobs')
        .values(row)
        .onConflict((oc) =>
          oc.column('key').doUpdateSet({ size: row.size, content_type: row.content_type, sha256: row.sha256, created_at: row.created_at, expires_at: row.expires_at, tenant_id: row.tenant_id }),
        )
        .execute();
    } catch (e) {
      await this.backend.remove(key).catch(() => {});
      throw e;
    }
    return row;
  }

  async stat(key: string): Promise<BlobRow | null> {
    const row = await this.db.selectFrom('blobs').selectAll().where('key', '=', key).executeTakeFirst();
    if (!row) return null;
    if (row.expires_at !== null && row.expires_at <= this.now()) return null;
    return row;
  }

  async get(key: string): Promise<{ row: BlobRow; data: Buffer }> {
    const row = await this.stat(key);
    if (!row) throw new DomainError('NOT_FOUND', 'blob not found');
    return { row, data: await this.backend.read(key) };
  }

  async stream(key: string): Promise<{ row: BlobRow; body: Readable }> {
    const row = await this.stat(key);
    if (!row) throw new DomainError('NOT_FOUND', 'blob not found');
    return { row, body: await this.backend.stream(key) };
  }

  /** Pass the transaction of the work that decides the expiry so both commit or neither. */
  async setExpiry(key: string, expiresAt: number | null, exec: Kysely<DB> = this.db): Promise<void> {
    await exec.updateTable('blobs').set({ expires_at: expiresAt }).where('key', '=', key).execute();
  }

  async delete(key: string): Promise<void> {
    await this.db.deleteFrom('blobs').where('key', '=', key).execute();
    await this.backend.remove(key);
  }

  /** Deletes expired blobs (rows first, so nothing points at missing bytes). Returns how many. */
  async sweep(limit = 500): Promise<number> {
    const rows = await this.db
      .selectFrom('blobs')
      .select('key')
      .where('expires_at', 'is not', null)
      .where('expires_at', '<=', this.now())
      .limit(limit)
      .execute();
    for (const { key } of rows) await this.delete(key);
    return rows.length;
  }
}

export function createBlobStore(cfg: Config, db: Kysely<DB>, now: () => number): BlobStore {
  const backend = cfg.s3 ? new S3Backend(cfg.s3) : new LocalBackend(join(cfg.dataDir, 'blobs'));
  return new BlobStore(backend, db, now, cfg.uploadLimit);
}

