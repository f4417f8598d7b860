/**
 * Several detector sessions of one model behind the interface of one: each image goes to the
 * session with the fewest images in hand. One session with N intra-op threads parallelizes inside
 * each inference; N sessions with one thread each infer N images at once, which keeps every core
 * busy through the serial parts of the network (better throughput, each image a bit slower).
 */
import { VigilError } from '../lib/errors.js';
import { Detector, type DetectorModelInfo, type DetectorOptions } from './detector.js';
import type { DetectionResult } from './schema.js';

/** What the detect stage needs from a detector: a model identity and `detect`. */
export interface ImageDetector {
  readonly model: DetectorModelInfo;
  detect(bytes: Buffer): Promise<DetectionResult>;
  release(): Promise<void>;
}

/** A pool of {@link Detector} sessions (see the module comment). */
export class DetectorPool implements ImageDetector {
  readonly #sessions: Detector[];
  readonly #busy: number[];

  private constructor(sessions: Detector[]) {
    this.#sessions = sessions;
    this.#busy = sessions.map(() => 0);
  }

  /**
   * Loads `sessions` sessions of the model, sharing `threads` intra-op threads between them
   * (at least one each).
   * @throws VigilError E_CONFIG for a bad count; the errors of {@link Detector.load}.
   */
  static async load(configPath: string, opts: DetectorOptions & { sessions?: number } = {}): Promise<DetectorPool> {
    const n = opts.sessions ?? 1;
    if (!Number.isInteger(n) || n < 1 || n > 64) throw new VigilError('E_CONFIG', `sessions must be an integer 1-64, got ${n}`);
    const threads = opts.threads === undefined ? undefined : Math.max(1, Math.floor(opts.threads / n));
    const sessions: Detector[] = [];
    try {
      for (let i = 0; i < n; i++) sessions.push(await Detector.load(configPath, { ...opts, threads }));
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
