/**
 * Backup and restore of the embedded profile: the SQLite database (online backup API, consistent
 * while the server runs) plus every other file of the data folder (blobs, master key, log key).
 *
 * A backup is a folder with `manifest.json` written last: a folder without one is incomplete and
 * restore refuses it. Restore checks every file's SHA-256 against the manifest before anything is
 * put in place, builds the new data folder beside the target and renames it into place, so a failed
 * restore leaves nothing half-written.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import SQLite from 'better-sqlite3';
import type { Config } from './config.js';
import { sqliteFile } from './db/index.js';

export const BACKUP_FORMAT = 'menhu-backup/1';
const DB_FILE = 'menhu.sqlite';

export interface ManifestFile {
  path: string;
  size: number;
  sha256: string;
  mode: number;
}

export interface Manifest {
  format: typeof BACKUP_FORMAT;
  created_at: string;
  database: string;
  files: ManifestFile[];
}

export type Progress = (phase: 'database' | 'files' | 'verify', done: number, total: number) => void;

export class BackupError extends Error {}

function embeddedOnly(cfg: Config): void {
  if (cfg.databaseUrl && !/^(sqlite:|file:)/.test(cfg.databaseUrl)) {
    throw new BackupError('backup/restore cover the embedded profile (SQLite + local blobs); on PostgreSQL use pg_dump / pg_restore');
  }
  if (cfg.s3) throw new BackupError('blobs are in an S3 bucket: back the bucket up with its own tools (versioning, replication)');
}

async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

async function walk(root: string, dir = root): Promise<string[]> {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await walk(root, p)));
    else if (e.isFile()) out.push(relative(root, p));
  }
  return out.sort();
}

async function isEmptyOrMissing(dir: string): Promise<boolean> {
  if (!existsSync(dir)) return true;
  return (await readdir(dir)).length === 0;
}

/** Writes a backup of the data folder into `dest` (which must not exist or be empty). */
export async function backup(cfg: Config, dest: string, progress: Progress = () => {}): Promise<Manifest> {
  embeddedOnly(cfg);
  dest = resolve(dest);
  const dbFile = resolve(sqliteFile(cfg));
  if (!(await isEmptyOrMissing(dest))) throw new BackupError(`${dest} is not empty; choose a new folder`);
  if (!existsSync(dbFile)) throw new BackupError(`no database at ${dbFile}: nothing to back up`);
  if (dest === cfg.dataDir || dest.startsWith(cfg.dataDir + sep)) throw new BackupError('the backup folder cannot be inside the data folder');
  await mkdir(dest, { recursive: true, mode: 0o700 });

  const files: ManifestFile[] = [];
  // 1. The database, through SQLite's online backup (readers and writers carry on meanwhile).
  const src = new SQLite(dbFile, { readonly: true, fileMustExist: true });
  try {
    await src.backup(join(dest, DB_FILE), {
      progress: ({ totalPages, remainingPages }) => {
        progress('database', totalPages - remainingPages, totalPages);
        return 256;
      },
    });
  } finally {
    src.close();
  }
  await chmod(join(dest, DB_FILE), 0o600);

  // 2. Every other file of the data folder. Blobs are written to a temp name and renamed, so a
  // file we see is complete; temp files are skipped.
  const rest = (await walk(cfg.dataDir)).filter((p) => !p.startsWith(DB_FILE) && !p.endsWith('.tmp'));
  let done = 0;
  for (const p of rest) {
    const from = join(cfg.dataDir, p);
    const to = join(dest, p);
    await mkdir(dirname(to), { recursive: true, mode: 0o700 });
    try {
      await copyFile(from, to);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue; // swept meanwhile
      throw e;
    }
    const st = await stat(from).catch(() => null);
    if (st) await chmod(to, st.mode & 0o777);
    progress('files', ++done, rest.length);
  }

  // 3. Manifest, last.
  for (const p of await walk(dest)) {
    const st = await stat(join(dest, p));
    files.push({ path: p.split(sep).join('/'), size: st.size, sha256: await sha256File(join(dest, p)), mode: st.mode & 0o777 });
  }
  const manifest: Manifest = { format: BACKUP_FORMAT, created_at: new Date().toISOString(), database: DB_FILE, files };
  await writeFile(join(dest, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n', { mode: 0o600 });
  return manifest;
}

/** Checks a backup folder against its manifest; returns the manifest or throws naming the first problem. */
export async function verifyBackup(dir: string, progress: Progress = () => {}): Promise<Manifest> {
  dir = resolve(dir);
  let manifest: Manifest;
  try {
    manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as Manifest;
  } catch {
    throw new BackupError(`${dir} has no readable manifest.json: not a complete menhu backup`);
  }
  if (manifest.format !== BACKUP_FORMAT || !Array.isArray(manifest.files)) throw new BackupError(`unknown backup format ${String(manifest.format)}`);
  if (!manifest.files.some((f) => f.path === DB_FILE)) throw new BackupError('the backup holds no database');
  let done = 0;
  for (const f of manifest.files) {
    if (f.path.includes('..') || f.path.startsWith('/')) throw new BackupError(`bad path in manifest: ${f.path}`);
    const p = join(dir, f.path);
    const st = await stat(p).catch(() => null);
    if (!st) throw new BackupError(`missing file ${f.path}`);
    if (st.size !== f.size || (await sha256File(p)) !== f.sha256) throw new BackupError(`file ${f.path} does not match the manifest (corrupt or changed)`);
    progress('verify', ++done, manifest.files.length);
  }
  return manifest;
}

/**
 * Restores a backup into the configured data folder, which must be empty or missing.
 * The new folder is assembled beside it and renamed into place.
 */
export async function restore(cfg: Config, from: string, progress: Progress = () => {}): Promise<Manifest> {
  embeddedOnly(cfg);
  if (cfg.databaseUrl) throw new BackupError('restore writes the default database file of the data folder; unset DATABASE_URL');
  const manifest = await verifyBackup(from, progress);
  const target = cfg.dataDir;
  if (!(await isEmptyOrMissing(target))) throw new BackupError(`${target} is not empty; restore into an empty data folder`);
  const staging = `${target}.restore-${process.pid}`;
  await rm(staging, { recursive: true, force: true });
  try {
    let done = 0;
    for (const f of manifest.files) {
      const to = join(staging, f.path);
      await mkdir(dirname(to), { recursive: true, mode: 0o700 });
      await copyFile(join(resolve(from), f.path), to);
      await chmod(to, f.mode);
      progress('files', ++done, manifest.files.length);
    }
    if (existsSync(target)) await rm(target, { recursive: true });
    await rename(staging, target);
  } catch (e) {
    await rm(staging, { recursive: true, force: true });
    throw e;
  }
  return manifest;
}
