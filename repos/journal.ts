import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { VigilError } from '../lib/errors.js';
import { fdatasyncFd, fdatasyncPath, fsyncPath, rmQuietly, writeFileDurably, writevAll } from '../lib/fsync.js';
import { withLock } from './lock.js';
import { assertRepoName, lockPathOf, type RepoStore } from './store.js';

/*
 * A write-ahead journal for a repo's commits (used by the ingestor's group commits).
 *
 * A durable commit otherwise fsyncs every file it creates and every folder that got a new name:
 * for a group of frames, each frame's bytes, each document's git object, the trees, the commit,
 * the batch index line and the ref, a few dozen fsyncs per commit. On the disks Vigil is
 * benchmarked on those fsyncs, not the CPU, bound the ingest rate. With the journal, a commit writes
 * those files without fsync and appends one entry holding all of their content to the repo's
 * journal, with one fdatasync; the branch moves after that. A checkpoint (after JOURNAL_CHECKPOINT_MS,
 * or at shutdown) flushes the whole file system once (`sync -f`, syncfs(2)) and then drops the
 * journal segments it covers. After a crash or power loss, recoverJournal() rewrites whatever the
 * journal holds that is missing or different on disk and moves the branch to the last journaled
 * commit, before anything reads the repo.
 *
 * Entry layout: "VGJ1" | u32 payload length | 20-byte SHA-1 of the payload | payload, where the
 * payload is u32 header length | header JSON (the records, without their data) | each record's data.
 * A torn entry at the end of a segment (an append cut by a crash, or one that failed and could not be
 * cut back) was never acknowledged and is ignored.
 */

/** What a journal entry makes durable. Paths are relative to the data folder. */
export type JournalRecord =
  /** A file that must exist with exactly this content (a commit's pack or pack index, a frame's bytes). */
  | { kind: 'file'; path: string; data: Buffer }
  /** A line appended to a file; `mark` is a string the line holds (it is not appended again if present). */
  | { kind: 'append'; path: string; data: Buffer; mark: string }
  /** A branch moved from `parent` to `commit`. */
  | { kind: 'ref'; path: string; commit: string; parent: string | null };

type RecordHeader = { kind: 'file'; path: string; size: number } | { kind: 'append'; path: string; size: number; mark: string } | { kind: 'ref'; path: string; commit: string; parent: string | null };

const MAGIC = Buffer.from('VGJ1');
/** Longest time a journal segment lives before a checkpoint flushes the file system and drops it. */
export const JOURNAL_CHECKPOINT_MS = 30_000;
/** How long after a failed checkpoint the next one is tried. */
const CHECKPOINT_RETRY_MS = 5_000;
/** A checkpoint also starts once a segment holds this many bytes. */
const JOURNAL_CHECKPOINT_BYTES = 256 * 1024 * 1024;
/** Journaled files at least this big are written back in the background after their commit (see Journal.writeBack). */
export const WRITE_BACK_MIN_BYTES = 32 * 1024;
/** Most files waiting to be written back; past it the oldest are left to the next checkpoint. */
const WRITE_BACK_QUEUE_MAX = 4096;

/**
 * Encodes one entry as the pieces written in order: `VGJ1`, the payload's length, its SHA-1, then
 * the payload (its header's length, the JSON header, each record's bytes). The records' bytes are
 * not copied (a group commit's frames are about 100 KB each): the pieces go to one writev.
 */
export function encodeEntryParts(records: readonly JournalRecord[]): Buffer[] {
  const headers: RecordHeader[] = records.map((r) =>
    r.kind === 'ref' ? { kind: 'ref', path: r.path, commit: r.commit, parent: r.parent } : r.kind === 'append' ? { kind: 'append', path: r.path, size: r.data.length, mark: r.mark } : { kind: 'file', path: r.path, size: r.data.length },
  );
  const header = Buffer.from(JSON.stringify(headers));
  const len = Buffer.alloc(4);
  len.writeUInt32BE(header.length);
  const payload = [len, header, ...records.flatMap((r) => (r.kind === 'ref' ? [] : [r.data]))];
  const hash = createHash('sha1');
  let size = 0;
  for (const b of payload) {
    hash.update(b);
    size += b.length;
  }
  const top = Buffer.alloc(8);
  MAGIC.copy(top, 0);
  top.writeUInt32BE(size, 4);
  return [top, hash.digest(), ...payload];
}

/** Encodes one entry (see {@link encodeEntryParts}) into one buffer. */
export function encodeEntry(records: readonly JournalRecord[]): Buffer {
  return Buffer.concat(encodeEntryParts(records));
}

/**
 * Decodes the entries of a segment, in order, stopping at the first torn or damaged one.
 * @returns the entries and whether the segment ended cleanly (false: a torn or damaged tail).
 */
export function decodeEntries(buf: Buffer): { entries: JournalRecord[][]; clean: boolean } {
  const entries: JournalRecord[][] = [];
  let off = 0;
  while (off < buf.length) {
    if (buf.length - off < 28 || !buf.subarray(off, off + 4).equals(MAGIC)) return { entries, clean: false };
    const size = buf.readUInt32BE(off + 4);
    const start = off + 28;
    if (start + size > buf.length) return { entries, clean: false };
    const payload = buf.subarray(start, start + size);
    if (!createHash('sha1').update(payload).digest().equals(buf.subarray(off + 8, off + 28))) return { entries, clean: false };
    const hlen = payload.readUInt32BE(0);
    const headers = JSON.parse(payload.subarray(4, 4 + hlen).toString('utf8')) as RecordHeader[];
    let at = 4 + hlen;
    entries.push(
      headers.map((h): JournalRecord => {
        if (h.kind === 'ref') return h;
        const data = payload.subarray(at, at + h.size);
        at += h.size;
        return h.kind === 'append' ? { kind: 'append', path: h.path, data, mark: h.mark } : { kind: 'file', path: h.path, data };
      }),
    );
    off = start + size;
  }
  return { entries, clean: true };
}

let supported: boolean | null = null;

/**
 * True when checkpoints can flush a whole file system at once (`sync -f`, i.e. syncfs(2), Linux
 * coreutils). Without it the journal is not used and commits fsync each file.
 */
export function journalSupported(): boolean {
  if (supported === null) {
    const r = spawnSync('sync', ['--help'], { encoding: 'utf8', timeout: 5_000 });
    supported = process.platform === 'linux' && r.status === 0 && /--file-system/.test(r.stdout);
  }
  return supported;
}

/** Flushes the file system holding `dir` (syncfs(2) through `sync -f`). @throws VigilError E_STORAGE */
function syncFileSystem(dir: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('sync', ['-f', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', (e) => reject(new VigilError('E_STORAGE', `sync -f ${dir} failed: ${e.message}`)));
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new VigilError('E_STORAGE', `sync -f ${dir} failed (${code}): ${err.trim()}`))));
  });
}

/** The journal folder of a repo. */
export function journalDirOf(store: RepoStore, repo: string): string {
  return path.join(store.dataDir, 'journal', assertRepoName(repo));
}

function segmentsIn(dir: string): string[] {
  try {
    return fs.readdirSync(dir).filter((f) => /^\d{16}\.wal$/.test(f)).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/**
 * One repo's journal in this process. append() is called under the repo lock, in commit order.
 */
export class Journal {
  private fd: number | null = null;
  private segment: { name: string; bytes: number; since: number } | null = null;
  private checkpointing: Promise<void> | null = null;
  /** An append failed and its segment could not be cut back: the next append starts a new segment. */
  private damaged = false;
  /** The last checkpoint failure (retried after CHECKPOINT_RETRY_MS), for the health endpoint. */
  lastError: string | null = null;
  private retryAt = 0;
  /** Files to write back in the background (see writeBack), oldest first, and the loop doing it. */
  private readonly writeBackQueue: string[] = [];
  private writingBack: Promise<void> | null = null;

  constructor(private readonly store: RepoStore, private readonly repo: string) {}

  private get dir(): string {
    return journalDirOf(this.store, this.repo);
  }

  /**
   * Appends one entry and waits until it is durable (one fdatasync). Call under the repo lock.
   * @throws the file system's error (e.g. ENOSPC); the entry is then not acknowledged.
   */
  async append(records: readonly JournalRecord[]): Promise<void> {
    const entry = encodeEntryParts(records);
    const entryBytes = entry.reduce((n, b) => n + b.length, 0);
    // Always the newest segment (another process, or a checkpoint, may have started one), so
    // segments hold entries in commit order across processes.
    const newest = segmentsIn(this.dir).at(-1) ?? null;
    if (this.fd === null || !this.segment || this.segment.name !== newest || this.damaged) {
      this.closeSegment();
      const name = newest && !this.damaged ? newest : await this.newSegment();
      this.damaged = false;
      this.fd = fs.openSync(path.join(this.dir, name), 'a');
      this.segment = { name, bytes: fs.fstatSync(this.fd).size, since: Date.now() };
    }
    const fd = this.fd;
    const before = this.segment.bytes;
    try {
      await writevAll(fd, entry);
      await fdatasyncFd(fd);
    } catch (err) {
      // Not acknowledged: cut the segment back, so a torn entry is never followed by good ones.
      try {
        fs.ftruncateSync(fd, before);
      } catch {
        this.damaged = true; // recovery skips a damaged tail and goes on with the next segment
      }
      throw err;
    }
    this.segment.bytes += entryBytes;
  }

  /** Creates the next (empty) segment and makes its name durable. @returns its name */
  private async newSegment(): Promise<string> {
    fs.mkdirSync(this.dir, { recursive: true });
    const last = segmentsIn(this.dir).at(-1);
    const name = `${String(last ? Number(last.slice(0, 16)) + 1 : 1).padStart(16, '0')}.wal`;
    fs.closeSync(fs.openSync(path.join(this.dir, name), 'a'));
    await fsyncPath(this.dir);
    return name;
  }

  private closeSegment(): void {
    if (this.fd !== null) {
      try {
        fs.closeSync(this.fd);
      } catch {
        /* closing a segment that failed to write */
      }
    }
    this.fd = null;
    this.segment = null;
  }

  /**
   * Writes files that a commit just journaled (its frames' bytes) to disk in the background, one
   * at a time (fdatasync on the thread pool), so a checkpoint finds little data left to flush.
   * Without it, each checkpoint's `sync -f` wrote the last seconds' frames at once (about 250 MB
   * at 300 frames/s) and, while it ran, file creation and the journal's own fdatasync waited on
   * the disk: commits stalled for up to a second. Only an optimisation: durability comes from
   * the journal entry, then the checkpoint; a file not written back yet (the queue is bounded)
   * is flushed by the next checkpoint as before.
   */
  writeBack(files: readonly string[]): void {
    this.writeBackQueue.push(...files);
    if (this.writeBackQueue.length > WRITE_BACK_QUEUE_MAX) this.writeBackQueue.splice(0, this.writeBackQueue.length - WRITE_BACK_QUEUE_MAX);
    this.writingBack ??= (async () => {
      try {
        for (let file = this.writeBackQueue.shift(); file !== undefined; file = this.writeBackQueue.shift()) {
          try {
            await fdatasyncPath(file);
          } catch {
            /* removed meanwhile, or the disk failed: the checkpoint flushes (and reports) it */
          }
        }
      } finally {
        this.writingBack = null;
      }
    })();
  }

  /** Resolves once the files queued for write-back so far are written (tests). */
  async writtenBack(): Promise<void> {
    while (this.writingBack) await this.writingBack;
  }

  /** Starts a checkpoint in the background when the current segment is old or big enough. */
  maybeCheckpoint(): void {
    const s = this.segment;
    if (!s || this.checkpointing || Date.now() < this.retryAt) return;
    if (Date.now() - s.since < JOURNAL_CHECKPOINT_MS && s.bytes < JOURNAL_CHECKPOINT_BYTES) return;
    void this.checkpoint().catch(() => undefined);
  }

  /**
   * Tries a failed checkpoint again once CHECKPOINT_RETRY_MS have passed, whether or not commits
   * come (maybeCheckpoint only runs after a commit: on an idle system a one-off failure stayed in
   * `lastError`, and the health endpoint said 503, until the next frame arrived). Does nothing
   * unless the last checkpoint failed.
   */
  retryFailedCheckpoint(): void {
    if (this.lastError === null || this.checkpointing || Date.now() < this.retryAt) return;
    void this.checkpoint().catch(() => undefined);
  }

  /**
   * Makes everything the journal covers durable and drops it: starts a new segment (under the
   * repo lock, so no commit is between its journal entry and its branch move), flushes the file
   * system, then removes the older segments. Concurrent calls share one checkpoint.
   */
  checkpoint(): Promise<void> {
    this.checkpointing ??= (async () => {
      try {
        const { old, flush } = await withLock(lockPathOf(this.store, this.repo), async () => {
          const all = segmentsIn(this.dir);
          const sizes = all.map((f) => fs.statSync(path.join(this.dir, f)).size);
          // Nothing journaled: only empty segments to tidy (the newest stays for the next append).
          if (sizes.every((n) => n === 0)) return { old: all.slice(0, -1), flush: false };
          // Every writer (in any process) appends to the newest segment: an empty one from now on.
          this.closeSegment();
          if (sizes.at(-1)! > 0) await this.newSegment();
          return { old: sizes.at(-1)! > 0 ? all : all.slice(0, -1), flush: true };
        });
        // Everything queued for write-back is covered by this flush.
        if (flush) this.writeBackQueue.length = 0;
        if (flush) await syncFileSystem(this.dir);
        // On the thread pool: freeing a segment's blocks (up to JOURNAL_CHECKPOINT_BYTES) took about
        // 100 ms, which on this thread stalled every request for that long.
        for (const f of old) await fs.promises.rm(path.join(this.dir, f), { force: true });
        if (old.length) await fsyncPath(this.dir);
        this.lastError = null;
      } catch (err) {
        this.lastError = (err as Error).message;
        this.retryAt = Date.now() + CHECKPOINT_RETRY_MS;
        throw err;
      } finally {
        this.checkpointing = null;
      }
    })();
    return this.checkpointing;
  }
}

const journals = new Map<string, Journal>();

/** The process-wide journal of a repo. */
export function journalOf(store: RepoStore, repo: string): Journal {
  const key = journalDirOf(store, repo);
  let j = journals.get(key);
  if (!j) journals.set(key, (j = new Journal(store, repo)));
  return j;
}

/** What recoverJournal() did. */
export interface JournalRecovery {
  entries: number;
  /** Files rewritten (missing or different on disk). */
  restored: number;
  /** Index lines appended again. */
  appended: number;
  /** The branch moved to the last journaled commit (null: left where it was). */
  ref: string | null;
  /** A torn entry was found at the end of a segment (an append cut by a crash or a failure; never acknowledged). */
  tornTail: boolean;
}

function readOrNull(file: string): Buffer | null {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** Resolves a journal path inside the data folder. @throws VigilError E_CORRUPT for a path outside it */
function inside(store: RepoStore, rel: string): string {
  const abs = path.resolve(store.dataDir, rel);
  if (!abs.startsWith(store.dataDir + path.sep)) throw new VigilError('E_CORRUPT', `journal names a path outside the data folder: ${JSON.stringify(rel)}`);
  return abs;
}

/**
 * Goes through a repo's journal; with `apply`, rewrites what is missing or different and moves the
 * branch forward (see recoverJournal). @returns what was (or, without `apply`, would be) done.
 */
async function replay(store: RepoStore, repo: string, apply: boolean): Promise<JournalRecovery> {
  const out: JournalRecovery = { entries: 0, restored: 0, appended: 0, ref: null, tornTail: false };
  const dir = journalDirOf(store, repo);
  const refs = new Map<string, Array<Extract<JournalRecord, { kind: 'ref' }>>>();
  for (const seg of segmentsIn(dir)) {
    const bytes = readOrNull(path.join(dir, seg));
    if (!bytes) continue; // removed by a checkpoint meanwhile: everything in it was flushed
    const { entries, clean } = decodeEntries(bytes);
    // A torn tail is an append that failed or was cut by a crash: never acknowledged.
    if (!clean) out.tornTail = true;
    for (const records of entries) {
      out.entries++;
      for (const r of records) {
        const file = inside(store, r.path);
        if (r.kind === 'file') {
          const now = readOrNull(file);
          if (!now || !now.equals(r.data)) {
            if (apply) await writeFileDurably(file, r.data);
            out.restored++;
          }
        } else if (r.kind === 'append') {
          const now = readOrNull(file);
          if (!now || !now.toString('utf8').includes(r.mark)) {
            const prefix = now && now.length && now[now.length - 1] !== 0x0a ? '\n' : '';
            if (apply) await writeFileDurably(file, Buffer.concat([now ?? Buffer.alloc(0), Buffer.from(prefix), r.data]));
            out.appended++;
          }
        } else refs.set(r.path, [...(refs.get(r.path) ?? []), r]);
      }
    }
  }
  for (const moves of refs.values()) {
    const last = moves.at(-1)!;
    const file = inside(store, last.path);
    const current = readOrNull(file)?.toString('utf8').trim() || null;
    const known = new Set<string | null>(moves.flatMap((r) => [r.commit, r.parent]));
    if (current !== last.commit && known.has(current)) {
      if (apply) await writeFileDurably(file, `${last.commit}\n`);
      out.ref = last.commit;
    }
  }
  return out;
}

/**
 * Replays a repo's journal after a crash or power loss: every file it holds that is missing or
 * different on disk is rewritten, every index line that is missing is appended, and the branch
 * moves to the last journaled commit when it is at one of the journaled commits or their parents
 * (a branch moved elsewhere by another writer is left alone); then everything is flushed and the
 * journal dropped. The journal is read first without the lock: when nothing is to be done (no
 * crash, or a running writer's live journal), nothing is written and no lock is taken. Call before
 * anything reads the repo (vigil start, fsck, gc).
 * @throws VigilError E_CORRUPT when the journal names a path outside the data folder.
 */
export async function recoverJournal(store: RepoStore, repo: string): Promise<JournalRecovery> {
  const seen = await replay(store, repo, false);
  if (!seen.restored && !seen.appended && !seen.ref) return seen;
  // Something is missing: under the lock (a live writer may have finished meanwhile), for real.
  const done = await withLock(lockPathOf(store, repo), () => replay(store, repo, true));
  await journalOf(store, repo).checkpoint();
  return done;
}
