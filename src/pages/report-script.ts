/**
 * The one script of the verification page (inline, allowed by its hash in the CSP). It
 * 1. re-computes the inclusion proof of the report's latest log entry against the checkpoint root
 *    (RFC 6962, SHA-256 in the browser), and
 * 2. hashes a dropped or picked file with WebCrypto SHA-256 — or, where the page is not a secure
 *    context (plain http on a LAN address), with the small SHA-256 below — and says which version,
 *    if any, it is.
 * Plain ES2020, no external assets.
 */
export const REPORT_PAGE_SCRIPT = String.raw`(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('page-data').textContent);
  var K = [0x428a2f98,0x71374491,0xb5c0fbcf,0xe9b5dba5,0x3956c25b,0x59f111f1,0x923f82a4,0xab1c5ed5,0xd807aa98,0x12835b01,0x243185be,0x550c7dc3,0x72be5d74,0x80deb1fe,0x9bdc06a7,0xc19bf174,0xe49b69c1,0xefbe4786,0x0fc19dc6,0x240ca1cc,0x2de92c6f,0x4a7484aa,0x5cb0a9dc,0x76f988da,0x983e5152,0xa831c66d,0xb00327c8,0xbf597fc7,0xc6e00bf3,0xd5a79147,0x06ca6351,0x14292967,0x27b70a85,0x2e1b2138,0x4d2c6dfc,0x53380d13,0x650a7354,0x766a0abb,0x81c2c92e,0x92722c85,0xa2bfe8a1,0xa81a664b,0xc24b8b70,0xc76c51a3,0xd192e819,0xd6990624,0xf40e3585,0x106aa070,0x19a4c116,0x1e376c08,0x2748774c,0x34b0bcb5,0x391c0cb3,0x4ed8aa4a,0x5b9cca4f,0x682e6ff3,0x748f82ee,0x78a5636f,0x84c87814,0x8cc70208,0x90befffa,0xa4506ceb,0xbef9a3f7,0xc67178f2];
  function sha256js(msg) {
    var l = msg.length, n = ((l + 9 + 63) >> 6) << 6, b = new Uint8Array(n), dv = new DataView(b.buffer);
    b.set(msg); b[l] = 0x80;
    dv.setUint32(n - 8, Math.floor(l / 0x20000000)); dv.setUint32(n - 4, (l << 3) >>> 0);
    var h = [0x6a09e667,0xbb67ae85,0x3c6ef372,0xa54ff53a,0x510e527f,0x9b05688c,0x1f83d9ab,0x5be0cd19], w = new Uint32Array(64);
    function r(x, c) { return (x >>> c) | (x << (32 - c)); }
    for (var o = 0; o < n; o += 64) {
      for (var i = 0; i < 16; i++) w[i] = dv.getUint32(o + 4 * i);
      for (i = 16; i < 64; i++) {
        var s0 = r(w[i-15], 7) ^ r(w[i-15], 18) ^ (w[i-15] >>> 3), s1 = r(w[i-2], 17) ^ r(w[i-2], 19) ^ (w[i-2] >>> 10);
        w[i] = (w[i-16] + s0 + w[i-7] + s1) >>> 0;
      }
      var a = h[0], bb = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
      for (i = 0; i < 64; i++) {
        var t1 = (hh + (r(e, 6) ^ r(e, 11) ^ r(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i]) >>> 0;
        var t2 = ((r(a, 2) ^ r(a, 13) ^ r(a, 22)) + ((a & bb) ^ (a & c) ^ (bb & c))) >>> 0;
        hh = g; g = f; f = e; e = (d + t1) >>> 0; d = c; c = bb; bb = a; a = (t1 + t2) >>> 0;
      }
      h = [h[0]+a, h[1]+bb, h[2]+c, h[3]+d, h[4]+e, h[5]+f, h[6]+g, h[7]+hh].map(function (x) { return x >>> 0; });
    }
    var out = new Uint8Array(32), odv = new DataView(out.buffer);
    h.forEach(function (x, k) { odv.setUint32(4 * k, x); });
    return out;
  }
  var subtle = window.crypto && window.crypto.subtle;
  function sha256(bytes) {
    if (subtle) return subtle.digest('SHA-256', bytes).then(function (d) { return new Uint8Array(d); });
    return Promise.resolve(sha256js(bytes));
  }
  function hex(u) { return Array.prototype.map.call(u, function (x) { return (x < 16 ? '0' : '') + x.toString(16); }).join(''); }
  function unb64(s) { var t = atob(s), u = new Uint8Array(t.length); for (var i = 0; i < t.length; i++) u[i] = t.charCodeAt(i); return u; }
  function cat(a, b, c) { var u = new Uint8Array(a.length + b.length + c.length); u.set(a); u.set(b, a.length); u.set(c, a.length + b.length); return u; }
  function node(l, r) { return sha256(cat(Uint8Array.of(1), l, r)); }
  function fill(s, v, n) { return s.split('{v}').join(String(v)).split('{n}').join(String(n)); }
  function say(id, cls, text) { var el = document.getElementById(id); el.className = 'note ' + cls; el.textContent = text; el.dataset.state = cls; }

  // 1. inclusion proof of the latest entry
  var p = data.proof;
  if (p) {
    (async function () {
      var idx = BigInt(p.index), size = BigInt(p.treeSize), path = p.path.map(unb64);
      var inner = (idx ^ (size - 1n)).toString(2).replace(/^0+/, '').length;
      var border = (idx >> BigInt(inner)).toString(2).split('').filter(function (c) { return c === '1'; }).length;
      if (idx >= size || path.length !== inner + border) return say('proof-check', 'bad', data.t.proofBad);
      var h = await sha256(cat(Uint8Array.of(0), new TextEncoder().encode(p.entry), new Uint8Array(0)));
      if (hex(h) !== p.leafHash) return say('proof-check', 'bad', data.t.proofBad);
      for (var i = 0; i < path.length; i++) {
        h = i < inner && ((idx >> BigInt(i)) & 1n) === 0n ? await node(h, path[i]) : await node(path[i], h);
      }
      if (hex(h) === hex(unb64(p.root))) say('proof-check', 'ok', data.t.proofOk); else say('proof-check', 'bad', data.t.proofBad);
    })().catch(function () { say('proof-check', 'bad', data.t.proofBad); });
  }

  // 2. local file check
  var input = document.getElementById('file'), drop = document.getElementById('drop');
  if (!input) return;
  function check(file) {
    if (!file) return;
    say('result', 'busy', data.t.hashing);
    file.arrayBuffer().then(function (buf) { return sha256(new Uint8Array(buf)); }).then(function (d) {
      var h = hex(d), match = null;
      data.versions.forEach(function (v) { if (v.sha256 === h) match = v; });
      document.getElementById('file-hash').textContent = h;
      var res = document.getElementById('result');
      if (!match) { say('result', 'bad', data.t.noMatch); res.dataset.match = 'none'; return; }
      res.dataset.match = String(match.version);
      if (data.status === 'recalled') say('result', 'bad', fill(data.t.matchRecalled, match.version, data.latest));
      else if (match.version < data.latest) say('result', 'warn', fill(data.t.matchOld, match.version, data.latest));
      else say('result', 'ok', fill(data.t.matchOk, match.version, data.latest));
    }).catch(function (e) { say('result', 'bad', String(e && e.message || e)); });
  }
  input.addEventListener('change', function () { check(input.files[0]); });
  ['dragenter', 'dragover'].forEach(function (ev) { drop.addEventListener(ev, function (e) { e.preventDefault(); drop.classList.add('over'); }); });
  ['dragleave', 'drop'].forEach(function (ev) { drop.addEventListener(ev, function (e) { e.preventDefault(); drop.classList.remove('over'); }); });
  drop.addEventListener('drop', function (e) { check(e.dataTransfer.files[0]); });
})();`;
