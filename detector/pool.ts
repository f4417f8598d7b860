/**
 * Several detector sessions of one model behind the interface of one: each image goes to the
 * session with the fewest images in hand. One session with N intra-op threads parallelizes inside
 * each inference; N sessions with one thread each infer N images at once, which keeps every core
 * busy through the serial parts of the network (better throughput, each image a bit slower).
 */
import { VigilError } from '../lib/errors.js';
import { Detector, type DetectorModelInfo, type DetectorOptions } from './detector.js';
import { ThreadedDetector } from './threaded.js';
import type { DetectionResult } from './schema.js';

/** What the detect stage needs from a detector: a model identity and `detect`. */
export interface ImageDetector {
  readonly model: DetectorModelInfo;
  detect(bytes: Buffer): Promise<DetectionResult>;
  release(): Promise<void>;
}

/** A pool of {@link Detector} sessions (see the module comment). */
export class DetectorPool implements ImageDetector {
  readonly #sessions: ImageDetector[];
  readonly #busy: number[];

  private constructor(sessions: ImageDetector[]) {
    this.#sessions = sessions;
    this.#busy = sessions.map(() => 0);
  }

  /**
   * Loads `sessions` sessions of the model, sharing `threads` intra-op threads between them
   * (at least one each). With `threaded`, each session lives in its own worker thread (see
   * ThreadedDetector; `nice` lowers its priority), so inference never blocks this thread.
   * @throws VigilError E_CONFIG for a bad count; the errors of {@link Detector.load}.
   */
  static async load(configPath: string, opts: DetectorOptions & { sessions?: number; threaded?: boolean; nice?: number } = {}): Promise<DetectorPool> {
    const n = opts.sessions ?? 1;
    if (!Number.isInteger(n) || n < 1 || n > 64) throw new VigilError('E_CONFIG', `sessions must be an integer 1-64, got ${n}`);
    const { sessions: _n, threaded, nice, ...detectorOpts } = opts;
    const threads = opts.threads === undefined ? undefined : Math.max(1, Math.floor(opts.threads / n));
    const sessions: ImageDetector[] = [];
    try {
      for (let i = 0; i < n; i++) {
        sessions.push(threaded ? await ThreadedDetector.load(configPath, { ...detectorOpts, threads, nice }) : await Detector.load(configPath, { ...detectorOpts, threads }));
      }
    } catch (err) {
      await Promise.all(sessions.map((s) => s.release()));
      throw err;
    }
    return new DetectorPool(sessions);
  }

  /** The model (the same for every session). */
  get model(): DetectorModelInfo {
    return this.#sessions[0]!.model;
  }

  /** Number of sessions. */
  get size(): number {
    return this.#sessions.length;
  }

  /** {@link Detector.detect} on the least busy session. */
  async detect(bytes: Buffer): Promise<DetectionResult> {
    let i = 0;
    for (let k = 1; k < this.#busy.length; k++) if (this.#busy[k]! < this.#busy[i]!) i = k;
    this.#busy[i]!++;
    try {
      return await this.#sessions[i]!.detect(bytes);
    } finally {
      this.#busy[i]!--;
    }
  }

  /** Releases every session once its queued images are done. */
  async release(): Promise<void> {
    await Promise.all(this.#sessions.map((s) => s.release()));
  }
}
