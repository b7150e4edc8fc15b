/**
 * Real IPFS content identifiers for uploaded files, computed with the reference UnixFS importer:
 * CIDv0 exactly as `ipfs add` makes it by default (dag-pb leaves, 256 KiB chunks, balanced layout
 * of 174 links), and CIDv1 as `ipfs add --cid-version=1` (raw leaves, base32).
 */
import { BlackHoleBlockstore } from 'blockstore-core/black-hole';
import { importer } from 'ipfs-unixfs-importer';

export interface Cids {
  v0: string;
  v1: string;
}

async function cidOf(data: Uint8Array, cidVersion: 0 | 1): Promise<string> {
  const store = new BlackHoleBlockstore();
  let last: string | null = null;
  for await (const entry of importer([{ content: data }], store, { profile: 'unixfs-v0-2015', cidVersion, rawLeaves: cidVersion === 1 })) {
    last = entry.cid.toString();
  }
  if (!last) throw new Error('importer produced no CID');
  return last;
}

export async function cidsOf(data: Uint8Array): Promise<Cids> {
  return { v0: await cidOf(data, 0), v1: await cidOf(data, 1) };
}
