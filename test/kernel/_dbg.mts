import { startServer, tenantWithApp, bearer } from '../helpers.js';
const s = await startServer();
const c = (await tenantWithApp(s.ctx, 'a')).creds;
s.app.addHook; 
const r = await fetch(s.url + '/rest/v1/apps', { method: 'POST', headers: bearer(c), body: new Uint8Array(Buffer.from('{"name":"x"}')) });
console.log(r.status, await r.text());
const { execSync } = await import('node:child_process');
console.log(execSync(`curl -s -X POST -H 'authorization: Bearer ${c.key}.${c.secret}' -H 'content-type:' --data-binary '{"name":"x"}' ${s.url}/rest/v1/apps -v 2>&1 | grep -E '^[<>]|^{'`).toString());
await s.close();
