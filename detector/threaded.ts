/**
 * A detector in its own worker thread, with the interface of one in this thread. onnxruntime-node
 * runs `session.run` synchronously on the thread that calls it (its async API only defers the
 * call), so on the main thread every inference would freeze the API, git writes and the Temporal
 * worker for its whole duration. In a thread, only the image bytes go over (copied) and the
 * detections come back.
 */
import { Worker } from 'node:worker_threads';
import { VigilError, type VigilErrorCode } from '../lib/errors.js';
import type { DetectorModelInfo, DetectorOptions } from './detector.js';
import type { ImageDetector } from './pool.js';
import type { DetectionResult } from './schema.js';
import type { ThreadData, ThreadReply, ThreadRequest } from './threadMain.js';

const ENTRY = new URL('./thread.mjs', import.meta.url);

/** A request before it gets its id (distributes over the union). */
type Unsent<T> = T extends unknown ? Omit<T, 'id'> : never;

function toError(r: Extract<ThreadReply, { ok: false }>): Error {
  return r.code ? new VigilError(r.code as VigilErrorCode, r.message) : new VigilError('E_MODEL', `detector thread: ${r.message}`);
}

/** See the module comment. */
export class ThreadedDetector implements ImageDetector {
  readonly #worker: Worker;
  readonly #model: DetectorModelInfo;
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  #next = 1;
  #released = false;

  private constructor(worker: Worker, model: DetectorModelInfo) {
    this.#worker = worker;
    this.#model = model;
    worker.on('message', (r: ThreadReply) => {
      const p = this.#pending.get(r.id);
      if (!p) return;
      this.#pending.delete(r.id);
      if (r.ok) p.resolve(r.value);
      else p.reject(toError(r));
    });
    const fail = (err: Error) => {
      for (const p of this.#pending.values()) p.reject(new VigilError('E_MODEL', `detector thread stopped: ${err.message}`));
      this.#pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`exit code ${code}`)));
  }

  /**
   * Starts a thread and loads the model in it (see {@link Detector.load} for the options and
   * errors). `nice` (default 0) lowers the priority of the thread and of onnxruntime's threads by
   * that much below the calling thread's (capped at nice 19), so that the API and the lighter
   * stages go first when the cores are busy.
   */
  static async load(configPath: string, opts: DetectorOptions & { nice?: number } = {}): Promise<ThreadedDetector> {
    const { nice = 0, ...options } = opts;
    const worker = new Worker(ENTRY, { workerData: { configPath, options, nice } satisfies ThreadData });
    const first = await new Promise<ThreadReply>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new VigilError('E_MODEL', `detector thread exited (${code}) while loading ${configPath}`)));
    });
    if (!first.ok) {
      await worker.terminate();
      throw toError(first);
    }
    return new ThreadedDetector(worker, first.value as DetectorModelInfo);
  }

  /** The loaded model. */
  get model(): DetectorModelInfo {
    return this.#model;
  }

  #call<T>(req: Unsent<ThreadRequest>, transfer: ArrayBuffer[] = []): Promise<T> {
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.#worker.postMessage({ ...req, id } as ThreadRequest, transfer);
    });
  }

  /** {@link Detector.detect}, in the thread. */
  detect(bytes: Buffer): Promise<DetectionResult> {
    if (this.#released) return Promise.reject(new VigilError('E_MODEL', `detector for ${this.#model.name} has been released`));
    const copy = new Uint8Array(bytes); // the caller keeps its buffer; the copy is moved, not cloned again
    return this.#call<DetectionResult>({ op: 'detect', bytes: copy }, [copy.buffer as ArrayBuffer]);
  }

  /** Releases the session after the queued images, then ends the thread. Idempotent. */
  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    await this.#call({ op: 'release' }).catch(() => undefined);
    await this.#worker.terminate();
  }
}
