/**
 * Files of the warehouse on disk: partition paths, the `_manifest.jsonl` of every Parquet file
 * written, and the integrity checks `openWarehouse` runs (footer magic, size, sha256).
 *
 * Layout:
 * ```
 * <root>/_manifest.jsonl                                  one JSON line per file written
 * <root>/<table>/day=YYYY-MM-DD/user=<user_id>/<batchId>[-<part>].parquet
 * <root>/<table>/day=YYYY-MM-DD/<batchId>[-<part>].parquet   (tables without a user column)
 * ```
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { VigilError } from '../lib/errors.js';
import { ID_PATTERN } from '../lib/ids.js';
import { Sha256Schema } from '../lib/schemas.js';
import { BatchIdSchema, TableNameSchema, type TableName } from './schema.js';

/** Name of the manifest file at the warehouse root. */
export const MANIFEST = '_manifest.jsonl';

/** One manifest line: a Parquet file as it was written. */
export const ManifestEntrySchema = z.object({
  table: TableNameSchema,
  /** Path relative to the root, `/`-separated. */
  file: z.string().min(1),
  rows: z.int().min(0),
  bytes: z.int().min(0),
  sha256: Sha256Schema,
  batch_id: BatchIdSchema,
  written_at: z.string(),
});
export type ManifestEntry = z.infer<typeof ManifestEntrySchema>;

/** Relative path of a Parquet file inside the warehouse, as the layout allows. */
const FILE_PATH = /^([a-z_]+)\/day=(\d{4}-\d{2}-\d{2})(?:\/user=([^/]+))?\/([^/]+)\.parquet$/;

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

/** True when `rel` is a well-formed Parquet file path of `table` (right partition columns). */
export function isLayoutPath(table: TableName, rel: string, byUser: boolean): boolean {
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
 * Reads the manifest. A trailing line without its newline is a write in progress and is ignored;
 * any other unreadable line is corruption. Later entries for the same file win.
 * @throws VigilError E_CORRUPT naming the line.
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
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      parsed = undefined;
    }
    const r = ManifestEntrySchema.safeParse(parsed);
    if (!r.success || !FILE_PATH.test(r.data.file) || !r.data.file.startsWith(`${r.data.table}/`)) {
      throw new VigilError('E_CORRUPT', `warehouse manifest ${path.join(root, MANIFEST)} line ${i + 1} is unreadable`, { line: i + 1 });
    }
    out.set(r.data.file, r.data);
  });
  return out;
}

/** Every `*.parquet` file under `<root>/<table>`, as relative `/`-separated paths, sorted. */
export async function listParquet(root: string, table: TableName): Promise<string[]> {
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
      else if (e.name.endsWith('.parquet')) out.push(rel);
    }
  }
  await walk(table);
  return out.sort();
}
