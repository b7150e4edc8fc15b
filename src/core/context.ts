import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { BlobStore } from './blobs/index.js';
import type { Bus } from './bus.js';
import type { Config } from './config.js';
import type { SecretBox } from './crypto.js';
import type { Database } from './db/index.js';
import type { Jobs } from './jobs/index.js';
import type { Limits } from './limits/index.js';

/** Wall clock in epoch milliseconds. Tests pin it; nothing in a service calls Date.now() itself. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** A clock tests can move. */
export class ManualClock implements Clock {
  constructor(private t: number) {}
  now(): number {
    return this.t;
  }
  set(t: number): void {
    this.t = t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
}

export interface Ids {
  /** 32 lower-case hex characters. */
  hex32(): string;
  /** Sortable id: 12 hex of ms time + 20 random hex. */
  sortable(now: number): string;
}

export const randomIds: Ids = {
  hex32: () => randomBytes(16).toString('hex'),
  sortable: (now) => now.toString(16).padStart(12, '0') + randomBytes(10).toString('hex'),
};

/** Everything a service function needs. Built once per process by createPlatform(). */
export interface Ctx {
  config: Config;
  db: Database;
  box: SecretBox;
  blobs: BlobStore;
  jobs: Jobs;
  limits: Limits;
  /** Cache invalidation between the processes of one installation. */
  bus: Bus;
  clock: Clock;
  ids: Ids;
  log: Logger;
}
