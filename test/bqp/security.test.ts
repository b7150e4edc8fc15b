/**
 * Injection corpus and property-based fuzzing of the query compiler. Invariants:
 * - over HTTP every payload gets a BQP answer (HTTP 200, code 0/1/3/5), never a server error;
 * - every statement the compiler emits contains no string literal, only declared identifiers and
 *   whitelisted SQL words, so no request text reaches SQL except as a bind parameter;
 * - the database is intact afterwards (same tables, same rows).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import SQLite from 'better-sqlite3';
import fc from 'fast-check';
import { Kysely, PostgresDialect, SqliteDialect, type CompiledQuery } from 'kysely';
import pg from 'pg';
import { join } from 'node:path';
import { isDomainError } from '../../src/core/errors.js';
import { objectsOf } from '../../src/modules/objects.js';
import { parseExpr, tokenize } from '../../src/services/objects/expr.js';
import { condTree, qsearchTree, runQuery, type Caller } from '../../src/services/objects/query.js';
import type { ObjectsService } from '../../src/services/objects/index.js';
import type { TestServer } from '../helpers.js';
import { Client, startBqp } from './client.js';

const PAYLOADS = [
  // the two of research/bqp.md §5
  'userId in (SELECT id FROM User)',
  'status AND 3535=IF((ORD(MID((DATABASE()),7,1))>114),BENCHMARK(4000000,MD5(0x6768654c)),3535)',
  "1=1; DROP TABLE bqp_User; --",
  "ac='x' OR '1'='1",
  "ac='x'' OR ''1''=''1'",
  "ac='\\' OR 1=1 -- '",
  "ac='a' UNION SELECT pwd FROM bqp_User",
  'id=1 union all select 1',
  "ac=char(65)",
  'ac=(select pwd from bqp_User limit 1)',
  'id=1/**/or/**/1=1',
  'id=1 -- comment',
  'id=1 # comment',
  'id=1;select 1',
  'sleep(5)',
  'pg_sleep(5)',
  "ac LIKE '%' ESCAPE '\\'",
  'id IN (1,2) OR EXISTS(SELECT 1)',
  'id = `id`',
  'load_file(\'/etc/passwd\')',
  "ac = 0x61646d696e",
  "ac = N'x'",
  "ac='x' || (select 1)",
  "ac=@@version",
  'pwd is not null',
  'pwd',
  'bqp_User.pwd = 1',
  't0.id = 1',
  'u.pwd = 1',
  "1=1) or (1=1",
  '((((((((((((((((((((((((((((((id=1))))))))))))))))))))))))))))))',
  'id=' + '9'.repeat(400),
  "ac='" + "x".repeat(50) + "' and sqlite_version()",
  'count(*) > 0',
  'id = 1 and case when 1 then 1 end',
  "ac = 'a' collate nocase",
  "id in (select max(id) from bqp_ApiLog)",
  'CAST(id AS TEXT) = 1',
  'id between 1 and (select 2)',
  'ac regexp \'.*\'',
  "ac = 'x'\u0000 or 1=1",
  'id > 0 returning *',
  'id=1 limit 1',
  "coalesce(ac,'') = ''",
  'database() dbname',
  'id, (select pwd from bqp_User) p',
  'id "a""b"',
  '*, pwd',
  "id desc; drop table x",
  'id desc, (select 1)',
  'random()',
];

const SQL_WORDS = new Set(
  'select from where and or not in is null like ilike escape between as left join on order by asc desc limit offset group having count sum avg max min distinct case when then else end cast real double precision text nulls first last delete update set insert into values returning substr integer strftime extract isodow doy date'.split(' '),
);

/** The structural invariant of compiled SQL. */
function checkSql(q: CompiledQuery, known: Set<string>): void {
  const text = q.sql;
  assert.ok(!text.includes("'"), `string literal in SQL: ${text}`);
  assert.ok(!/--|\/\*|;/.test(text), `comment or separator in SQL: ${text}`);
  const stripped = text.replace(/"((?:[^"]|"")*)"/g, (_, id: string) => {
    assert.ok(known.has(id.replace(/""/g, '"')), `unknown identifier "${id}" in SQL: ${text}`);
    return ' ';
  });
  for (const w of stripped.match(/[A-Za-z_][A-Za-z_0-9]*/g) ?? []) assert.ok(SQL_WORDS.has(w.toLowerCase()), `word ${w} in SQL: ${text}`);
  assert.ok(!/[^\s\w$?(),.*=<>!+\-/%"]/.test(stripped), `odd character in SQL: ${text}`);
}

describe('BQP injection corpus and parser fuzzing', () => {
  let s: TestServer;
  let B: string;
  let svc: ObjectsService;
  let spy: Kysely<any>;
  let captured: CompiledQuery[] = [];
  let known: Set<string>;
  let snapshot: () => Promise<string>;
  const admin: Caller = { role: 'admin', loggedIn: true, vars: { adminId: 1 } };
  const guest: Caller = { role: 'guest', loggedIn: false, vars: {} };

  before(async () => {
    ({ s, B } = await startBqp());
    svc = objectsOf(s.ctx);
    const log = (e: { query: CompiledQuery }) => void captured.push(e.query);
    spy =
      s.ctx.db.dialect === 'postgres'
        ? new Kysely<any>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: s.config.databaseUrl, max: 2 }) }), log })
        : new Kysely<any>({ dialect: new SqliteDialect({ database: new SQLite(join(s.config.dataDir, 'menhu.sqlite')) }), log });
    known = new Set(['t0', '_k', '_t', 'n', 'x', '_fk']);
    for (let i = 0; i < 50; i++) known.add(`c${i}`);
    for (const o of svc.schema.objects.values()) {
      known.add(o.table);
      for (const f of o.fields.keys()) known.add(f);
      for (const j of o.joins.keys()) known.add(j);
    }
    snapshot = async () => {
      const parts: string[] = [];
      for (const o of svc.schema.objects.values()) {
        const r = await s.ctx.db.kysely.selectFrom(o.table as never).select((eb) => eb.fn.countAll().as('n')).executeTakeFirst();
        parts.push(`${o.table}:${Number((r as { n: number }).n)}`);
      }
      return parts.join(',');
    };
  });
  after(async () => {
    await spy.destroy();
    await s.close();
  });

  async function compileAndCheck(def: string, q: Parameters<typeof runQuery>[5], who: Caller = admin): Promise<'ok' | string> {
    captured = [];
    try {
      await runQuery(spy, svc.schema, s.ctx.db.dialect, svc.schema.objects.get(def)!, who, q);
    } catch (e) {
      if (!isDomainError(e)) throw e;
      return e.code;
    } finally {
      for (const c of captured) checkSql(c, known);
    }
    return 'ok';
  }

  it('every payload in every parameter gets a BQP answer over HTTP, and the data is intact', async () => {
    const before = await snapshot();
    const c = new Client(B);
    const emp = new Client(B);
    await emp.call('/login?_app=emp', { form: { uname: 'emp', pwd: '1234' } });
    for (const p of PAYLOADS) {
      for (const param of ['cond', 'gcond', 'res', 'orderby', 'gres']) {
        for (const [client, obj, extra] of [[c, 'ApiLog', ''], [emp, 'Ordr', '&_app=emp']] as const) {
          const qs = new URLSearchParams({ [param]: p });
          if (param === 'gcond') qs.set('gres', 'ac');
          const r = await client.req(`/${obj}.query?${qs}${extra}`);
          assert.equal(r.status, 200, `${param}=${p}`);
          assert.ok(Array.isArray(r.json), `${param}=${p}: ${r.text}`);
          assert.ok([0, 1, 3, 5].includes(r.json[0]), `${param}=${p} → ${r.text}`);
        }
      }
      // in setIf / delIf too (no row matches a refused cond; a refused one changes nothing)
      // the body's cond is ANDed: a payload that parses as a harmless condition matches nothing
      const r = await c.req(`/ApiLog.setIf?${new URLSearchParams({ cond: p })}`, { form: { addr: 'pwned', cond: 'id=-1' } });
      // refused, or a harmless literal that matches nothing
      assert.ok([1, 3, 5].includes(r.json[0]) || (r.json[0] === 0 && r.json[1] === 0), `setIf ${p} → ${r.text}`);
    }
    // the two reference payloads are refused as forbidden
    for (const p of PAYLOADS.slice(0, 2)) assert.equal((await c.call(`/ApiLog.query?${new URLSearchParams({ cond: p })}`))[0], 5);
    await svc.flushLog();
    const afterSnap = await snapshot();
    // only ApiLog (the call log) may have grown
    const strip = (x: string) => x.replace(/bqp_ApiLog:\d+/, '');
    assert.equal(strip(afterSnap), strip(before));
    assert.equal(((await c.call('/ApiLog.query?res=count(*) n&cond=addr%3D%27pwned%27&fmt=one'))[1] as { n: number }).n, 0);
  });

  it('compiled SQL for every payload carries no request text', async () => {
    for (const p of PAYLOADS) {
      for (const q of [{ cond: safeTree(p) }, { res: p }, { orderby: p }, { gres: p }, { gres: 'ac', res: 'count(*) cnt', gcond: safeTree(p, 'gcond') }]) {
        if ('cond' in q && q.cond === undefined) continue;
        if ('gcond' in q && q.gcond === undefined) continue;
        const code = await compileAndCheck('ApiLog', q as never);
        assert.ok(['ok', 'VALIDATION', 'FORBIDDEN', 'UNKNOWN_FIELD'].includes(code), `${p}: ${code}`);
      }
    }
  });

  it('the query options and batch operations: payloads get BQP answers, compile clean, change nothing', async () => {
    const before = await snapshot();
    const c = new Client(B);
    const emp = new Client(B);
    await emp.call('/login?_app=emp', { form: { uname: 'emp', pwd: '1234' } });
    for (const [i, p] of PAYLOADS.entries()) {
      for (const [param, extra] of i % 3 ? [] : [
        ['qsearch', ''],
        ['statRes', ''],
        ['tmField', '&gres=y&res=count(*) n'],
        ['pivot', '&gres=ac&res=count(*) n'],
        ['hiddenFields', ''],
        ['sumFields', '&gres=ac&res=count(*) n'],
        ['treeFields', '&fmt=tree&res=id,userId'],
        ['distinct', '&res=ac'],
      ] as const) {
        const v = param === 'qsearch' && extra === '' && !p.includes(':') ? `ac,addr:${p}` : p;
        const r = await c.req(`/ApiLog.query?${new URLSearchParams({ [param]: v })}${extra}&retfn=${param === 'pivot' ? 'xml' : 'obj'}`);
        assert.equal(r.status, 200, `${param}=${p}`);
        assert.ok(/^(\{"code":[0135],|<ret><code>[0135]<)/.test(r.text), `${param}=${p} → ${r.text}`);
      }
      for (const op of i % 3 ? [] : ['batchSet', 'batchDel']) {
        const r = await emp.req(`/Ordr.${op}?_app=emp&${new URLSearchParams({ cond: p })}`, { form: { cmt: 'pwned', cond: 'id=-1' } });
        assert.ok([1, 3, 5].includes(r.json[0]) || (r.json[0] === 0 && r.json[1] === 0), `${op} ${p} → ${r.text}`);
      }
      if (i % 3 === 0) {
        const d = await emp.req(`/Ordr.dup?_app=emp&${new URLSearchParams({ id: p })}`);
        assert.equal(d.json[0], 1, `dup ${p} → ${d.text}`);
      }
      // a sub-table's own parameters (param_<sub>): cond, res, orderby, pagesz
      for (const k of i % 3 ? [] : ['cond', 'res', 'orderby', 'pagesz']) {
        const r = await emp.req(`/Ordr.query?_app=emp&res=id,orderLog&disableSubobjOptimize=1&${new URLSearchParams({ [`param_orderLog[${k}]`]: p })}`);
        assert.equal(r.status, 200, `param_orderLog[${k}]=${p}`);
        assert.ok([0, 1, 3, 5].includes(r.json?.[0]), `param_orderLog[${k}]=${p} → ${r.text}`);
      }
      const st = safeTree(p);
      if (st !== undefined) {
        const code = await compileAndCheck('Ordr', { res: 'id,orderLog', subParams: { orderLog: { cond: st, orderby: p } } });
        assert.ok(['ok', 'VALIDATION', 'FORBIDDEN', 'UNKNOWN_FIELD'].includes(code), `param_orderLog ${p}: ${code}`);
      }
      // compiled: qsearch terms, statRes, tmField
      const qt = (() => {
        try {
          return qsearchTree(`ac,addr*,ver!:${p}`);
        } catch (e) {
          if (isDomainError(e)) return undefined;
          throw e;
        }
      })();
      if (qt) assert.ok(['ok', 'VALIDATION'].includes(await compileAndCheck('ApiLog', { cond: qt, res: 'id' })), p);
      for (const q of [{ res: p, aggOnly: true }, { tmField: p, gres: 'y,q,m,w,d,wd,h', res: 'count(*) n' }, { res: 'ac', distinct: true, orderby: p }]) {
        const code = await compileAndCheck('ApiLog', q as never);
        assert.ok(['ok', 'VALIDATION', 'FORBIDDEN', 'UNKNOWN_FIELD'].includes(code), `${JSON.stringify(q)}: ${code}`);
      }
    }
    assert.equal(await compileAndCheck('ApiLog', { tmField: 'tm', gres: 'y,q,m,w,d,wd,h', res: 'count(*) n', gcond: condTree('y > 2000 and wd < 8', 'gcond') }), 'ok');
    await svc.flushLog();
    const strip = (x: string) => x.replace(/bqp_ApiLog:\d+/, '');
    assert.equal(strip(await snapshot()), strip(before));
    assert.equal(((await emp.call('/Ordr.query?_app=emp&res=count(*) n&cond=cmt%3D%27pwned%27&fmt=one'))[1] as { n: number }).n, 0);
  });

  function safeTree(p: string, what = 'cond') {
    try {
      return condTree(p, what);
    } catch (e) {
      if (isDomainError(e)) return undefined;
      throw e;
    }
  }

  it('fuzz: arbitrary text never crashes the tokenizer or parser', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 200 }), fc.string({ unit: 'grapheme', maxLength: 100 }), fc.string({ unit: fc.constantFrom(...'\'"()=<>!,;-*/%#`@ \\aAiIdDnNoOrR0123456789.'.split('')), maxLength: 120 })), (src) => {
        for (const allowAgg of [false, true]) {
          try {
            parseExpr(src, 'cond', allowAgg);
          } catch (e) {
            if (!isDomainError(e)) throw e;
            assert.ok(['VALIDATION', 'FORBIDDEN'].includes(e.code), e.code);
          }
        }
        try {
          tokenize(src);
        } catch (e) {
          if (!isDomainError(e)) throw e;
        }
      }),
      { numRuns: 1500 },
    );
  });

  // A grammar of conditions over ApiLog with hostile literals: every one compiles, runs, and the
  // literals reach the database only as parameters.
  const field = fc.constantFrom('id', 'ac', 'addr', 'tm', 'userId', 't', 'retval', 'userName', 'ver');
  const hostile = fc.oneof(
    fc.string({ maxLength: 30 }),
    fc.constantFrom("' or 1=1 --", '"; drop table x; --', "\\'", '%_%', 'select', "'')) union select 1 --", '2020-1-1', '0x41', 'NULL'),
  );
  const quote = (s: string) => "'" + s.replace(/\\/g, '\\\\').replace(/'/g, "''") + "'";
  const literal = fc.oneof(hostile.map(quote), fc.integer({ min: -1e6, max: 1e6 }).map(String), fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e6, max: 1e6 }).map((d) => String(Math.abs(d))));
  const leaf = fc.oneof(
    fc.tuple(field, fc.constantFrom('=', '<>', '!=', '<', '>', '<=', '>='), literal).map(([f, o, l]) => `${f} ${o} ${l}`),
    fc.tuple(field, fc.boolean()).map(([f, n]) => `${f} IS ${n ? 'NOT ' : ''}NULL`),
    fc.tuple(field, hostile).map(([f, l]) => `${f} LIKE ${quote(l)}`),
    fc.tuple(field, fc.array(literal, { minLength: 1, maxLength: 4 })).map(([f, ls]) => `${f} IN (${ls.join(', ')})`),
    fc.tuple(field, literal, literal).map(([f, a, b]) => `${f} BETWEEN ${a} AND ${b}`),
  );
  const cond = fc.letrec((tie) => ({
    c: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leaf, fc.tuple(tie('c'), fc.constantFrom('AND', 'OR'), tie('c')).map(([a, o, b]) => `(${a}) ${o} (${b})`), tie('c').map((x) => `NOT (${x})`)),
  })).c as fc.Arbitrary<string>;

  it('fuzz: generated conditions with hostile literals compile to clean SQL and run', async () => {
    const before = await snapshot();
    await fc.assert(
      fc.asyncProperty(cond, async (c) => {
        const tree = safeTree(c);
        if (tree === undefined) return; // e.g. a number that is not a number for its field
        const code = await compileAndCheck('ApiLog', { cond: tree, res: 'id,ac,userName', pagesz: 5 });
        assert.ok(['ok', 'VALIDATION'].includes(code), `${c}: ${code}`);
        const g = await compileAndCheck('ApiLog', { gres: 'ac', res: 'count(*) n, max(id) m', gcond: safeTree(`n > 0 AND (${c.replace(/\b(userName)\b/g, 'ac')})`, 'gcond') ?? null, pagesz: 5 }, guest);
        assert.ok(['ok', 'VALIDATION', 'UNKNOWN_FIELD'].includes(g), `${c}: ${g}`);
      }),
      { numRuns: 250 },
    );
    // the call log may have grown (another server's batched log flush can land meanwhile); nothing else
    const strip = (x: string) => x.replace(/bqp_ApiLog:\d+/, '');
    assert.equal(strip(await snapshot()), strip(before));
  });

  it('limits: length, depth, terms', () => {
    const expectBad = (src: string) =>
      assert.throws(
        () => parseExpr(src, 'cond', false),
        (e: unknown) => isDomainError(e) && e.code === 'VALIDATION',
      );
    expectBad('id=1 AND '.repeat(600) + 'id=1');
    expectBad('('.repeat(40) + 'id=1' + ')'.repeat(40));
    expectBad('NOT '.repeat(40) + 'id=1');
    expectBad(Array.from({ length: 150 }, (_, i) => `id=${i}`).join(' OR '));
    assert.doesNotThrow(() => parseExpr(Array.from({ length: 50 }, (_, i) => `id=${i}`).join(' OR '), 'cond', false));
  });
});
