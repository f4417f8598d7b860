/**
 * Inside the writer thread (see writerThread.ts): the ingest path's file creation, off the main
 * thread. Two operations: write one commit's loose git objects (compressed, each to a temp file
 * renamed into place, as git does), and stage a frame's bytes (hash, then a new temp file in the
 * object store). Synchronous calls only: this thread does nothing else.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { threadId, parentPort } from 'node:worker_threads';
import { deflateSync } from 'node:zlib';
import { closeQuietly, rmQuietly, writeAllSync } from '../lib/fsync.js';

/** One object to write: its final file and its uncompressed `<type> <size>\0<content>`. */
export interface LooseItem {
  file: string;
  raw: Uint8Array;
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
export type WriterRequest = { id: number; op: 'loose'; items: LooseItem[] } | ({ id: number; op: 'stage' } & StageRequest);

/** Sent back: the result, or the first failure (its errno code kept; `sha256` when known). */
export type WriterReply = { id: number; ok: true; value: Uint8Array[] | StageResult } | { id: number; ok: false; code?: string; message: string; sha256?: string };

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

/** Writes one object whole or not at all; returns its compressed bytes. */
function writeLoose(item: LooseItem): Uint8Array {
  const data = deflateSync(item.raw, { level: 1 });
  const tmp = path.join(path.dirname(item.file), `tmp_obj_${process.pid}_t${threadId}_${++seq}`);
  let fd: number | null = null;
  try {
    fd = create(tmp, 'w');
    writeAllSync(fd, data);
    fs.closeSync(fd);
    fd = null;
    fs.renameSync(tmp, item.file);
  } catch (err) {
    closeQuietly(fd);
    rmQuietly(tmp);
    throw err;
  }
  return data;
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
      // Tight copies: zlib's output is a view into a 16 KiB buffer, which a message would copy whole.
      reply = { id: req.id, ok: true, value: req.op === 'loose' ? req.items.map((item) => new Uint8Array(writeLoose(item))) : stage(req, known) };
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      reply = { id: req.id, ok: false, ...(e?.code ? { code: e.code } : {}), ...(known.sha256 ? { sha256: known.sha256 } : {}), message: e instanceof Error ? e.message : String(err) };
    }
    port.postMessage(reply);
  });
}
