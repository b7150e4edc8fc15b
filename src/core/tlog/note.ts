/**
 * Signed notes (C2SP signed-note) with Ed25519, and checkpoints (C2SP tlog-checkpoint).
 *
 * A note is UTF-8 text ending in a newline, then a blank line, then signature lines
 * `— <key name> <base64(key hash ‖ signature)>`. For Ed25519 the key hash is the first four bytes
 * of SHA-256(<key name> ‖ 0x0A ‖ 0x01 ‖ public key) and the verifier key is written
 * `<key name>+<key hash, 8 hex digits>+<base64(0x01 ‖ public key)>`.
 * A checkpoint's note text is `<origin>\n<tree size>\n<base64 root hash>\n` plus optional extension lines.
 * Pure functions of node:crypto only, so the offline verifier uses them as they are.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';

const ALG_ED25519 = 0x01;
const SIG_PREFIX = '\u2014 '; // em dash, space
const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

export class NoteError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NoteError';
  }
}

export function checkKeyName(name: string): void {
  if (!name || /[\s+]/u.test(name)) throw new NoteError('a key name is non-empty and has no spaces or "+"');
}

export function keyHash(name: string, publicKey: Buffer): Buffer {
  return createHash('sha256')
    .update(Buffer.from(name + '\n', 'utf8'))
    .update(Buffer.from([ALG_ED25519]))
    .update(publicKey)
    .digest()
    .subarray(0, 4);
}

export function rawPublicKey(key: KeyObject): Buffer {
  const der = key.export({ format: 'der', type: 'spki' });
  return Buffer.from(der.subarray(der.length - 32));
}

function publicKeyObject(raw: Buffer): KeyObject {
  return createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, raw]), format: 'der', type: 'spki' });
}

export interface NoteSigner {
  name: string;
  publicKey: Buffer;
  keyHash: Buffer;
  sign(msg: Buffer): Buffer;
}

/** A new Ed25519 private key as PKCS#8 DER (store it sealed). */
export function generateSigningKey(): Buffer {
  return generateKeyPairSync('ed25519').privateKey.export({ format: 'der', type: 'pkcs8' });
}

export function noteSigner(name: string, pkcs8: Buffer): NoteSigner {
  checkKeyName(name);
  const priv = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
  if (priv.asymmetricKeyType !== 'ed25519') throw new NoteError('the log key is not an Ed25519 key');
  const pub = rawPublicKey(createPublicKey(priv));
  return { name, publicKey: pub, keyHash: keyHash(name, pub), sign: (msg) => sign(null, msg, priv) };
}

/** `<name>+<hash hex>+<base64(0x01 ‖ key)>` */
export function verifierKey(name: string, publicKey: Buffer): string {
  checkKeyName(name);
  return `${name}+${keyHash(name, publicKey).toString('hex')}+${Buffer.concat([Buffer.from([ALG_ED25519]), publicKey]).toString('base64')}`;
}

export interface Verifier {
  name: string;
  keyHash: Buffer;
  publicKey: Buffer;
}

export function parseVerifierKey(vkey: string): Verifier {
  // The base64 key may itself contain '+': split at the first two only.
  const s = vkey.trim();
  const p1 = s.indexOf('+');
  const p2 = p1 < 0 ? -1 : s.indexOf('+', p1 + 1);
  if (p1 < 0 || p2 < 0) throw new NoteError('a verifier key has the form <name>+<hash>+<key>');
  const [name, hashHex, keyB64] = [s.slice(0, p1), s.slice(p1 + 1, p2), s.slice(p2 + 1)];
  checkKeyName(name);
  if (!/^[0-9a-f]{8}$/.test(hashHex)) throw new NoteError('the verifier key hash is 8 hex digits');
  const key = Buffer.from(keyB64, 'base64');
  if (key.length !== 33 || key[0] !== ALG_ED25519) throw new NoteError('only Ed25519 verifier keys are supported');
  const publicKey = key.subarray(1);
  if (!keyHash(name, publicKey).equals(Buffer.from(hashHex, 'hex'))) throw new NoteError('the verifier key hash does not match its name and key');
  return { name, keyHash: Buffer.from(hashHex, 'hex'), publicKey };
}

function checkText(text: string): void {
  if (!text.endsWith('\n')) throw new NoteError('note text must end with a newline');
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x09\x0b-\x1f\x7f]/.test(text)) throw new NoteError('note text has control characters');
}

export function signNote(text: string, signer: NoteSigner): string {
  checkText(text);
  const sig = signer.sign(Buffer.from(text, 'utf8'));
  return `${text}\n${SIG_PREFIX}${signer.name} ${Buffer.concat([signer.keyHash, sig]).toString('base64')}\n`;
}

/** Verifies a note against one verifier key; returns its text. Signatures by other keys are ignored. */
export function openNote(note: string, vkey: Verifier | string): string {
  const v = typeof vkey === 'string' ? parseVerifierKey(vkey) : vkey;
  const split = note.lastIndexOf('\n\n');
  if (split < 0 || !note.endsWith('\n')) throw new NoteError('malformed note: no signature block');
  const text = note.slice(0, split + 1);
  checkText(text);
  const lines = note.slice(split + 2, -1).split('\n');
  let seen = false;
  for (const line of lines) {
    if (!line.startsWith(SIG_PREFIX)) throw new NoteError('malformed signature line');
    const [name, b64, extra] = line.slice(SIG_PREFIX.length).split(' ');
    if (!name || !b64 || extra !== undefined) throw new NoteError('malformed signature line');
    const raw = Buffer.from(b64, 'base64');
    if (raw.length < 5) throw new NoteError('malformed signature');
    if (name !== v.name || !raw.subarray(0, 4).equals(v.keyHash)) continue;
    seen = true;
    if (raw.length !== 4 + 64 || !verify(null, Buffer.from(text, 'utf8'), publicKeyObject(v.publicKey), raw.subarray(4))) {
      throw new NoteError('signature does not verify');
    }
  }
  if (!seen) throw new NoteError(`note has no signature by ${v.name}`);
  return text;
}

export interface Checkpoint {
  origin: string;
  size: number;
  root: Buffer;
}

export function checkpointText(c: Checkpoint): string {
  return `${c.origin}\n${c.size}\n${c.root.toString('base64')}\n`;
}

export function parseCheckpointText(text: string): Checkpoint & { sizeBig: bigint } {
  const lines = text.split('\n');
  if (lines.length < 4) throw new NoteError('a checkpoint has an origin, a size and a root line');
  const [origin, size, root] = lines;
  if (!origin) throw new NoteError('empty checkpoint origin');
  if (!/^(0|[1-9][0-9]{0,19})$/.test(size)) throw new NoteError('checkpoint size is not a decimal number');
  const r = Buffer.from(root, 'base64');
  if (r.length !== 32 || r.toString('base64') !== root) throw new NoteError('checkpoint root is not a base64 SHA-256 hash');
  const sizeBig = BigInt(size);
  return { origin, size: Number(sizeBig), sizeBig, root: r };
}

/** Verifies a signed checkpoint with a verifier key; checks the origin when one is expected. */
export function openCheckpoint(note: string, vkey: Verifier | string, origin?: string): Checkpoint & { sizeBig: bigint } {
  const c = parseCheckpointText(openNote(note, vkey));
  if (origin !== undefined && c.origin !== origin) throw new NoteError(`checkpoint origin ${c.origin} is not ${origin}`);
  return c;
}
