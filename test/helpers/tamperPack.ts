import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { crc32, deflateSync } from 'node:zlib';

const TYPES: Record<string, number> = { commit: 1, tree: 2, blob: 3, tag: 4 };

/**
 * Replaces a git repo's objects with one pack (version 2, no deltas) and its index, in which the
 * object `oid` holds `edit(its content)` but is still indexed under `oid`: a packed object whose
 * bytes no longer hash to its id, as bit rot or a tamperer would leave it. Loose objects stay
 * where they are; pack them first.
 */
export function rewritePackWithTamperedObject(gitdir: string, oid: string, edit: (content: Buffer) => Buffer): void {
  const git = (...args: string[]) => execFileSync('git', ['--git-dir', gitdir, ...args], { maxBuffer: 1 << 28 });
  const objects = git('cat-file', '--batch-all-objects', '--batch-check').toString().trim().split('\n').map((l) => {
    const [id, type] = l.split(' ') as [string, string];
    const content = git('cat-file', type, id);
    return { id, type, content: id === oid ? edit(content) : content };
  });
  if (!objects.some((o) => o.id === oid)) throw new Error(`no object ${oid} in ${gitdir}`);
  const head = Buffer.alloc(12);
  head.write('PACK');
  head.writeUInt32BE(2, 4);
  head.writeUInt32BE(objects.length, 8);
  const parts = [head];
  const entries: { id: string; offset: number; crc: number }[] = [];
  let offset = 12;
  for (const o of objects) {
    // Entry header: type and size, 4 bits then 7 bits per byte, little end first.
    let size = o.content.length;
    const h: number[] = [];
    let b = (TYPES[o.type]! << 4) | (size & 15);
    size >>= 4;
    while (size) {
      h.push(b | 0x80);
      b = size & 0x7f;
      size >>= 7;
    }
    h.push(b);
    const entry = Buffer.concat([Buffer.from(h), deflateSync(o.content)]);
    entries.push({ id: o.id, offset, crc: crc32(entry) });
    parts.push(entry);
    offset += entry.length;
  }
  const body = Buffer.concat(parts);
  const packSum = createHash('sha1').update(body).digest();
  entries.sort((a, b) => (a.id < b.id ? -1 : 1));
  const fanout = Buffer.alloc(1024);
  for (let i = 0; i < 256; i++) fanout.writeUInt32BE(entries.filter((e) => parseInt(e.id.slice(0, 2), 16) <= i).length, i * 4);
  const u32s = (xs: number[]) => {
    const b = Buffer.alloc(4 * xs.length);
    xs.forEach((x, i) => b.writeUInt32BE(x >>> 0, i * 4));
    return b;
  };
  const idxBody = Buffer.concat([Buffer.from([0xff, 0x74, 0x4f, 0x63, 0, 0, 0, 2]), fanout, ...entries.map((e) => Buffer.from(e.id, 'hex')), u32s(entries.map((e) => e.crc)), u32s(entries.map((e) => e.offset)), packSum]);
  const dir = path.join(gitdir, 'objects', 'pack');
  for (const f of fs.readdirSync(dir)) fs.rmSync(path.join(dir, f), { force: true });
  const name = `pack-${packSum.toString('hex')}`;
  fs.writeFileSync(path.join(dir, `${name}.pack`), Buffer.concat([body, packSum]));
  fs.writeFileSync(path.join(dir, `${name}.idx`), Buffer.concat([idxBody, createHash('sha1').update(idxBody).digest()]));
}
