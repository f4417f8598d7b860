import { VigilError } from '../lib/errors.js';
import type { FrameDoc } from '../lib/schemas.js';
import { commitChanges, gitArgs, journalSupported, lookupBlobs, readBlobBytes, readBranchHead, sha256Hex, type Change, type PutResult, type RepoStore, type StagedPut } from '../repos/index.js';
import { startWriterThread } from '../repos/writerThread.js';
import type { Device } from './devices.js';
import { assertTimeZone, compactTimestamp, framePath, frameTag, parseCaptureTime } from './frameTag.js';
import { sniffImageType } from './sniff.js';

/** What the ingest API answers for an accepted frame. */
export interface AcceptedFrame {
  frameId: string;
  tag: string;
  path: string;
  /** True when this exact frame was already stored (nothing new was written). */
  duplicate: boolean;
}

/** Called after new frames are durably committed, before the client gets its answer. */
export type OnFramesCommitted = (frames: FrameDoc[], framesCommit: string) => Promise<void>;

interface Pending {
  doc: FrameDoc;
  path: string;
  /** The frame's bytes, written but not yet durable nor named: published by the group commit. */
  staged: StagedPut;
  resolve: (r: AcceptedFrame) => void;
  reject: (e: unknown) => void;
}

const checkedZones = new Set<string>();

/**
 * {@link assertTimeZone}, remembering the zones that passed: building an Intl.DateTimeFormat to
 * check a zone costs more than the rest of a request's checks together.
 * @throws VigilError E_BAD_INPUT
 */
export function checkTimeZone(tz: unknown): string {
  if (typeof tz === 'string' && checkedZones.has(tz)) return tz;
  const zone = assertTimeZone(tz);
  if (checkedZones.size < 10_000) checkedZones.add(zone);
  return zone;
}

/** What ingest needs of a stored frame document: its id (the bytes' sha256) and its tag. */
type Stored = { frameId: string; tag: string };

/** Most frames per commit. */
const MAX_GROUP = 500;
/** Longest wait for frames still being stored before a group commit starts (see gather()). */
const GATHER_MS = 5;

/** Longest time the early duplicate/conflict check may use a head read or committed earlier (see recentHead). */
const HEAD_RECHECK_MS = 200;

/** Frame documents kept per blob id (a blob's content never changes); only read for paths that exist. */
const FRAME_IDS_KEPT = 10_000;

/**
 * Accepts frames into the `frames` repo. Bytes are staged in the object store first (written, not
 * yet named); frame documents are group-committed: every request waiting while a commit is being
 * written shares the next one, which also names the group's bytes and makes them durable with
 * itself (in its journal entry, see repos/journal.ts, or in its fsync round) before its ref moves.
 * Each request is answered only once its bytes and its commit are durable and the collector
 * (onCommitted) has taken the frames; the collector saves its own state behind that, since the
 * frames commit is the durable record it recovers from.
 *
 * Whether a device already sent a frame for a capture time is looked up in the frames repo's tree
 * through the repos' shared tree cache, first early (before the bytes are written) at the head this
 * process last committed, re-read from disk at most every HEAD_RECHECK_MS, so a commit by another
 * process (a second API server) is seen within that bound and only the folders it changed are read
 * again. The decisive check runs under the repo lock, against the very head the group's commit
 * builds on: a frame the early check missed is answered there (a duplicate, or a conflict whose
 * staged bytes are dropped, so a conflict never leaves its bytes behind).
 */
export class FrameIngestor {
  private queue: Pending[] = [];
  private flushing: Promise<void> | null = null;
  /** The collector's recording of committed groups, in commit order. */
  private recording: Promise<void> = Promise.resolve();
  /** Frame documents' id and tag, by blob id (see FRAME_IDS_KEPT). */
  private readonly frameIds = new Map<string, Stored>();
  /** Requests storing their bytes right now (they will join the queue in a moment). */
  private storing = 0;
  /** The frames head last committed or read here, and when (see recentHead). */
  private head: { commit: string | null; at: number } | null = null;
  private headReading: Promise<string | null> | null = null;
  /** Bumped by each commit of this process: a read begun before it must not replace its head. */
  private headSeq = 0;
  private allStored: (() => void) | null = null;
  /** Whether group commits go through the frames journal (see the `journal` option). */
  private readonly journaled: boolean;

  constructor(
    private readonly store: RepoStore,
    private readonly opts: {
      maxBytes: number;
      onCommitted?: OnFramesCommitted;
      maxFutureSkewMs?: number;
      /**
       * Make group commits durable through the frames repo's write-ahead journal (one fdatasync per
       * commit, see repos/journal.ts) instead of fsyncing every file. Default: where checkpoints can
       * flush a file system at once (journalSupported()). Whoever opens the data folder after a
       * crash must run recoverJournal() before reading the frames repo (vigil start does).
       */
      journal?: boolean;
    },
  ) {
    this.journaled = opts.journal ?? journalSupported();
  }

  /**
   * Loads what the first frames would otherwise wait for: the thread that writes their files (see
   * repos/writerThread.ts) and the frames repo's head. Call before the API listens.
   */
  async warmUp(): Promise<void> {
    await Promise.all([startWriterThread(), this.recentHead()]);
  }

  /**
   * Checks and stores one frame from an authenticated device.
   * @throws VigilError E_BAD_INPUT (empty, bad time or zone), E_TOO_LARGE, E_UNSUPPORTED, E_CONFLICT
   *   (another frame already has this device and timestamp), E_STORAGE.
   */
  async accept(device: Device, bytes: Buffer, capturedAt: unknown, tz?: unknown): Promise<AcceptedFrame> {
    if (bytes.length === 0) throw new VigilError('E_BAD_INPUT', 'the frame is empty');
    if (bytes.length > this.opts.maxBytes) throw new VigilError('E_TOO_LARGE', `the frame is ${bytes.length} bytes; the limit is ${this.opts.maxBytes}`);
    const mediaType = sniffImageType(bytes);
    if (!mediaType) throw new VigilError('E_UNSUPPORTED', 'the frame is not a JPEG, PNG or WebP image');
    const when = parseCaptureTime(capturedAt);
    const now = Date.now();
    if (when.getTime() > now + (this.opts.maxFutureSkewMs ?? 300_000)) {
      throw new VigilError('E_BAD_INPUT', `capture time ${when.toISOString()} is in the future`);
    }
    const zone = checkTimeZone(tz ?? device.tz);
    const timestamp = compactTimestamp(when);
    const framePathNow = framePath(device.user, device.device, timestamp);
    const tag = frameTag(device.user, device.device, timestamp, zone);
    const head = await this.recentHead();
    const already = (await this.frameIdsAt(head, [framePathNow]).catch(() => null))?.get(framePathNow) ?? null;
    if (already && already.frameId !== sha256Hex(bytes)) {
      // Refused before the bytes are stored, so a conflict leaves nothing behind.
      throw new VigilError('E_CONFLICT', `device ${device.user}/${device.device} already sent a different frame with capture time ${when.toISOString()}`);
    }
    this.storing++;
    let put: PutResult;
    let staged: StagedPut | null = null;
    try {
      // The same frame again: its document is committed already; put() re-stores the bytes
      // durably if they were lost. A new frame's bytes are only staged: its group commit makes
      // them durable with the frame documents.
      put = already ? await this.store.objects.put(bytes) : (staged = await this.store.objects.stage(bytes, { sync: !this.journaled }));
    } finally {
      this.storing--;
      if (this.storing === 0) this.allStored?.();
    }
    // The tag stored with the frame (a resend naming another zone does not change it).
    if (!staged) return { frameId: put.sha256, tag: already!.tag, path: framePathNow, duplicate: true };
    const doc: FrameDoc = {
      kind: 'frame',
      frameId: put.sha256,
      tag,
      user: device.user,
      device: device.device,
      site: device.site,
      capturedAt: when.toISOString(),
      timestamp,
      tz: zone,
      receivedAt: new Date(now).toISOString(),
      object: { sha256: put.sha256, size: put.size, mediaType },
    };
    return new Promise<AcceptedFrame>((resolve, reject) => {
      this.queue.push({ doc, path: framePathNow, staged, resolve, reject });
      void this.kick();
    });
  }

  /**
   * The frames repo's head for the early duplicate/conflict check: the head this process last
   * committed or read, re-read (one read shared by concurrent requests) once it is more than
   * HEAD_RECHECK_MS old, so another process's commit is noticed within that bound. A stale head
   * only means the check is left to the decisive one under the repo lock (see commitGroup).
   */
  private recentHead(): Promise<string | null> {
    const h = this.head;
    if (h && performance.now() - h.at < HEAD_RECHECK_MS) return Promise.resolve(h.commit);
    if (this.headReading) return this.headReading;
    const at = performance.now();
    const seq = this.headSeq;
    const reading = readBranchHead(this.store, 'frames')
      .then((commit) => {
        if (seq === this.headSeq) this.head = { commit, at };
        return commit;
      })
      .catch(() => null)
      .finally(() => {
        if (this.headReading === reading) this.headReading = null;
      });
    this.headReading = reading;
    return reading;
  }

  /** The frameId and tag of the document at each path at `head` (null where there is none). */
  private async frameIdsAt(head: string | null, paths: readonly string[]): Promise<Map<string, Stored | null>> {
    const out = new Map<string, Stored | null>();
    const args = gitArgs(this.store, 'frames');
    for (const [p, oid] of await lookupBlobs(this.store, 'frames', head, paths)) {
      if (!oid) {
        out.set(p, null);
        continue;
      }
      let id = this.frameIds.get(oid);
      if (id === undefined) {
        const blob = await readBlobBytes(args, oid);
        try {
          const doc = JSON.parse(blob.toString('utf8')) as FrameDoc;
          id = { frameId: String(doc.frameId), tag: String(doc.tag) };
        } catch {
          throw new VigilError('E_CORRUPT', `frames@${head}:${p} is not valid JSON`);
        }
        if (this.frameIds.size >= FRAME_IDS_KEPT) this.frameIds.delete(this.frameIds.keys().next().value!);
        this.frameIds.set(oid, id);
      }
      out.set(p, id);
    }
    return out;
  }

  private async kick(): Promise<void> {
    if (this.flushing) return;
    this.flushing = (async () => {
      while (this.queue.length) {
        await this.gather();
        const group = this.queue.splice(0, MAX_GROUP);
        // The next group's commit starts while this one is being recorded by the collector;
        // recordings stay in commit order.
        const committed = await this.commitGroup(group).catch((err: unknown) => {
          group.forEach((p) => p.reject(err));
          return null;
        });
        if (committed?.fresh.length) {
          const { fresh, commit } = committed;
          this.recording = this.recording.then(async () => {
            try {
              await this.opts.onCommitted?.(fresh.map((p) => p.doc), commit);
            } catch (err) {
              fresh.forEach((p) => p.reject(err));
              return;
            }
            for (const p of fresh) p.resolve({ frameId: p.doc.frameId, tag: p.doc.tag, path: p.path, duplicate: false });
          });
        }
      }
    })();
    try {
      await this.flushing;
    } finally {
      this.flushing = null;
      if (this.queue.length) void this.kick();
    }
  }

  /**
   * Under load, waits briefly (at most GATHER_MS) for the frames whose bytes are being stored
   * right now, so they share this commit instead of paying for one of their own a moment later.
   * Never waits when nothing else is on its way.
   */
  private async gather(): Promise<void> {
    if (this.storing === 0 || this.queue.length >= MAX_GROUP) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, GATHER_MS);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.allStored = done;
    });
    this.allStored = null;
  }

  /** Resolves once every frame accepted so far is committed and recorded. */
  async drain(): Promise<void> {
    while (this.flushing || this.queue.length) await (this.flushing ?? this.kick());
    await this.recording;
  }

  /**
   * Commits one group's new frame documents. Duplicates and conflicts are answered here; the new
   * frames are returned with the commit, to be answered once the collector recorded them.
   */
  private async commitGroup(group: Pending[]): Promise<{ fresh: Pending[]; commit: string } | null> {
    let fresh: Pending[] = [];
    const settled: Array<() => void> = [];
    // Decided under the repo lock against the head this commit builds on, so a frame another
    // process committed a moment ago is a duplicate or a conflict here too.
    const changes = async (head: string | null): Promise<Change[]> => {
      fresh = [];
      settled.length = 0;
      const existing = await this.frameIdsAt(head, [...new Set(group.map((p) => p.path))]);
      const seen = new Map<string, Stored>();
      for (const p of group) {
        const stored = seen.get(p.path) ?? existing.get(p.path) ?? null;
        if (stored?.frameId === p.doc.frameId) {
          settled.push(() => p.resolve({ frameId: p.doc.frameId, tag: stored.tag, path: p.path, duplicate: true }));
        } else if (stored) {
          settled.push(() => p.reject(new VigilError('E_CONFLICT', `device ${p.doc.user}/${p.doc.device} already sent a different frame with capture time ${p.doc.capturedAt}`)));
        } else {
          seen.set(p.path, { frameId: p.doc.frameId, tag: p.doc.tag });
          fresh.push(p);
        }
      }
      return fresh.map((p) => ({ path: p.path, content: JSON.stringify(p.doc, null, 1) + '\n' }));
    };
    const result = await commitChanges(this.store, {
      repo: 'frames',
      changes,
      // One ingest batch id per hour of arrival: `vigil batch inspect ingest-<YYYYMMDDTHH>` lists that
      // hour's commits, and the batch index gets one file per hour instead of one per group commit.
      provenance: (c) => ({ batchId: `ingest-${new Date().toISOString().slice(0, 13).replace(/-/g, '')}`, stage: 'ingest', stageVersion: '1', inputs: [], extra: { frames: c.length } }),
      summary: (c) => `ingest ${c.length} frame(s)`,
      // The new frames' bytes become durable and get their names with the commit (in its journal
      // entry, or its durability round), before its ref moves: a committed frame document always
      // names durable bytes.
      ...(this.journaled
        ? { durable: 'journal' as const, journalWith: () => fresh.map((p) => async () => [await p.staged.publishJournaled()]) }
        : { durable: true, durableWith: () => fresh.map((p) => () => p.staged.publish()) }),
    }).finally(() => Promise.all(group.map((p) => p.staged.discard())));
    if (result.commit) {
      this.headSeq++;
      this.head = { commit: result.commit, at: performance.now() };
    }
    for (const s of settled) s();
    if (!fresh.length) return null;
    if (!result.commit || !result.created) throw new VigilError('E_STORAGE', 'frames commit produced no head');
    return { fresh, commit: result.commit };
  }
}
