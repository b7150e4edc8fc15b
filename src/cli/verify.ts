/**
 * `menhu verify <file> --report <id> [--url <base or scan URL>] [--tenant N] [--bundle <path>] [--key <verifier key or file>]`
 * Checks a file against a report's proof bundle offline: the checkpoint signature, every entry's
 * inclusion proof, and which version (if any) the file is. With --url it first fetches the bundle
 * (and saves it to --bundle when given). Exit status: 0 valid, 1 superseded/recalled/no match,
 * 2 the bundle does not verify or cannot be had.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { BundleError, verifyBundle, type ProofBundle } from '../services/reports/bundle.js';

export interface VerifyArgs {
  file?: string;
  report?: string;
  url?: string;
  tenant?: string;
  bundle?: string;
  key?: string;
}

function bundleUrl(url: string, report: string, tenant: string | undefined): string {
  const u = new URL(url);
  if (/\/s\/[^/]+\/?$/.test(u.pathname)) {
    u.pathname = u.pathname.replace(/\/?$/, '/proof');
    u.search = '';
    return u.toString();
  }
  if (!tenant) throw new BundleError('--url with a server base URL needs --tenant (or give the scanned /s/<code> URL)');
  return `${url.replace(/\/+$/, '')}/rest/v1/tlog/reports/${encodeURIComponent(tenant)}/${encodeURIComponent(report)}/bundle`;
}

export async function verifyCommand(a: VerifyArgs, out: (line: string) => void = console.log): Promise<number> {
  if (!a.file || !a.report) {
    out('usage: menhu verify <file> --report <id> [--url <base>|<scan URL>] [--tenant N] [--bundle <path>] [--key <verifier key>]');
    return 2;
  }
  try {
    let bundle: ProofBundle;
    if (a.url) {
      const res = await fetch(bundleUrl(a.url, a.report, a.tenant), { headers: { accept: 'application/json' } });
      if (!res.ok) throw new BundleError(`fetching the bundle: HTTP ${res.status} ${res.statusText}`);
      const text = await res.text();
      bundle = JSON.parse(text) as ProofBundle;
      if (a.bundle) writeFileSync(a.bundle, text);
    } else if (a.bundle) {
      bundle = JSON.parse(readFileSync(a.bundle, 'utf8')) as ProofBundle;
    } else throw new BundleError('give --bundle <path> (offline) or --url <base> to fetch one');
    const key = a.key && existsSync(a.key) ? readFileSync(a.key, 'utf8').trim() : a.key;
    const r = verifyBundle(bundle, readFileSync(a.file), { reportId: a.report, trustedKey: key });
    const latest = r.entries[r.entries.length - 1];
    out(`report      ${bundle.report_id} (tenant ${bundle.tenant_id})`);
    out(`file        sha256 ${r.sha256}`);
    out(`log         ${r.origin}, checkpoint of ${r.treeSize} entries, signature verified with ${r.keyTrusted ? 'the given key' : "the bundle's own key (pass --key to pin the log key)"}`);
    out(`entries     ${r.entries.length}, every inclusion proof verified; latest: ${latest.action} of version ${latest.version} at ${new Date(latest.time).toISOString()}`);
    const says: Record<typeof r.status, string> = {
      valid: `VALID: the file is version ${r.matchedVersion}, the current version`,
      superseded: `SUPERSEDED: the file is version ${r.matchedVersion}; version ${r.latestVersion} replaced it`,
      recalled: `RECALLED: the file is version ${r.matchedVersion}, but the report was recalled`,
      'no-match': 'NO MATCH: no registered version of this report has this file',
    };
    out(`result      ${says[r.status]}`);
    return r.status === 'valid' ? 0 : 1;
  } catch (e) {
    out(`verification failed: ${(e as Error).message}`);
    return 2;
  }
}
