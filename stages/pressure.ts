/**
 * Backpressure from detect to validate inside one worker process. Validating is cheaper than
 * inferring (the detector does about 8 frames/s on 2 cores, validate several times that), and it
 * runs at normal priority while inference is niced: left alone, a burst of batches is validated
 * first and detected only afterwards, so every alert waits for the whole burst. A validate
 * therefore waits, before it starts, while this worker's detect activities fill the detect lane's
 * slots, and goes ahead once one is free (the detector is then short of work) or after `maxWaitMs`.
 */
export class DetectPressure {
  private running = 0;
  private wake: Array<() => void> = [];

  /**
   * @param slots the detect activities this worker runs at once (VIGIL_DETECT_ACTIVITIES)
   * @param maxWaitMs longest a validate waits (a detect that hangs cannot hold validation back for longer)
   * @param settleMs after a detect ends, how long a queued detect gets to take the freed slot
   *   before a waiting validate looks again (Temporal hands a queued task to a free slot in a few ms)
   */
  constructor(
    readonly slots: number,
    readonly maxWaitMs = 60_000,
    readonly settleMs = 250,
  ) {}

  /** Detect activities running in this process. */
  get inFlight(): number {
    return this.running;
  }

  /** Runs one detect activity's work, counted while it runs. */
  async detecting<T>(work: () => Promise<T>): Promise<T> {
    this.running++;
    try {
      return await work();
    } finally {
      this.running--;
      for (const wake of this.wake.splice(0)) wake();
    }
  }

  /**
   * Resolves once fewer than `slots` detects run here (checked when one ends, `settleMs` later),
   * after `maxWaitMs`, or when `signal` aborts (a cancelled activity stops waiting). Returns the
   * milliseconds waited.
   */
  async roomForValidate(signal?: AbortSignal): Promise<number> {
    const t0 = Date.now();
    while (this.running >= this.slots && !signal?.aborted) {
      const left = this.maxWaitMs - (Date.now() - t0);
      if (left <= 0) break;
      await this.until(left, signal, (wake) => this.wake.push(wake));
      await this.until(Math.min(this.settleMs, this.maxWaitMs - (Date.now() - t0)), signal);
    }
    return Date.now() - t0;
  }

  /** Waits `ms`, or less if `signal` aborts or `register`'s callback is called. */
  private until(ms: number, signal?: AbortSignal, register?: (wake: () => void) => void): Promise<void> {
    return new Promise<void>((resolve) => {
      if (ms <= 0 || signal?.aborted) return resolve();
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal?.addEventListener('abort', done, { once: true });
      register?.(done);
    });
  }
}
