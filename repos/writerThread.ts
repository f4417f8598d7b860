/**
 * The ingest path's file creation, in a worker thread of its own. Per frame, the API stages the
 * frame's bytes (a sha256 and a new temp file) and its group commit writes one git object per
 * frame document plus three folders per camera, the root and the commit (one pack, see
 * writePackInThread). Creating those files and compressing the objects on the main thread took
 * about half of its time at 300 frames/s, and every HTTP request waited behind it. In the thread,
 * the main thread only parses, hashes trees and journals; the requests are served meanwhile.
 *
 * One thread per process, started by startWriterThread() or on first use; it holds the process
 * open only while a request is in flight, and a thread that died is started again by the next
 * request.
 */
import { Worker } from 'node:worker_threads';
import type { PackRequest, PackResult, StageRequest, StageResult, WriterReply, WriterRequest } from './writerThreadMain.js';

const ENTRY = new URL('./writerThread.mjs', import.meta.url);

/** A failure in the thread, with the file system's errno code when it had one (e.g. ENOSPC). */
export class WriterThreadError extends Error {
  constructor(
    message: string,
    readonly code?: string,
    /** The bytes' sha256 when a stage failed after hashing them. */
    readonly sha256?: string,
  ) {
    super(message);
  }
}

type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void };
let thread: { worker: Worker; pending: Map<number, Pending> } | null = null;
let next = 1;

function start(): NonNullable<typeof thread> {
  // No flags of the main thread: the entry registers tsx itself, and a thread refuses some flags a
  // process takes (--input-type of a `node -e` snippet; --max-old-space-size, --expose-gc...).
  const worker = new Worker(ENTRY, { execArgv: [] });
  const t = { worker, pending: new Map<number, Pending>() };
  worker.unref();
  worker.on('message', (r: WriterReply) => {
    const p = t.pending.get(r.id);
    if (!p) return;
    t.pending.delete(r.id);
    if (t.pending.size === 0) worker.unref();
    if (r.ok) p.resolve(r.value);
    else p.reject(new WriterThreadError(r.message, r.code, r.sha256));
  });
  const fail = (err: Error) => {
    if (thread === t) thread = null;
    for (const p of t.pending.values()) p.reject(new WriterThreadError(`writer thread stopped: ${err.message}`));
    t.pending.clear();
  };
  worker.on('error', fail);
  worker.on('exit', (code) => fail(new Error(`exit code ${code}`)));
  return t;
}

/** A request before it gets its id (distributes over the union). */
type Unsent<T> = T extends unknown ? Omit<T, 'id'> : never;

function call<T>(req: Unsent<WriterRequest>): Promise<T> {
  thread ??= start();
  const t = thread;
  const id = next++;
  return new Promise<T>((resolve, reject) => {
    if (t.pending.size === 0) t.worker.ref();
    t.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
    t.worker.postMessage({ ...req, id } as WriterRequest);
  });
}

/** A commit's pack as written by {@link writePackInThread}. */
export interface WrittenPack {
  pack: { file: string; data: Buffer };
  /** False when the same pack was there already (an identical commit's): not this call's to remove. */
  created: boolean;
  idx: { file: string; data: Buffer };
  /** The index's temp file: rename it to `idx.file` once the commit is journaled, or remove it (and the pack) when the commit fails. */
  idxTemp: string;
}

/**
 * Writes one commit's git objects as one pack and its index in the repo's `objects/pack` folder
 * (see repos/packFile.ts): the pack in place (temp file renamed), the index in a temp file, since
 * git finds packs by their indexes (see writerThreadMain.ts). The folder is made when missing.
 * Not fsync'd: the caller makes them durable (the frames repo: through its journal, with the
 * returned bytes).
 * @throws WriterThreadError with the file system's `code` (ENOSPC, EACCES...) when a write fails;
 *   nothing is left behind then.
 */
export async function writePackInThread(req: PackRequest): Promise<WrittenPack> {
  const r = await call<PackResult>({ op: 'pack', ...req });
  const buf = (d: Uint8Array) => Buffer.from(d.buffer, d.byteOffset, d.byteLength);
  return { pack: { file: r.pack.file, data: buf(r.pack.data) }, created: r.created, idx: { file: r.idx.file, data: buf(r.idx.data) }, idxTemp: r.idxTemp };
}

/**
 * Hashes bytes (sha256) and, unless an object of that size is stored under the hash, writes them
 * to a new temp file under `<root>/tmp` (see ObjectStore.stage), not fsync'd.
 * @throws WriterThreadError with the file system's `code` and, once known, the `sha256`.
 */
export function stageInThread(req: StageRequest): Promise<StageResult> {
  return call<StageResult>({ op: 'stage', ...req });
}

/**
 * Starts the thread now and resolves once it answers. Loading it (its own TypeScript loader) took
 * 170 ms on an idle machine and several hundred under load: on first use, the first frames after
 * `vigil start` waited that long, and under a steady stream of frames the backlog it left took
 * seconds to catch up (the API's open-loop bench). The API starts it before it listens.
 */
export async function startWriterThread(): Promise<void> {
  await call<null>({ op: 'ping' });
}
