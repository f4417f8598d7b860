/**
 * Inside the writer thread (see writerThread.ts): the ingest path's file creation, off the main
 * thread. Two operations: write one commit's git objects as one pack (a temp file renamed into
 * place, as git does) and its index (left in a temp file, for the caller to name), and stage a
 * frame's bytes (hash, then a new temp file in the object store). Synchronous calls only: this
 * thread does nothing else.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { threadId, parentPort } from 'node:worker_threads';
import { closeQuietly, rmQuietly, writeAllSync } from '../lib/fsync.js';
import { encodePack, type PackObject } from './packFile.js';

/** One commit's git objects, to write as one pack (see repos/packFile.ts). */
export interface PackRequest {
  /** The repo's `objects/pack` folder. */
  dir: string;
  objects: PackObject[];
}

/**
 * A pack written: the pack in place, its index in a temp file (`idxTemp`) that the caller renames
 * to `idx.file` once the commit is journaled (see commitChanges), and their bytes.
 */
export interface PackResult {
  pack: { file: string; data: Uint8Array };
  /** False when a pack of that name (the same objects: the name is its checksum) was there already. */
  created: boolean;
  idx: { file: string; data: Uint8Array };
  idxTemp: string;
}

/** Bytes to stage in an object store (see ObjectStore.stage). */
export interface StageRequest {
  /** The object store's root: the object goes to `<root>/<sha[0:2]>/<sha[2:]>`, its temp file to `<root>/tmp`. */
  root: string;
  bytes: Uint8Array;
}

/**
 * What staging did: the bytes' sha256, the size of an object already stored under it (null: none),
 * and the temp file written (closed) when there was none. No descriptor crosses threads: node
 * tracks the files a worker thread opens, and one closed by another thread confuses that.
 */
export interface StageResult {
  sha256: string;
  existing: number | null;
  tmp: string | null;
}

/** Sent by the main thread. */
export type WriterRequest = ({ id: number; op: 'pack' } & PackRequest) | ({ id: number; op: 'stage' } & StageRequest) | { id: number; op: 'ping' };

/** Sent back: the result, or the first failure (its errno code kept; `sha256` when known). */
export type WriterReply = { id: number; ok: true; value: PackResult | StageResult | null } | { id: number; ok: false; code?: string; message: string; sha256?: string };

let seq = 0;

/** Opens a new file for writing; a missing folder is made first. */
function create(file: string, flags: string, mode?: number): number {
  try {
    return fs.openSync(file, flags, mode);
  } catch (err) {
    // A new fan-out folder (or one `vigil repo gc` emptied and removed).
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    fs.mkdirSync(path.dirname(file), { recursive: true });
    return fs.openSync(file, flags, mode);
  }
}

/** Writes a new temp file in `dir`, named as git names its own (so git's gc clears one a crash left); returns its path. */
function writeTemp(dir: string, data: Uint8Array): string {
  const tmp = path.join(dir, `tmp_pack_${process.pid}_t${threadId}_${++seq}`);
  let fd: number | null = null;
  try {
    fd = create(tmp, 'w', 0o444);
    writeAllSync(fd, data);
    fs.closeSync(fd);
    return tmp;
  } catch (err) {
    closeQuietly(fd);
    rmQuietly(tmp);
    throw err;
  }
}

/** The bytes alone: a small Buffer is a view into node's shared pool, which a message would copy whole. */
function tight(b: Buffer): Uint8Array {
  return b.byteOffset === 0 && b.byteLength === b.buffer.byteLength ? b : new Uint8Array(b);
}

/**
 * Writes one commit's objects as a pack and its index. The pack goes into place (a temp file
 * renamed); the index stays in a temp file: git and isomorphic-git find packs by their indexes,
 * and an index that a power loss left torn would break every read of the repo, so it takes its
 * name only once the journal holds its bytes (whose recovery rewrites a torn one).
 */
function writePack(req: PackRequest): PackResult {
  const { name, pack, idx } = encodePack(req.objects);
  const packFile = path.join(req.dir, `${name}.pack`);
  // The same name is the same bytes: an identical commit's pack (same parent, tree, second) is kept.
  const created = !fs.existsSync(packFile);
  if (created) {
    const packTemp = writeTemp(req.dir, pack);
    try {
      fs.renameSync(packTemp, packFile);
    } catch (err) {
      rmQuietly(packTemp);
      throw err;
    }
  }
  try {
    const idxTemp = writeTemp(req.dir, idx);
    return { pack: { file: packFile, data: tight(pack) }, created, idx: { file: path.join(req.dir, `${name}.idx`), data: tight(idx) }, idxTemp };
  } catch (err) {
    if (created) rmQuietly(packFile);
    throw err;
  }
}

/** Hashes the bytes and, unless the store has them, writes them to a new temp file (read-only, never an existing one). */
function stage(req: StageRequest, known: { sha256?: string }): StageResult {
  const sha256 = createHash('sha256').update(req.bytes).digest('hex');
  known.sha256 = sha256;
  const existing = fs.statSync(path.join(req.root, sha256.slice(0, 2), sha256.slice(2)), { throwIfNoEntry: false })?.size ?? null;
  if (existing === req.bytes.length) return { sha256, existing, tmp: null };
  const tmp = path.join(req.root, 'tmp', `${sha256}.${process.pid}.${randomBytes(4).toString('hex')}`);
  const fd = create(tmp, 'wx', 0o444);
  try {
    writeAllSync(fd, req.bytes);
  } catch (err) {
    closeQuietly(fd);
    rmQuietly(tmp);
    throw err;
  }
  fs.closeSync(fd);
  return { sha256, existing, tmp };
}

/** Serves requests until the main thread goes away. */
export function serveWriterThread(): void {
  const port = parentPort!;
  port.on('message', (req: WriterRequest) => {
    let reply: WriterReply;
    const known: { sha256?: string } = {};
    try {
      reply = { id: req.id, ok: true, value: req.op === 'pack' ? writePack(req) : req.op === 'stage' ? stage(req, known) : null };
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      reply = { id: req.id, ok: false, ...(e?.code ? { code: e.code } : {}), ...(known.sha256 ? { sha256: known.sha256 } : {}), message: e instanceof Error ? e.message : String(err) };
    }
    port.postMessage(reply);
  });
}
