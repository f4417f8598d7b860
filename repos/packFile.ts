import { createHash } from 'node:crypto';
import { deflateSync } from 'node:zlib';
import { crc32 } from '../lib/crc32.js';

/*
 * Git pack files (version 2) and their indexes (version 2), written whole for one commit's objects.
 * Format: git's Documentation/gitformat-pack.txt. Each object is stored whole (no deltas):
 * a type-and-size header, then its content deflated. The index lists the objects' ids in order,
 * each with the CRC-32 of its stored bytes and its offset in the pack.
 */

/** Git's pack type codes of the object types Vigil writes. */
const TYPE_CODES: Record<string, number> = { commit: 1, tree: 2, blob: 3 };

/** A pack and its index, named as git names them (`pack-<the pack's SHA-1>`). */
export interface EncodedPack {
  /** `pack-<40 hex>`: the files are `<name>.pack` and `<name>.idx` in `objects/pack`. */
  name: string;
  pack: Buffer;
  idx: Buffer;
}

/** One object to pack: its id (the caller hashed it already) and its bytes as git hashes them. */
export interface PackObject {
  oid: string;
  /** `<type> <size>\0<content>`, type commit, tree or blob. */
  raw: Uint8Array;
}

/** The header of a packed object: type and size, 4 bits of size, then 7 bits per byte. */
function objectHeader(type: number, size: number): Buffer {
  const bytes: number[] = [];
  let byte = (type << 4) | (size & 0x0f);
  let rest = Math.floor(size / 16);
  while (rest > 0) {
    bytes.push(byte | 0x80);
    byte = rest & 0x7f;
    rest = Math.floor(rest / 128);
  }
  bytes.push(byte);
  return Buffer.from(bytes);
}

/**
 * Encodes git objects as one pack and its index; an object given twice is stored once.
 * @throws Error for an object that is not in that form (a bug in the caller).
 */
export function encodePack(objects: readonly PackObject[]): EncodedPack {
  const entries: Array<{ oid: Buffer; offset: number; crc: number }> = [];
  const seen = new Set<string>();
  const parts: Buffer[] = [];
  let offset = 12;
  for (const { oid: key, raw: r } of objects) {
    if (seen.has(key)) continue;
    seen.add(key);
    const raw = Buffer.from(r.buffer, r.byteOffset, r.byteLength);
    const oid = Buffer.from(key, 'hex');
    if (oid.length !== 20) throw new Error(`encodePack: ${JSON.stringify(key)} is not an object id`);
    const nul = raw.indexOf(0);
    const m = /^(commit|tree|blob) (\d+)$/.exec(nul > 0 ? raw.toString('latin1', 0, nul) : '');
    if (!m || Number(m[2]) !== raw.length - nul - 1) throw new Error(`encodePack: object ${key} has no valid git header`);
    const stored = Buffer.concat([objectHeader(TYPE_CODES[m[1]!]!, raw.length - nul - 1), deflateSync(raw.subarray(nul + 1), { level: 1 })]);
    entries.push({ oid, offset, crc: crc32(stored) });
    parts.push(stored);
    offset += stored.length;
  }
  const head = Buffer.alloc(12);
  head.write('PACK', 0, 'latin1');
  head.writeUInt32BE(2, 4);
  head.writeUInt32BE(entries.length, 8);
  const body = Buffer.concat([head, ...parts]);
  const checksum = createHash('sha1').update(body).digest();
  const pack = Buffer.concat([body, checksum]);

  entries.sort((a, b) => Buffer.compare(a.oid, b.oid));
  const fanout = Buffer.alloc(256 * 4);
  for (let i = 0, e = 0; i < 256; i++) {
    while (e < entries.length && entries[e]!.oid[0]! <= i) e++;
    fanout.writeUInt32BE(e, i * 4);
  }
  const crcs = Buffer.alloc(entries.length * 4);
  const offsets = Buffer.alloc(entries.length * 4);
  entries.forEach((e, i) => {
    crcs.writeUInt32BE(e.crc, i * 4);
    // Packs Vigil writes hold one commit's objects, far below the 2 GiB where 8-byte offsets start.
    if (e.offset >= 0x80000000) throw new Error('encodePack: a pack of 2 GiB or more needs 8-byte offsets');
    offsets.writeUInt32BE(e.offset, i * 4);
  });
  const idxBody = Buffer.concat([Buffer.from([0xff, 0x74, 0x4f, 0x63, 0, 0, 0, 2]), fanout, ...entries.map((e) => e.oid), crcs, offsets, checksum]);
  const idx = Buffer.concat([idxBody, createHash('sha1').update(idxBody).digest()]);
  return { name: `pack-${checksum.toString('hex')}`, pack, idx };
}
