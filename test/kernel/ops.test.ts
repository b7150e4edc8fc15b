/**
 * Operations surface: /healthz, /metrics (Prometheus text), the OpenAPI document (valid, every
 * native route documented) and the docs page.
 */
import assert from 'node:assert/strict';
import { inCluster } from '../cluster.js';
import { after, before, describe, it } from 'node:test';
import { bearer, http, operatorCreds, startServer, type TestServer } from '../helpers.js';

describe('operations endpoints', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer();
  });
  after(() => s.close());

  it('/healthz reports the database, limits and blob backends', async () => {
    const r = await http(s.url + '/healthz');
    assert.equal(r.status, 200);
    assert.equal(r.json.status, 'ok');
    assert.equal(r.json.database, s.ctx.db.dialect);
    assert.equal(r.json.limits, s.ctx.limits.mode());
    assert.equal(r.json.blobs, 'local');
  });

  it('/metrics speaks Prometheus text and counts requests by route and status', { skip: inCluster && 'metrics are per process; the proxy alternates servers' }, async () => {
    const op = await operatorCreds(s.ctx);
    await http(s.url + '/rest/v1/me', { headers: bearer(op) });
    await http(s.url + '/rest/v1/me');
    const r = await http(s.url + '/metrics');
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    // every line is a comment or `name{labels} value`
    for (const line of r.text.split('\n').filter(Boolean)) {
      assert.match(line, /^(# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .*|[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? -?[0-9.e+-]+|[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? (NaN|\+Inf|-Inf))$/, line);
    }
    assert.match(r.text, /menhu_http_requests_total\{method="GET",route="\/rest\/v1\/me",status="200"\} 1/);
    assert.match(r.text, /menhu_http_requests_total\{method="GET",route="\/rest\/v1\/me",status="401"\} 1/);
    assert.match(r.text, /# TYPE menhu_http_request_duration_seconds histogram/);
    // the histogram of /rest/v1/me: cumulative buckets ending in +Inf = count = both requests
    const me = (suffix: string) =>
      [...r.text.matchAll(new RegExp(`^menhu_http_request_duration_seconds_${suffix}\\{(?:le="([^"]+)",)?method="GET",route="/rest/v1/me"\\} (\\S+)$`, 'gm'))].map((m) => ({ le: m[1], v: Number(m[2]) }));
    const buckets = me('bucket');
    assert.equal(buckets.length, 13);
    assert.equal(buckets.at(-1)!.le, '+Inf');
    assert.ok(buckets.every((b, i) => i === 0 || b.v >= buckets[i - 1].v), 'cumulative');
    assert.equal(buckets.at(-1)!.v, 2);
    assert.deepEqual(me('count').map((x) => x.v), [2]);
    assert.ok(me('sum')[0].v > 0 && me('sum')[0].v < 10);
    assert.match(r.text, /menhu_process_cpu_seconds_total/);
  });

  it('/rest/v1/openapi.json is a valid OpenAPI 3.1 document that documents every native route', async () => {
    const r = await http(s.url + '/rest/v1/openapi.json');
    assert.equal(r.status, 200);
    const doc = r.json;
    assert.equal(doc.openapi, '3.1.0');
    assert.equal(typeof doc.info.title, 'string');
    assert.equal(typeof doc.info.version, 'string');
    assert.ok(doc.components.securitySchemes.bearer && doc.components.securitySchemes.hmac);
    assert.ok(doc.components.schemas.Problem, 'Problem is a named component');

    // every $ref resolves inside the document
    const refs: string[] = [];
    const walk = (v: unknown): void => {
      if (Array.isArray(v)) v.forEach(walk);
      else if (v && typeof v === 'object') {
        for (const [k, x] of Object.entries(v)) {
          if (k === '$ref' && typeof x === 'string') refs.push(x);
          else walk(x);
        }
      }
    };
    walk(doc);
    assert.ok(refs.length > 10);
    for (const ref of refs) {
      assert.match(ref, /^#\//, ref);
      let node: any = doc;
      for (const part of ref.slice(2).split('/')) node = node?.[part.replace(/~1/g, '/').replace(/~0/g, '~')];
      assert.ok(node, `unresolved ${ref}`);
    }

    // every operation: responses with descriptions, path parameters declared, errors as Problem
    const methods = ['get', 'put', 'post', 'delete', 'patch'];
    // the kernel's own routes must document their problem+json errors; services' routes are listed
    const KERNEL = /^\/rest\/v1\/(sessions|me|tenants|developers|app-types|apps|quotas)(\/|$)/;
    const undocumentedErrors: string[] = [];
    for (const [path, item] of Object.entries<any>(doc.paths)) {
      for (const m of methods.filter((x) => item[x])) {
        const op = item[m];
        assert.ok(op.responses && Object.keys(op.responses).length > 0, `${m} ${path} has responses`);
        for (const [code, resp] of Object.entries<any>(op.responses)) assert.equal(typeof resp.description, 'string', `${m} ${path} ${code}`);
        for (const name of [...path.matchAll(/\{(\w+)\}/g)].map((x) => x[1])) {
          assert.ok(op.parameters?.some((p: any) => p.in === 'path' && p.name === name && p.required), `${m} ${path} declares {${name}}`);
        }
        const errs = Object.keys(op.responses).filter((c) => Number(c) >= 400);
        if (KERNEL.test(path) && !(path === '/rest/v1/sessions' && m === 'delete')) assert.ok(errs.length > 0, `${m} ${path} documents its errors`);
        else if (errs.length === 0) undocumentedErrors.push(`${m.toUpperCase()} ${path}`);
      }
    }

    if (undocumentedErrors.length) console.log(`services' operations without documented errors: ${undocumentedErrors.join(', ')}`);

    // every route under /rest/v1 is in the document (hidden ones: the document and the docs page)
    const routes = s.app.routeList.filter((x) => x.url.startsWith('/rest/v1/') && x.method !== 'HEAD' && !x.hidden);
    assert.ok(routes.length >= 15);
    for (const route of routes) {
      const path = route.url.replace(/:(\w+)/g, '{$1}');
      assert.ok(doc.paths[path]?.[route.method.toLowerCase()], `${route.method} ${route.url} is documented`);
    }
    const hidden = s.app.routeList.filter((x) => x.url.startsWith('/rest/v1/') && x.hidden && x.method === 'GET').map((x) => x.url);
    assert.ok(hidden.every((u) => u === '/rest/v1/openapi.json' || u.startsWith('/rest/v1/docs')), hidden.join(' '));
  });

  it('/rest/v1/docs is a readable page that loads the document', async () => {
    const r = await http(s.url + '/rest/v1/docs', { redirect: 'follow' });
    assert.equal(r.status, 200, r.text.slice(0, 200));
    assert.match(r.headers.get('content-type') ?? '', /text\/html/);
    assert.match(r.text, /swagger/i);
    const init = await http(s.url + '/rest/v1/docs/static/swagger-initializer.js');
    assert.equal(init.status, 200);
    const json = await http(s.url + '/rest/v1/docs/json');
    assert.equal(json.status, 200);
    assert.equal(json.json.openapi, '3.1.0');
  });
});
