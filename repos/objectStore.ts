import { createHash } from 'node:crypto';
import fs, { promises as fsp } from 'node:fs';
import path from 'node:path';
import { VigilError } from '../lib/errors.js';
import { assertSha256 } from '../lib/ids.js';
import { fdatasyncPath, fsyncPath as syncDir, rmQuietly } from '../lib/fsync.js';
import { stageInThread, WriterThreadError } from './writerThread.js';

/** Result of storing bytes. */
export interface PutResult {
  /** SHA-256 of the bytes (the object's name). */
  sha256: string;
  size: number;
  /** False when identical bytes were already stored (nothing was written). */
  created: boolean;
}

/**
 * Bytes written but not yet durable nor visible under their name (see {@link ObjectStore.stage}).
 * `created` tells whether publishing will create the object (false: identical bytes are stored).
 */
export interface StagedPut extends PutResult {
  /**
   * Makes the object durable and visible: its content is made durable, then it gets its name.
   * Resolves to the folders whose new entries must still be fsync'd for the name to be durable
   * (the caller fsyncs them, typically together with other files' folders). Call at most once.
   * @throws VigilError E_STORAGE
   */
  publish(): Promise<string[]>;
  /**
   * Gives the object its name without waiting for its content to be durable, for a caller that
   * journals the bytes instead (see repos/journal.ts). Call at most once (instead of publish()).
   * @returns the object's file and its bytes, to journal.
   * @throws VigilError E_STORAGE
   */
  publishJournaled(): Promise<{ file: string; data: Buffer }>;
  /** Drops what was staged and never published (no-op after publish). Never throws. */
  discard(): Promise<void>;
}

/**
 * A content-addressed object store: bytes are stored once under their SHA-256, and every read
 * re-hashes them. The local folder implementation is the default; an S3-compatible store can
 * implement the same interface when workers run on many hosts.
 */
export interface ObjectStore {
  /** Stores bytes durably (content and name); storing the same bytes again writes nothing. */
  put(bytes: Buffer): Promise<PutResult>;
  /**
   * Writes bytes and starts making them durable without waiting, for a caller that names many
   * objects at once (the ingestor's group commit): nothing is visible under the object's name
   * until {@link StagedPut.publish} (which waits for the content to be durable), so an object
   * that has a name always has its whole content on disk, after a crash or power loss too.
   */
  stage(bytes: Buffer, opts?: StageOptions): Promise<StagedPut>;
  /** Reads and verifies bytes. @throws VigilError E_NOT_FOUND, E_HASH_MISMATCH */
  get(sha256: string): Promise<Buffer>;
  /** True when the object exists (no verification). */
  has(sha256: string): Promise<boolean>;
  /** Size in bytes, or null when absent. */
  size(sha256: string): Promise<number | null>;
  /** Every stored object name. */
  list(): AsyncIterable<string>;
  /**
   * Makes what the store's writes need ahead of them (idempotent; a process that writes calls it
   * once at start). @throws VigilError E_STORAGE
   */
  prepare(): Promise<void>;
}

/** How {@link ObjectStore.stage} writes. */
export interface StageOptions {
  /** Start making the bytes durable now (default true); false when they will be journaled (publishJournaled). */
  sync?: boolean;
}

/** SHA-256 hex of bytes. */
export function sha256Hex(bytes: Buffer | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Local-folder object store: `<root>/<aa>/<bbbb…>`, written via temp file, fdatasync and rename. */
export class LocalObjectStore implements ObjectStore {
  constructor(readonly root: string) {}

  private pathOf(sha256: string): string {
    assertSha256(sha256);
    return path.join(this.root, sha256.slice(0, 2), sha256.slice(2));
  }

  async put(bytes: Buffer): Promise<PutResult> {
    const staged = await this.stage(bytes);
    try {
      const dirs = await staged.publish();
      await Promise.all(dirs.map((d) => syncDir(d)));
    } catch (err) {
      await staged.discard();
      throw storageError(err, `could not store object ${staged.sha256}`);
    }
    return { sha256: staged.sha256, size: staged.size, created: staged.created };
  }

  /**
   * Writes the bytes to a temp file under `<root>/tmp` and starts its fdatasync. publish() waits
   * for that fdatasync and renames the file to its name (a name therefore only ever appears with
   * its whole content, even across a power loss); the caller fsyncs the folder publish() names.
   * Hashing and writing the temp file run in the writer thread (repos/writerThread.ts), off the
   * main thread, which serves the API meanwhile; the fdatasync runs on the thread pool.
   */
  async stage(bytes: Buffer, opts: StageOptions = {}): Promise<StagedPut> {
    let staged: Awaited<ReturnType<typeof stageInThread>>;
    try {
      staged = await stageInThread({ root: this.root, bytes });
    } catch (err) {
      const sha = err instanceof WriterThreadError && err.sha256 ? err.sha256 : '(new)';
      throw storageError(err, `could not store object ${sha}`);
    }
    const { sha256, existing } = staged;
    const target = this.pathOf(sha256);
    const size = bytes.length;
    if (staged.tmp === null) {
      // Already named, so its content is durable; its folder entry may still be in flight
      // (another writer between its rename and its folder fsync), so the folder is named too.
      return {
        sha256,
        size,
        created: false,
        publish: async () => [path.dirname(target)],
        publishJournaled: async () => ({ file: target, data: bytes }),
        discard: async () => undefined,
      };
    }
    const tmp = staged.tmp;
    // The fdatasync (unless journaled) starts now, on the thread pool, so it overlaps with what the
    // caller does before publishing; publish() waits for it.
    const synced = opts.sync === false ? Promise.resolve() : fdatasyncPath(tmp);
    synced.catch(() => undefined); // its failure is publish()'s (or nobody's, after discard())
    let state: 'staged' | 'published' | 'discarded' = 'staged';
    // Names the object once its write ended (and, unless journaled, its fdatasync).
    const name = async (): Promise<void> => {
      if (state !== 'staged') throw new VigilError('E_STORAGE', `object ${sha256}: staged write already ${state}`);
      state = 'published';
      try {
        await synced;
        await retryInNewFolder(path.dirname(target), async () => fs.renameSync(tmp, target));
      } catch (err) {
        rmQuietly(tmp);
        throw storageError(err, `could not store object ${sha256}`);
      }
    };
    return {
      sha256,
      size,
      created: existing === null,
      publish: async () => {
        await name();
        return [path.dirname(target)];
      },
      publishJournaled: async () => {
        await name();
        return { file: target, data: bytes };
      },
      discard: async () => {
        if (state !== 'staged') return;
        state = 'discarded';
        await synced.catch(() => undefined); // its descriptor is closed once its sync ends
        rmQuietly(tmp); // never throws: a leftover temp file only takes space
      },
    };
  }

  async get(sha256: string): Promise<Buffer> {
    let bytes: Buffer;
    try {
      bytes = await fsp.readFile(this.pathOf(sha256));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new VigilError('E_NOT_FOUND', `object ${sha256} is missing from the object store`, { sha256 });
      }
      throw err;
    }
    const actual = sha256Hex(bytes);
    if (actual !== sha256) {
      throw new VigilError('E_HASH_MISMATCH', `object ${sha256} is corrupt: its bytes hash to ${actual}`, { sha256, actual });
    }
    return bytes;
  }

  async has(sha256: string): Promise<boolean> {
    return (await this.size(sha256)) !== null;
  }

  async size(sha256: string): Promise<number | null> {
    try {
      return (await fsp.stat(this.pathOf(sha256))).size;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  /**
   * Makes the 256 fan-out folders and the temp folder, then fsyncs the root once. Otherwise each
   * of the first few hundred objects of a new store makes its folder and waits for an fsync of the
   * root, on the ingest path (retryInNewFolder); those fsyncs queue behind everything else the
   * disk is doing (p99 ~30 ms measured next to the pipeline).
   */
  async prepare(): Promise<void> {
    try {
      const folders = [path.join(this.root, 'tmp'), ...Array.from({ length: 256 }, (_, i) => path.join(this.root, i.toString(16).padStart(2, '0')))];
      let made = false;
      for (const f of folders) {
        if (fs.existsSync(f)) continue;
        await fsp.mkdir(f, { recursive: true });
        made = true;
      }
      if (made) {
        await syncDir(this.root);
        await syncDir(path.dirname(this.root));
      }
    } catch (err) {
      throw storageError(err, `could not prepare the object store at ${this.root}`);
    }
  }

  async *list(): AsyncIterable<string> {
    let dirs: string[];
    try {
      dirs = await fsp.readdir(this.root);
    } catch {
      return;
    }
    for (const d of dirs.sort()) {
      if (!/^[0-9a-f]{2}$/.test(d)) continue;
      for (const f of (await fsp.readdir(path.join(this.root, d))).sort()) {
        if (/^[0-9a-f]{62}$/.test(f)) yield d + f;
      }
    }
  }
}

/** Runs `fn`; when it fails with ENOENT, creates `dir` and runs it once more. */
async function retryInNewFolder<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    await fsp.mkdir(dir, { recursive: true });
    await syncDir(path.dirname(dir)); // the new folder's name must be durable too
    return fn();
  }
}


/** Maps a low-level storage failure (ENOSPC, EIO, …) to a typed E_STORAGE error. */
export function storageError(err: unknown, message: string): VigilError {
  if (err instanceof VigilError) return err;
  const code = (err as NodeJS.ErrnoException)?.code ?? 'unknown';
  return new VigilError('E_STORAGE', `${message}: ${code}`, { cause: code });
}
