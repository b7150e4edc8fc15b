/** Shared set-up for the ledger tests: a real server, a developer with a Ulord app, operator funding. */
import assert from 'node:assert/strict';
import { http, jsonBody, startServer, type TestOptions, type TestServer } from '../helpers.js';
import { audit } from '../../src/services/ledger/index.js';

export interface UlordEnv {
  s: TestServer;
  /** POST JSON to a /v1 path with the app key */
  ext(path: string, body?: unknown, headers?: Record<string, string>): ReturnType<typeof http>;
  /** POST JSON to a /v1 path with the developer session */
  mgmt(path: string, body?: unknown): ReturnType<typeof http>;
  appkey: string;
  appId: number;
  token: string;
  devId: number;
  /** issue ULD to the developer account */
  fundDeveloper(amount: string): Promise<void>;
  counts(): Promise<Record<string, number>>;
  /** asserts the ledger's invariants */
  checkInvariants(): Promise<void>;
}

export async function ulordEnv(opts: TestOptions = {}, username = 'dev1'): Promise<UlordEnv> {
  const s = await startServer(opts);
  const reg = await http(`${s.url}/v1/users/reg/`, jsonBody({ username, password: 'pw-' + username }));
  assert.equal(reg.json.errcode, 0, reg.text);
  const login = await http(`${s.url}/v1/users/login/`, jsonBody({ username, password: 'pw-' + username }));
  assert.equal(login.json.errcode, 0, login.text);
  const token: string = login.json.result.token;
  const mgmt = (path: string, body: unknown = {}) => http(`${s.url}/v1${path}`, jsonBody(body, { authorization: `Bearer ${token}` }));
  const add = await mgmt('/app/add/', { appname: 'blog', appdes: 'test app' });
  assert.equal(add.json.errcode, 0, add.text);
  const list = await mgmt('/app/list/', {});
  const appkey: string = list.json.result[0].appkey;
  const env: UlordEnv = {
    s,
    appkey,
    appId: add.json.result.id,
    token,
    devId: reg.json.result.id,
    mgmt,
    ext: (path, body = {}, headers = {}) => http(`${s.url}/v1${path}`, jsonBody(body, { appkey, ...headers })),
    fundDeveloper: async (amount) => {
      const { fund, developerAccount } = await import('../../src/services/ledger/index.js');
      const { getDeveloper } = await import('../../src/services/accounts/index.js');
      await fund(s.ctx, await developerAccount(s.ctx, (await getDeveloper(s.ctx, env.devId))!), amount);
    },
    counts: async () => {
      const db = s.ctx.db.kysely;
      const out: Record<string, number> = {};
      for (const t of ['ledger_accounts', 'ledger_transfers', 'ledger_contents', 'ledger_purchases', 'ledger_holds'] as const) {
        out[t] = Number((await db.selectFrom(t).select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
      }
      const sums = await db.selectFrom('ledger_accounts').select(['id', 'balance', 'pending', 'failed_count']).orderBy('id').execute();
      out.state = sums.reduce((h, r) => (h * 31 + Number(r.id) * 7 + Number(r.balance) * 3 + Number(r.pending)) % 1_000_000_007, 17);
      return out;
    },
    checkInvariants: async () => checkLedger(s),
  };
  return env;
}

export async function checkLedger(s: { ctx: TestServer['ctx'] }): Promise<void> {
  const a = await audit(s.ctx);
  assert.deepEqual(a.mismatched, [], 'every balance equals the sum of its transfers');
  assert.deepEqual(a.negative, [], 'no negative balance');
  assert.equal(a.held, a.issued, 'sum of balances == issued');
}
