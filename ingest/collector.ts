import { randomBytes } from 'node:crypto';
import fs, { promises as fsp } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { fsyncFd, writeAllSync } from '../lib/fsync.js';
import { FrameDocSchema, FrameRefSchema, type FrameDoc, type FrameRef } from '../lib/schemas.js';
import { framePath } from './frameTag.js';
import { diff, listFiles, readJson, resolveRef, repoExists, storageError, type RepoStore } from '../repos/index.js';

/** A batch the collector cut: what one batch workflow processes. */
export const BatchSpecSchema = z.object({
  batchId: z.string(),
  site: z.string(),
  framesCommit: z.string(),
  frames: z.array(FrameRefSchema),
});
export type BatchSpec = z.infer<typeof BatchSpecSchema>;

/** Shortest time between two saves of the state file (see persist()). */
const SAVE_EVERY_MS = 100;

const StateSchema = z.object({
  framesCommit: z.string().nullable(),
  pending: z.array(FrameRefSchema.extend({ at: z.number() })),
  unstarted: z.array(BatchSpecSchema),
});
type State = z.infer<typeof StateSchema>;

/** Collector settings. */
export interface CollectorOptions {
  /** Cut a batch when a site has this many pending frames. */
  maxFrames: number;
  /** …or when its oldest pending frame has waited this long. */
  maxWaitMs: number;
  /** Starts the batch workflow; must be idempotent per batchId. Throwing leaves the batch queued for retry. */
  start: (batch: BatchSpec) => Promise<void>;
  onError?: (err: unknown) => void;
}

/** What the collector holds, for the health endpoint. */
export interface CollectorStats {
  /** Frames committed and not yet in a batch. */
  pending: number;
  /** Batches cut and not yet started (Temporal was unreachable, or refused). */
  unstarted: number;
  /** Since when the oldest of them waits to start (ISO), null when none waits. */
  waitingSince: string | null;
  /** Since when starting batches has failed (ISO) and the last reason; null while they start. */
  startError: { message: string; since: string } | null;
}

/**
 * Groups accepted frames into batches per site (by count or age) and starts one batch workflow
 * each. Its state (pending frames and batches not yet started) is a small JSON file rewritten
 * atomically, so frames accepted while Temporal is down are batched once it is back, and nothing
 * is lost on a restart: frames committed after the last recorded state are found again by diffing
 * the `frames` repo. That is why recording committed frames ({@link add}) does not wait for the
 * state file: the frames commit is the durable record, the file is saved behind it (one save at a
 * time, later changes coalesced into the next). A batch is only ever started once a saved state
 * holds it, so a restart never cuts the same frames into a second batch.
 */
export class Collector {
  private state: State = { framesCommit: null, pending: [], unstarted: [] };
  /** Since when starting batches fails, and the last reason (null once one starts). */
  private startError: CollectorStats['startError'] = null;
  private timer: NodeJS.Timeout | null = null;
  private starting: Promise<number> | null = null;
  /** The saving loop (see persist), if running. */
  private saving: Promise<void> | null = null;
  /** Changes made to the state (each persist() call is one), and how many of them the last save covered. */
  private changes = 0;
  private savedThrough = 0;
  /** persist() callers waiting for a save that covers their change. */
  private waiters: Array<{ change: number; resolve: () => void; reject: (e: unknown) => void }> = [];
  /** The change that queued each batch cut in this process (see queue()). */
  private readonly cutIn = new Map<string, number>();
  /** When each batch of this run was queued to start (batches from the saved state: when this collector was made). */
  private readonly queuedAt = new Map<string, number>();
  private readonly createdAt = Date.now();
  private savedAt = -Infinity;
  private loading: Promise<void> | null = null;
  private stopped = false;
  readonly file: string;

  constructor(private readonly store: RepoStore, private readonly opts: CollectorOptions) {
    this.file = path.join(store.dataDir, 'collector.json');
  }

  /** Loads saved state and recovers frames committed after it. */
  async load(): Promise<void> {
    this.loading = (async () => {
      try {
        this.state = StateSchema.parse(JSON.parse(await fsp.readFile(this.file, 'utf8')));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
      if (!repoExists(this.store, 'frames')) return;
      const head = await resolveRef(this.store, 'frames', 'main');
      if (!head || head === this.state.framesCommit) return;
      const added = this.state.framesCommit
        ? (await diff(this.store, { repo: 'frames', ref: this.state.framesCommit }, { repo: 'frames', ref: head })).added
        : (await listFiles(this.store, 'frames', head)).map((f) => f.path);
      const known = new Set([...this.state.pending.map((p) => p.path), ...this.state.unstarted.flatMap((b) => b.frames.map((f) => f.path))]);
      for (const p of added) {
        if (known.has(p)) continue;
        const doc = FrameDocSchema.safeParse(await readJson(this.store, 'frames', p, head));
        if (doc.success) this.state.pending.push({ path: p, frameId: doc.data.frameId, site: doc.data.site, at: Date.now() });
      }
      this.state.framesCommit = head;
      await this.persist();
    })();
    await this.loading;
  }

  /**
   * Saves the state: resolves once a save that began after this call is done. One save runs at a
   * time, at most one per SAVE_EVERY_MS; changes made meanwhile are coalesced into the next one.
   * Each call waits for the first save that covers its change only, not for the saves after it:
   * under steady ingest there is always a next change, and a caller that waited for the state to
   * be saved with nothing left to save (batch starts, which flush() first) waited until ingest
   * paused. A failed save rejects its waiters and leaves their changes unsaved, so the next call
   * tries again.
   */
  private persist(): Promise<void> {
    return this.savedUpTo(++this.changes);
  }

  /** Resolves once a save that holds change `change` is done, running the saving loop when needed. */
  private savedUpTo(change: number): Promise<void> {
    if (this.savedThrough >= change) return Promise.resolve();
    const saved = new Promise<void>((resolve, reject) => this.waiters.push({ change, resolve, reject }));
    this.saving ??= (async () => {
      try {
        while (this.savedThrough < this.changes) {
          const wait = this.savedAt + SAVE_EVERY_MS - performance.now();
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
          this.savedAt = performance.now();
          const covers = this.changes; // this save holds every change made so far
          try {
            await this.save();
          } catch (err) {
            const e = storageError(err, 'could not save the collector state');
            this.waiters.splice(0).forEach((w) => w.reject(e));
            return;
          }
          this.savedThrough = covers;
          const done = this.waiters.filter((w) => w.change <= covers);
          this.waiters = this.waiters.filter((w) => w.change > covers);
          done.forEach((w) => w.resolve());
        }
      } finally {
        this.saving = null;
      }
    })();
    return saved;
  }

  /** Rewrites the state file atomically; only the fsync leaves the event loop (see lib/fsync.ts). */
  private async save(): Promise<void> {
    const tmp = `${this.file}.${process.pid}.tmp`;
    const fd = fs.openSync(tmp, 'w');
    try {
      writeAllSync(fd, JSON.stringify(this.state));
      await fsyncFd(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, this.file);
  }

  /**
   * Records newly committed frames (call in commit order) and cuts full batches. Resolves without
   * waiting for the state file (see the class note); the batches it cut are started once a save
   * holds them.
   */
  async add(frames: FrameDoc[], framesCommit: string): Promise<void> {
    await this.loading;
    const now = Date.now();
    for (const f of frames) this.state.pending.push({ path: framePath(f.user, f.device, f.timestamp), frameId: f.frameId, site: f.site, at: now });
    this.state.framesCommit = framesCommit;
    this.cut(false);
    this.persist().then(
      () => this.startQueued(),
      (e: unknown) => this.opts.onError?.(e),
    ).catch((e: unknown) => this.opts.onError?.(e));
  }

  /** Resolves once every change made so far is saved. */
  flush(): Promise<void> {
    return this.savedUpTo(this.changes);
  }

  /** Moves pending frames into batches: full ones always, all of a site's when `flushAll` or when its oldest is too old. */
  private cut(flushAll: boolean): void {
    const commit = this.state.framesCommit;
    if (!commit) return;
    const bySite = new Map<string, State['pending']>();
    for (const p of this.state.pending) {
      const list = bySite.get(p.site);
      if (list) list.push(p);
      else bySite.set(p.site, [p]);
    }
    const keep: State['pending'] = [];
    for (const [site, list] of bySite) {
      let rest = list;
      while (rest.length >= this.opts.maxFrames) {
        this.queue(this.makeBatch(site, commit, rest.slice(0, this.opts.maxFrames)));
        rest = rest.slice(this.opts.maxFrames);
      }
      const oldest = Math.min(...rest.map((p) => p.at));
      if (rest.length && (flushAll || Date.now() - oldest >= this.opts.maxWaitMs)) {
        this.queue(this.makeBatch(site, commit, rest));
        rest = [];
      }
      keep.push(...rest);
    }
    this.state.pending = keep;
  }

  /** Queues a batch to start, as a change of its own: it starts once a save holds it (see startQueued). */
  private queue(batch: BatchSpec): void {
    this.state.unstarted.push(batch);
    this.cutIn.set(batch.batchId, ++this.changes);
    this.queuedAt.set(batch.batchId, Date.now());
  }

  private makeBatch(site: string, framesCommit: string, frames: State['pending']): BatchSpec {
    const stamp = new Date().toISOString().replace(/[-:.]/g, '').slice(0, 15);
    return { batchId: `${site}-${stamp}-${randomBytes(3).toString('hex')}`, site, framesCommit, frames: frames.map(({ path: p, frameId, site: s }): FrameRef => ({ path: p, frameId, site: s })) };
  }

  /**
   * Tries to start every batch not yet started, oldest first; failures stay queued for the next
   * tick. One run at a time: a call while one runs joins it (the run starts every batch queued
   * until it finds the queue empty, so the caller's batches too). Each committed group of frames
   * calls this; when each call waited for the run before it and then looked again, the waiting
   * calls piled up while Temporal was slow and all woke up at every batch start, which kept the
   * API's event loop busy for half a second at a time under ingest load. The start itself (a
   * Temporal round trip) runs outside the state lock, so recording newly committed frames (which
   * the ingest API waits for) never waits for Temporal.
   * @returns how many batches the run this call started or joined started.
   */
  startQueued(): Promise<number> {
    if (this.starting) return this.starting;
    // The body runs after `starting` is set, even when it finds nothing to do.
    const run = Promise.resolve().then(async () => {
      let started = 0;
      try {
        for (;;) {
          const batch = this.state.unstarted[0];
          if (!batch || this.stopped) break;
          try {
            // Never start a batch no saved state holds; batches read from the state file are saved.
            await this.savedUpTo(this.cutIn.get(batch.batchId) ?? 0);
            await this.opts.start(batch);
          } catch (err) {
            this.startError = { message: (err as Error).message?.split('\n')[0] ?? String(err), since: this.startError?.since ?? new Date().toISOString() };
            this.opts.onError?.(err);
            break;
          }
          this.startError = null;
          const i = this.state.unstarted.indexOf(batch);
          if (i >= 0) this.state.unstarted.splice(i, 1);
          this.cutIn.delete(batch.batchId);
          this.queuedAt.delete(batch.batchId);
          // Not awaited: a batch started but still listed is started again after a restart, and
          // starting is idempotent per batch id.
          this.persist().catch((e: unknown) => this.opts.onError?.(e));
          started++;
        }
      } finally {
        // In the same synchronous step as the last look at the queue: a batch queued after that
        // look finds no run to join and starts one of its own.
        this.starting = null;
      }
      return started;
    });
    this.starting = run;
    return run;
  }

  /** Cuts batches that waited long enough (all pending when `flushAll`) and starts them. */
  async tick(flushAll = false): Promise<void> {
    await this.loading;
    const before = this.state.unstarted.length;
    this.cut(flushAll);
    if (this.state.unstarted.length !== before || this.savedThrough < this.changes) await this.persist();
    await this.startQueued();
  }

  /** Ticks every `intervalMs` until stop(). */
  run(intervalMs = 500): void {
    this.timer ??= setInterval(() => void this.tick().catch((e) => this.opts.onError?.(e)), intervalMs);
  }

  /**
   * Stops ticking and starting batches, waits for a start in progress, and saves the state (a
   * failed save is reported through onError; a restart recovers from the frames repo).
   */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.starting?.catch(() => undefined);
    await this.flush().catch((e: unknown) => this.opts.onError?.(e));
  }

  /** Counts for health pages. */
  stats(): CollectorStats {
    const oldest = this.state.unstarted[0];
    const since = oldest ? new Date(this.queuedAt.get(oldest.batchId) ?? this.createdAt).toISOString() : null;
    return { pending: this.state.pending.length, unstarted: this.state.unstarted.length, waitingSince: since, startError: this.startError };
  }
}
