import { countLooseObjects, countPacks, packRepo, type PackResult } from './api/pack.js';
import { listRepoNames, type RepoStore } from './store.js';

const DEFAULT_PACK_LIMIT = 50;

/** How the {@link AutoPacker} works. */
export interface AutoPackOptions {
  /** A repo is packed once it has at least this many loose objects (0: never for its loose objects)... */
  looseLimit: number;
  /**
   * ...or at least this many packs (default 50; 0: never for packs): the frames repo's group
   * commits each write a small pack (see commitChanges), which this rolls up, since every pack is
   * one more index to look in. With both limits 0 the packer does nothing.
   */
  packLimit?: number;
  /** How often the repos are checked (ms). */
  intervalMs: number;
  /** Told about each repo packed and each failure. */
  log?: (msg: string) => void;
}

/** What the packer did last (GET /v1/health shows it). */
export interface AutoPackStatus {
  looseLimit: number;
  packLimit: number;
  /** When the last check ended (ISO), null before the first. */
  lastCheckAt: string | null;
  /** Repos packed since the packer started. */
  packed: number;
  /** The last pack of each repo. */
  last: Record<string, PackResult & { at: string }>;
  /** The last failure, null once a later check succeeds. */
  lastError: string | null;
}

/**
 * Packs the repos of a data folder in the background (what `git gc --auto` does for git): every
 * `intervalMs` it counts each repo's loose objects and packs, and packs the repos that have
 * `looseLimit` loose objects or `packLimit` packs or more (packRepo: incremental, geometric, no
 * writer lock, lowest CPU priority). `vigil replay`
 * reads packed detections about twice as fast as loose ones (bench rules-replay) and packed
 * metadata takes about an eighth of the space (bench storage), so replaying history needs no
 * manual `vigil repo gc`.
 */
export class AutoPacker {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<PackResult[]> | null = null;
  /** Aborted by stop(): stops a pack in progress, and the checks. */
  private abort = new AbortController();
  private readonly state: AutoPackStatus;

  constructor(private readonly store: RepoStore, private readonly opts: AutoPackOptions) {
    this.state = { looseLimit: opts.looseLimit, packLimit: opts.packLimit ?? DEFAULT_PACK_LIMIT, lastCheckAt: null, packed: 0, last: {}, lastError: null };
  }

  /** Checks every repo once and packs those over the limit (one at a time). Never runs twice at once. */
  runOnce(): Promise<PackResult[]> {
    this.running ??= this.check().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async check(): Promise<PackResult[]> {
    const out: PackResult[] = [];
    if (this.opts.looseLimit <= 0 && this.state.packLimit <= 0) return out;
    const errors: string[] = [];
    for (const repo of await listRepoNames(this.store)) {
      if (this.abort.signal.aborted) break;
      try {
        const loose = this.opts.looseLimit > 0 && (await countLooseObjects(this.store, repo)) >= this.opts.looseLimit;
        if (!loose && (this.state.packLimit <= 0 || (await countPacks(this.store, repo)) < this.state.packLimit)) continue;
        const r = await packRepo(this.store, repo, { signal: this.abort.signal });
        out.push(r);
        this.state.packed++;
        this.state.last[repo] = { ...r, at: new Date().toISOString() };
        this.opts.log?.(`vigil: packed ${repo}: ${r.looseBefore} loose object(s) -> ${r.looseAfter}, ${r.packsBefore} pack(s) -> ${r.packsAfter}, ${r.ms} ms`);
      } catch (err) {
        if (!this.abort.signal.aborted) errors.push(`${repo}: ${(err as Error).message}`);
      }
    }
    this.state.lastCheckAt = new Date().toISOString();
    const error = errors.length ? errors.join('; ') : null;
    // Said once, not at every check while it lasts (e.g. git not installed).
    if (error && error !== this.state.lastError) this.opts.log?.(`vigil: packing failed: ${error}`);
    this.state.lastError = error;
    return out;
  }

  /** Checks every intervalMs until stop(). */
  start(): void {
    if (this.timer || (this.opts.looseLimit <= 0 && this.state.packLimit <= 0)) return;
    if (this.abort.signal.aborted) this.abort = new AbortController();
    const tick = () => {
      void this.runOnce().finally(() => {
        if (!this.abort.signal.aborted) this.timer = setTimeout(tick, this.opts.intervalMs).unref();
      });
    };
    this.timer = setTimeout(tick, this.opts.intervalMs).unref();
  }

  /** Stops checking; a pack in progress is stopped (git leaves the repo as it was) and waited for. */
  async stop(): Promise<void> {
    this.abort.abort();
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running?.catch(() => undefined);
  }

  /** What the packer did last. */
  status(): AutoPackStatus {
    return structuredClone(this.state);
  }
}
