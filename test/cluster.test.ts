/**
 * The properties that make several API servers one service. In the normal suites this runs against
 * one server; with --cluster against two servers behind a round-robin proxy (test/cluster.ts), where
 * it shows that state lives in the database and Redis, not in a process.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ManualClock } from '../src/core/context.js';
import { createApp, updateApp } from '../src/core/credentials/apps.js';
import { inCluster, roundRobinProxy } from './cluster.js';
import { http, startServer } from './helpers.js';

test('an app created through one server works on the other, and its rate limit is shared', async () => {
  const clock = new ManualClock(Date.UTC(2026, 10, 23, 12));
  const s = await startServer({ clock });
  try {
    const app = await createApp(s.ctx, { tenantId: 1, name: 'rl', services: ['native'], rateLimit: 5 });
    const auth = { authorization: `Bearer ${app.key}.${app.secret}` };
    const codes: number[] = [];
    for (let i = 0; i < 10; i++) codes.push((await http(`${s.url}/rest/v1/me`, { headers: auth })).status);
    // one window (the clock does not move): exactly 5 pass whichever server answers
    assert.deepEqual(codes.filter((c) => c === 200).length, 5, `codes ${codes.join(',')}`);
    assert.deepEqual(codes.filter((c) => c === 429).length, 5);
    clock.advance(1500);
    assert.equal((await http(`${s.url}/rest/v1/me`, { headers: auth })).status, 200, 'next window');
  } finally {
    await s.close();
  }
});

test('blocking an app reaches every server within a second', async () => {
  const s = await startServer();
  try {
    const app = await createApp(s.ctx, { tenantId: 1, name: 'b', services: ['native'] });
    const auth = { authorization: `Bearer ${app.key}.${app.secret}` };
    for (let i = 0; i < 4; i++) assert.equal((await http(`${s.url}/rest/v1/me`, { headers: auth })).status, 200);
    await updateApp(s.ctx, app.id, { blocked: true });
    await new Promise((r) => setTimeout(r, 1100));
    for (let i = 0; i < 4; i++) assert.equal((await http(`${s.url}/rest/v1/me`, { headers: auth })).status, 403, `request ${i}`);
  } finally {
    await s.close();
  }
});

test('the proxy alternates servers', { skip: !inCluster && 'cluster mode only' }, async () => {
  const a = await startServer();
  try {
    const p = await roundRobinProxy([a.url.replace(/\/$/, ''), a.url]);
    for (let i = 0; i < 6; i++) assert.equal((await http(`${p.url}/healthz`)).status, 200);
    assert.deepEqual(p.served, [3, 3]);
    await p.close();
  } finally {
    await a.close();
  }
});
