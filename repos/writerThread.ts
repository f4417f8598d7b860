/**
 * The ingest path's file creation, in a worker thread of its own. Per frame, the API stages the
 * frame's bytes (a sha256 and a new temp file) and its group commit writes one loose git object
 * per frame document plus three folders per camera, the root and the commit. Creating those files
 * (open, write, rename, close each) and compressing the objects on the main thread took about
 * half of its time at 300 frames/s, and every HTTP request waited behind it. In the thread, the
 * main thread only parses, hashes trees and journals; the requests are served meanwhile.
 *
 * One thread per process, started on first use; it holds the process open only while a request
 * is in flight, and a thread that died is started again by the next request.
 */
import { Worker } from 'node:worker_threads';
import type { LooseItem, StageRequest, StageResult, WriterReply, WriterRequest } from './writerThreadMain.js';

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

/**
 * Compresses (zlib level 1) and writes each object to its file, whole or not at all (temp file
 * renamed into place; a missing fan-out folder is made). Not fsync'd: the caller makes the
 * objects durable (the frames repo: through its journal, with the returned bytes).
 * @returns each object's compressed bytes, in order.
 * @throws WriterThreadError with the file system's `code` (ENOSPC, EACCES...) when a write fails;
 *   objects written before it stay (unreferenced loose objects, harmless).
 */
export async function writeLooseObjects(items: LooseItem[]): Promise<Buffer[]> {
  if (items.length === 0) return [];
  const data = await call<Uint8Array[]>({ op: 'loose', items });
  return data.map((d) => Buffer.from(d.buffer, d.byteOffset, d.byteLength));
}

/**
 * Hashes bytes (sha256) and, unless an object of that size is stored under the hash, writes them
 * to a new temp file under `<root>/tmp` (see ObjectStore.stage), not fsync'd.
 * @throws WriterThreadError with the file system's `code` and, once known, the `sha256`.
 */
export function stageInThread(req: StageRequest): Promise<StageResult> {
  return call<StageResult>({ op: 'stage', ...req });
}
