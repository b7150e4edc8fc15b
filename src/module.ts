/**
 * A capability plugged into the platform. Each service brings one Module (in src/modules/<name>.ts)
 * that wires its pieces together without the kernel knowing them:
 * - migrations register themselves when the module's files are imported (defineMigration);
 * - schema creates/alters tables declared in configuration (run by `menhu migrate` and at start);
 * - init runs once per process after the database is migrated (register job kinds, start flushers);
 * - rest adds routes to the native API (inside /rest/v1: shared auth, problem+json, OpenAPI);
 * - mount adds routes at the server root (dialects, public pages);
 * - fast answers the hottest public requests before the framework, when it can (short-link redirects;
 *   the native API's plain reads have their own lane, dialects/rest/lane.ts);
 * - demo seeds demo data on the first `menhu serve --demo`;
 * - close stops what init started.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { Config } from './core/config.js';
import type { Ctx } from './core/context.js';
import type { Database } from './core/db/index.js';

export interface DemoSeed {
  tenantId: number;
  /** id of the demo admin developer */
  adminId: number;
}

/**
 * Returns null when it leaves the request to Fastify (having touched nothing), else the pattern of
 * the route it answered — at once, or when the returned promise settles (it never rejects). `ip` and
 * `id` give the client address and the request id, made on first use.
 */
export type FastHandler = (req: IncomingMessage, res: ServerResponse, ip: () => string, id: () => string) => string | null | Promise<string>;

export interface Module {
  name: string;
  init?(ctx: Ctx): Promise<void> | void;
  /** Creates/alters tables that are declared outside migrations (e.g. from a schema file); run by `menhu migrate` and at start. Returns one line per change. */
  schema?(db: Database, config: Config): Promise<string[]>;
  rest?(app: FastifyInstance, ctx: Ctx): Promise<void> | void;
  mount?(app: FastifyInstance, ctx: Ctx): Promise<void> | void;
  /**
   * A raw handler run for every request before Fastify. It answers only what it can answer fully
   * from memory, with the same bytes its Fastify route would send, and returns that route's pattern
   * (for metrics and the access log); for anything else it returns null and touches nothing.
   */
  fast?(ctx: Ctx): FastHandler;
  demo?(ctx: Ctx, seed: DemoSeed): Promise<void> | void;
  /**
   * Integrity checks over the module's stored data (`menhu check`, and after `menhu restore`):
   * returns one line per problem found, none when everything holds.
   */
  check?(ctx: Ctx): Promise<string[]>;
  /** Lines printed by `menhu serve` under "where everything is". */
  banner?(ctx: Ctx): string[];
  close?(ctx: Ctx): Promise<void> | void;
}
