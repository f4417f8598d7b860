import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { VigilError } from '../lib/errors.js';
import { assertSha256 } from '../lib/ids.js';
import { fsyncPath as syncDir } from '../lib/fsync.js';

/** Result of storing bytes. */
export interface PutResult {
  /** SHA-256 of the bytes (the object's name). */
  sha256: string;
  size: number;
  /** False when identical bytes were already stored (nothing was written). */
  created: boolean;
}

/**
 * A content-addressed object store: bytes are stored once under their SHA-256, and every read
 * re-hashes them. The local folder implementation is the default; an S3-compatible store can
 * implement the same interface when workers run on many hosts.
 */
export interface ObjectStore {
  /** Stores bytes; storing the same bytes again writes nothing. */
  put(bytes: Buffer): Promise<PutResult>;
  /** Reads and verifies bytes. @throws VigilError E_NOT_FOUND, E_HASH_MISMATCH */
  get(sha256: string): Promise<Buffer>;
  /** True when the object exists (no verification). */
  has(sha256: string): Promise<boolean>;
  /** Size in bytes, or null when absent. */
  size(sha256: string): Promise<number | null>;
  /** Every stored object name. */
  list(): AsyncIterable<string>;
}

/** SHA-256 hex of bytes. */
export function sha256Hex(bytes: Buffer | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Local-folder object store: `<root>/<aa>/<bbbb…>`, written via temp file, fsync and rename. */
export class LocalObjectStore implements ObjectStore {
  constructor(readonly root: string) {}

  private pathOf(sha256: string): string {
    assertSha256(sha256);
    return path.join(this.root, sha256.slice(0, 2), sha256.slice(2));
  }

  async put(bytes: Buffer): Promise<PutResult> {
    const sha256 = sha256Hex(bytes);
    const target = this.pathOf(sha256);
    const existing = await this.size(sha256);
    if (existing === bytes.length) return { sha256, size: bytes.length, created: false };
    const tmpDir = path.join(this.root, 'tmp');
    const tmp = path.join(tmpDir, `${sha256}.${process.pid}.${randomBytes(4).toString('hex')}`);
    try {
      // Folders are made when missing (ENOENT) rather than before every put: two fewer file
      // system calls per frame on the ingest path.
      const fh = await retryInNewFolder(tmpDir, () => fsp.open(tmp, 'wx', 0o444));
      try {
        await fh.writeFile(bytes);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await retryInNewFolder(path.dirname(target), () => fsp.rename(tmp, target));
      await syncDir(path.dirname(target));
    } catch (err) {
      await fsp.rm(tmp, { force: true });
      throw storageError(err, `could not store object ${sha256}`);
    }
    return { sha256, size: bytes.length, created: existing === null };
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
