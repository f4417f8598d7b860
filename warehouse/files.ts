/**
 * Files of the warehouse on disk: partition paths, the `_manifest.jsonl` that lists every live
 * Parquet file, the lock its writers share, and the integrity checks (footer magic, size, sha256).
 *
 * Layout:
 * ```
 * <root>/_manifest.jsonl                                  one JSON line per live file (the catalog readers use)
 * <root>/_manifest.lock                                   held while the manifest is appended to or rewritten
 * <root>/<table>/day=YYYY-MM-DD/user=<user_id>/<batchId>[-<part>].parquet   batch files (appendRecords)
 * <root>/<table>/day=YYYY-MM-DD/<batchId>[-<part>].parquet   (tables without a user column)
 * <root>/<table>/compacted/<first>_<last>-<id>.parquet    compacted files (compactWarehouse), days first..last
 * <root>/<table>/day=YYYY-MM-DD/_compacted.jsonl          which files of that day compaction replaced (audit, idempotency)
 * <root>/_compacting/<id>.json                            journal of a compaction not finished yet
 * ```
 *
 * The manifest is the commit point: readers see exactly the files it lists, never a file merely
 * present on disk. Writers append lines under the lock; compaction rewrites it atomically
 * (temporary file, fsync, rename) under the same lock.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { VigilError } from '../lib/errors.js';
import { ID_PATTERN } from '../lib/ids.js';
import { Sha256Schema } from '../lib/schemas.js';
import { withLock } from '../repos/lock.js';
import { BatchIdSchema, TableNameSchema, type TableName } from './schema.js';

/** Name of the manifest file at the warehouse root. */
export const MANIFEST = '_manifest.jsonl';

/** Lock file serialising manifest writers (appends and compaction's rewrite), across processes. */
export const MANIFEST_LOCK = '_manifest.lock';

/** Per-day audit log of the files compaction replaced, `<table>/day=D/_compacted.jsonl`. */
export const COMPACTED_LOG = '_compacted.jsonl';

const Day = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'must be YYYY-MM-DD');

/**
 * One manifest line: a live Parquet file. Batch files (appendRecords) have the first seven fields;
 * compacted files also say which UTC days they cover, which files they replaced, and an
 * order-independent fingerprint of their rows.
 */
export const ManifestEntrySchema = z.object({
  table: TableNameSchema,
  /** Path relative to the root, `/`-separated. */
  file: z.string().min(1),
  rows: z.int().min(0),
  bytes: z.int().min(0),
  sha256: Sha256Schema,
  /** The batch that wrote it; for a compacted file, `compact-<id>`. */
  batch_id: BatchIdSchema,
  written_at: z.string(),
  /** Compacted files: first and last UTC day of their rows. */
  first_day: Day.optional(),
  last_day: Day.optional(),
  /** Compacted files: the files (relative paths) this one replaced. */
  replaces: z.array(z.string().min(1)).optional(),
  /** Compacted files: `count:sum of row hashes` of their rows, as checked when written. */
  fingerprint: z.string().optional(),
});
export type ManifestEntry = z.infer<typeof ManifestEntrySchema>;

/** Relative path of a batch Parquet file inside the warehouse, as the layout allows. */
const FILE_PATH = /^([a-z_]+)\/day=(\d{4}-\d{2}-\d{2})(?:\/user=([^/]+))?\/([^/]+)\.parquet$/;

/** Relative path of a compacted Parquet file. */
const COMPACTED_PATH = /^([a-z_]+)\/compacted\/(\d{4}-\d{2}-\d{2})_(\d{4}-\d{2}-\d{2})-([0-9a-f]{8,64})\.parquet$/;

/** What a warehouse path says about its file. */
export interface LayoutPath {
  table: string;
  kind: 'batch' | 'compacted';
  /** First and last UTC day of its rows (the same day for a batch file). */
  first: string;
  last: string;
  /** The `user=` partition of a batch file; null otherwise. */
  user: string | null;
}

/** Parses a relative warehouse path (batch or compacted layout), or null when it is neither. */
export function parseLayoutPath(rel: string): LayoutPath | null {
  const b = FILE_PATH.exec(rel);
  if (b !== null) return { table: b[1]!, kind: 'batch', first: b[2]!, last: b[2]!, user: b[3] ?? null };
  const c = COMPACTED_PATH.exec(rel);
  if (c !== null && c[2]! <= c[3]!) return { table: c[1]!, kind: 'compacted', first: c[2]!, last: c[3]!, user: null };
  return null;
}

/** Relative path of a compacted file of `table` covering `first..last`, named by `id` (hex). */
export function compactedFile(table: TableName, first: string, last: string, id: string): string {
  const rel = `${table}/compacted/${first}_${last}-${id}.parquet`;
  if (parseLayoutPath(rel)?.kind !== 'compacted') throw new VigilError('E_BAD_ID', `bad compacted file name ${JSON.stringify(rel)}`);
  return rel;
}

/**
 * Resolves and checks a warehouse root. It ends up inside DuckDB glob patterns, so glob
 * metacharacters are refused.
 * @throws VigilError E_CONFIG
 */
export function resolveRoot(root: string): string {
  if (typeof root !== 'string' || root.trim() === '') throw new VigilError('E_CONFIG', 'warehouse root must be a non-empty path');
  const abs = path.resolve(root);
  if (/[*?[\]{}\0\n\r]/.test(abs)) throw new VigilError('E_CONFIG', `warehouse root ${JSON.stringify(abs)} must not contain * ? [ ] { } or control characters`);
  return abs;
}

/**
 * Relative path (`/`-separated) of the file of one batch for one partition.
 * @throws VigilError E_BAD_ID when an id would not be a safe path component.
 */
export function partitionFile(table: TableName, day: string, user: string | null, fileStem: string): string {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(day)) throw new VigilError('E_BAD_ID', `bad partition day ${JSON.stringify(day)}`);
  if (user !== null && !ID_PATTERN.test(user)) throw new VigilError('E_BAD_ID', `bad partition user ${JSON.stringify(user)}`);
  if (!BatchIdSchema.safeParse(fileStem).success) throw new VigilError('E_BAD_ID', `bad file name ${JSON.stringify(fileStem)}`);
  return `${table}/day=${day}${user === null ? '' : `/user=${user}`}/${fileStem}.parquet`;
}

/** Absolute path of a relative warehouse path, refusing anything that would leave the root. */
export function absolutePath(root: string, rel: string): string {
  const abs = path.resolve(root, ...rel.split('/'));
  if (!abs.startsWith(root + path.sep)) throw new VigilError('E_BAD_ID', `path ${JSON.stringify(rel)} leaves the warehouse`);
  return abs;
}

/**
 * True when `rel` is a well-formed Parquet file path of `table`: a batch file with the right
 * partition folders, or a compacted file.
 */
export function isLayoutPath(table: TableName, rel: string, byUser: boolean): boolean {
  if (COMPACTED_PATH.test(rel)) return parseLayoutPath(rel)?.table === table;
  const m = FILE_PATH.exec(rel);
  if (m === null || m[1] !== table) return false;
  if (byUser !== (m[3] !== undefined)) return false;
  return (m[3] === undefined || ID_PATTERN.test(m[3])) && BatchIdSchema.safeParse(m[4]).success;
}

/** sha256 (hex) and size of a file, streamed. */
export async function hashFile(file: string): Promise<{ sha256: string; bytes: number }> {
  const h = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(file)) {
    h.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { sha256: h.digest('hex'), bytes };
}

/**
 * Why `file` is not a complete Parquet file, or null when it looks whole: `PAR1` at both ends and
 * a footer length that fits in the file (catches truncation and most overwritten tails).
 */
export async function parquetDefect(file: string): Promise<string | null> {
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(file, 'r');
  } catch (err) {
    return `cannot open: ${(err as NodeJS.ErrnoException).code ?? String(err)}`;
  }
  try {
    const { size } = await fh.stat();
    if (size < 12) return `only ${size} bytes`;
    const head = Buffer.alloc(4);
    const tail = Buffer.alloc(8);
    await fh.read(head, 0, 4, 0);
    await fh.read(tail, 0, 8, size - 8);
    if (head.toString('latin1') !== 'PAR1') return 'no PAR1 magic at the start';
    if (tail.toString('latin1', 4) !== 'PAR1') return 'no PAR1 magic at the end (truncated?)';
    const footer = tail.readUInt32LE(0);
    if (footer === 0 || footer > size - 12) return `footer length ${footer} does not fit in ${size} bytes`;
    return null;
  } finally {
    await fh.close();
  }
}

/** Writes `data` and fsyncs it, appending to `file` (O_APPEND: one write per call). */
export async function appendDurably(file: string, data: string): Promise<void> {
  const fh = await fs.open(file, 'a');
  try {
    await fh.write(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** fsyncs a file or a folder (best effort for folders on platforms that refuse it). */
export async function fsyncPath(p: string): Promise<void> {
  let fh: fs.FileHandle | undefined;
  try {
    fh = await fs.open(p, 'r');
    await fh.sync();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EISDIR' && code !== 'EINVAL' && code !== 'EPERM') throw err;
  } finally {
    await fh?.close();
  }
}

/**
 * Applies manifest lines to `into` (file -> entry), in order: a later entry for the same file
 * wins, and an entry that `replaces` files removes them. `firstLine` numbers the lines in errors.
 * @throws VigilError E_CORRUPT naming the line.
 */
export function applyManifestLines(root: string, lines: readonly string[], firstLine: number, into: Map<string, ManifestEntry>): void {
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      parsed = undefined;
    }
    const r = ManifestEntrySchema.safeParse(parsed);
    const layout = r.success ? parseLayoutPath(r.data.file) : null;
    if (!r.success || layout === null || layout.table !== r.data.table) {
      throw new VigilError('E_CORRUPT', `warehouse manifest ${path.join(root, MANIFEST)} line ${firstLine + i} is unreadable`, { line: firstLine + i });
    }
    for (const old of r.data.replaces ?? []) into.delete(old);
    into.set(r.data.file, r.data);
  });
}

/**
 * Reads the manifest: the live files, by relative path. A trailing line without its newline is a
 * write in progress and is ignored; any other unreadable line is corruption. Later entries for the
 * same file win; a compacted file's entry removes the files it replaced.
 * @throws VigilError E_CORRUPT naming the line; E_STORAGE when it cannot be read.
 */
export async function readManifest(root: string): Promise<Map<string, ManifestEntry>> {
  const out = new Map<string, ManifestEntry>();
  let text: string;
  try {
    text = await fs.readFile(path.join(root, MANIFEST), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return out;
    throw new VigilError('E_STORAGE', `cannot read ${path.join(root, MANIFEST)}: ${(err as Error).message}`);
  }
  const lines = text.split('\n');
  lines.pop(); // '' after the last newline, or a line still being written
  applyManifestLines(root, lines, 1, out);
  return out;
}

/**
 * Runs `fn` holding the manifest lock (`_manifest.lock`, an O_EXCL lock file naming its holder;
 * a dead holder's lock is broken). Every manifest writer takes it: appends are serialised with
 * compaction's rewrite, so no line is ever lost to a rename.
 * @throws VigilError E_LOCKED when it cannot be taken within `timeoutMs`.
 */
export async function withManifestLock<T>(root: string, fn: () => Promise<T>, timeoutMs = 120_000): Promise<T> {
  await fs.mkdir(root, { recursive: true });
  return withLock(path.join(root, MANIFEST_LOCK), fn, timeoutMs);
}

/**
 * Drops a torn last line (no newline: a writer died mid-write, so it was never committed) so the
 * next append starts on a line of its own. Only called under the manifest lock.
 */
async function repairTail(file: string): Promise<void> {
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(file, 'r+');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  try {
    const { size } = await fh.stat();
    if (size === 0) return;
    const last = Buffer.alloc(1);
    await fh.read(last, 0, 1, size - 1);
    if (last[0] === 0x0a) return;
    const chunk = Buffer.alloc(64 * 1024);
    let end = size - 1;
    let keep = 0;
    while (end > 0) {
      const start = Math.max(0, end - chunk.length);
      const n = end - start;
      await fh.read(chunk, 0, n, start);
      const at = chunk.subarray(0, n).lastIndexOf(0x0a);
      if (at >= 0) {
        keep = start + at + 1;
        break;
      }
      end = start;
    }
    await fh.truncate(keep);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Appends entries to the manifest in one write, under the manifest lock, and fsyncs it.
 * @throws VigilError E_STORAGE when writing fails; E_LOCKED when the lock cannot be taken.
 */
export async function appendManifestEntries(root: string, entries: readonly ManifestEntry[]): Promise<void> {
  if (entries.length === 0) return;
  const file = path.join(root, MANIFEST);
  await withManifestLock(root, async () => {
    try {
      await repairTail(file);
      await appendDurably(file, entries.map((e) => JSON.stringify(e) + '\n').join(''));
    } catch (err) {
      throw new VigilError('E_STORAGE', `cannot append to ${file}: ${(err as Error).message}`);
    }
  });
}

/**
 * Replaces the manifest with exactly `entries`: a temporary file, fsynced, renamed over the
 * manifest, then the folder fsynced. Readers see the old or the new manifest, never a mix. The
 * caller must hold the manifest lock.
 * @throws VigilError E_STORAGE when writing fails.
 */
export async function rewriteManifest(root: string, entries: Iterable<ManifestEntry>): Promise<void> {
  const file = path.join(root, MANIFEST);
  const tmp = path.join(root, `.${MANIFEST}.${process.pid}.${Date.now()}.tmp`);
  try {
    const fh = await fs.open(tmp, 'w');
    try {
      let buf: string[] = [];
      let size = 0;
      for (const e of entries) {
        const line = JSON.stringify(e) + '\n';
        buf.push(line);
        size += line.length;
        if (size > 1 << 20) {
          await fh.write(buf.join(''));
          buf = [];
          size = 0;
        }
      }
      if (buf.length) await fh.write(buf.join(''));
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.rename(tmp, file);
    await fsyncPath(root);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw new VigilError('E_STORAGE', `cannot rewrite ${file}: ${(err as Error).message}`);
  }
}

/** Every `*.parquet` file under `<root>/<table>`, as relative `/`-separated paths, sorted. */
export function listParquet(root: string, table: TableName): Promise<string[]> {
  return listTableFiles(root, table, (name) => name.endsWith('.parquet'));
}

/**
 * Every file under `<root>/<table>` whose name `keep` accepts (default: any), as relative
 * `/`-separated paths, sorted. A missing table folder is empty.
 * @throws VigilError E_STORAGE when a folder cannot be listed.
 */
export async function listTableFiles(root: string, table: TableName, keep: (name: string) => boolean = () => true): Promise<string[]> {
  const out: string[] = [];
  async function walk(dirRel: string): Promise<void> {
    let entries: import('node:fs').Dirent[];
    try {
      entries = await fs.readdir(path.join(root, ...dirRel.split('/')), { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw new VigilError('E_STORAGE', `cannot list ${path.join(root, dirRel)}: ${(err as Error).message}`);
    }
    for (const e of entries) {
      const rel = `${dirRel}/${e.name}`;
      if (e.isDirectory()) await walk(rel);
      else if (keep(e.name)) out.push(rel);
    }
  }
  await walk(table);
  return out.sort();
}

/** Relative path of the compaction audit log of one table and day. */
export function compactedLogFile(table: TableName, day: string): string {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(day)) throw new VigilError('E_BAD_ID', `bad partition day ${JSON.stringify(day)}`);
  return `${table}/day=${day}/${COMPACTED_LOG}`;
}

/**
 * One line of a day's `_compacted.jsonl`. `prepared`: written (fsynced) just before a compaction
 * commits: the file it wrote and the manifest entries (path, rows, bytes, sha256, batch) of the
 * files of that day it replaces. `aborted`: that compaction never committed (found by recovery),
 * so its files stayed live. A prepared line without an aborted one is a committed compaction
 * (its output is in the manifest, or in the log of a later compaction that replaced it).
 */
export const CompactedLogLineSchema = z.object({
  compaction: z.string().regex(/^[0-9a-f]{8,64}$/),
  status: z.enum(['prepared', 'aborted']),
  table: TableNameSchema,
  day: Day,
  output: z.string().min(1),
  output_sha256: Sha256Schema.nullable(),
  at: z.string(),
  replaced: z.array(ManifestEntrySchema),
});
export type CompactedLogLine = z.infer<typeof CompactedLogLineSchema>;

/**
 * Reads a day's compaction log ([] when there is none). A trailing line without its newline is
 * ignored (a write cut short before it was fsynced).
 * @throws VigilError E_CORRUPT naming the file and line.
 */
export async function readCompactedLog(root: string, table: TableName, day: string): Promise<CompactedLogLine[]> {
  const file = absolutePath(root, compactedLogFile(table, day));
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new VigilError('E_STORAGE', `cannot read ${file}: ${(err as Error).message}`);
  }
  const lines = text.split('\n');
  lines.pop();
  return lines.filter((l) => l.trim() !== '').map((line, i) => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      parsed = undefined;
    }
    const r = CompactedLogLineSchema.safeParse(parsed);
    if (!r.success) throw new VigilError('E_CORRUPT', `compaction log ${file} line ${i + 1} is unreadable`, { file: compactedLogFile(table, day), line: i + 1 });
    return r.data;
  });
}
