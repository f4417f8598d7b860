/**
 * Inside a detector thread: one {@link Detector} serving `detect` messages from the main thread.
 * Runs in a worker_thread because onnxruntime-node infers synchronously on the calling thread: on
 * the main thread each inference would stall the HTTP API, git writes and the Temporal worker.
 */
import os from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { isVigilError } from '../lib/errors.js';
import { Detector, type DetectorOptions } from './detector.js';

/** Sent by the main thread. */
export type ThreadRequest = { id: number; op: 'detect'; bytes: Uint8Array } | { id: number; op: 'release' };
/** Sent back: a result, or an error with its VigilError code when it had one. */
export type ThreadReply = { id: number; ok: true; value: unknown } | { id: number; ok: false; code?: string; message: string };

/** What the main thread passes in `workerData`. */
export interface ThreadData {
  configPath: string;
  options: DetectorOptions;
  /** How much to lower the priority of this thread and the inference threads it creates, below the thread that made it (Linux: per thread; capped at nice 19). */
  nice: number;
}

function failure(id: number, err: unknown): ThreadReply {
  return isVigilError(err) ? { id, ok: false, code: err.code, message: err.message } : { id, ok: false, message: err instanceof Error ? err.message : String(err) };
}

/** Loads the detector and serves requests until `release`. */
export async function serveDetector(): Promise<void> {
  const port = parentPort!;
  const data = workerData as ThreadData;
  if (data.nice !== 0) {
    try {
      // Below the rest of its process (this thread starts at the nice of the thread that made it:
      // 10 in a worker process of `vigil start`), this thread only; onnxruntime's threads inherit it.
      os.setPriority(0, Math.min(19, os.getPriority(0) + data.nice));
    } catch {
      // not permitted: run at normal priority
    }
  }
  let detector: Detector;
  try {
    detector = await Detector.load(data.configPath, data.options);
  } catch (err) {
    port.postMessage(failure(0, err));
    return;
  }
  port.postMessage({ id: 0, ok: true, value: detector.model } satisfies ThreadReply);
  port.on('message', (req: ThreadRequest) => {
    if (req.op === 'release') {
      void detector.release().then(() => {
        port.postMessage({ id: req.id, ok: true, value: null } satisfies ThreadReply);
        port.close();
      });
      return;
    }
    detector.detect(Buffer.from(req.bytes.buffer, req.bytes.byteOffset, req.bytes.byteLength)).then(
      (value) => port.postMessage({ id: req.id, ok: true, value } satisfies ThreadReply),
      (err) => port.postMessage(failure(req.id, err)),
    );
  });
}
