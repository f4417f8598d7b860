/**
 * Appending records to the warehouse: validated rows, one new Parquet file per partition and
 * batch, never an update in place.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import {
  DuckDBDateValue,
  DuckDBTimestampTZValue,
  LIST,
  VARCHAR,
  type DuckDBAppender,
  type DuckDBConnection,
} from '@duckdb/node-api';
import { VigilError } from '../lib/errors.js';
import { memoryDuckDB, sharedWriterDuckDB } from './instance.js';
import { duckMessage, sqlIdent, sqlString } from './duck.js';
import {
  absolutePath,
  appendManifestEntries,
  fsyncPath,
  hashFile,
  parquetDefect,
  partitionFile,
  readCompactedLog,
  readManifest,
  resolveRoot,
  type ManifestEntry,
} from './files.js';
import { BatchIdSchema, TABLES, TableNameSchema, type SqlType, type TableName, type TableRow } from './schema.js';
import { dateToDays, isoToMicros, microsToUtcDay } from './time.js';

/** Options of {@link appendRecords}. */
export interface AppendOptions {
  /** Batch the rows belong to; names the files (`<batchId>.parquet`). */
  batchId: string;
  /** Optional suffix for a second write of the same batch to the same table (`<batchId>-<part>.parquet`). */
  part?: string;
}

/** What {@link appendRecords} did. */
export interface AppendResult {
  /** Absolute paths of the files written by this call. */
  files: string[];
  /** Rows written by this call (rows of skipped files not counted). */
  rows: number;
  /**
   * Absolute paths of files that already existed (batch already appended), or that compaction
   * has since merged into a compacted file: left untouched, nothing written again.
   */
  skipped: string[];
}

/**
 * Appends `rows` to `table` under the warehouse `root`.
 *
 * Every row is validated first (nothing is written if any row is bad). Rows are grouped by
 * partition, `day=<UTC date of the table's main instant>/user=<user_id>` (`day=` only for tables
 * without a user), and each group becomes one new file `<root>/<table>/<partition>/<batchId>[-<part>].parquet`,
 * written by DuckDB under a temporary name, fsynced, then linked into place (an atomic
 * create-if-absent) and recorded in `<root>/_manifest.jsonl` with its row count and sha256.
 *
 * Append-only and idempotent: a target file that already exists is never rewritten; it is
 * reported in `skipped` (the same batch appended again). So is a target that compaction already
 * merged into a compacted file (listed in that day's `_compacted.jsonl`): a batch re-run after
 * compaction writes nothing twice. Nothing is ever updated in place. Manifest lines are appended
 * under the manifest lock (see `withManifestLock`).
 *
 * @throws VigilError E_BAD_INPUT for an unknown table or a bad row (naming the table, row index and field);
 *   E_BAD_ID for a bad batch id or part; E_STORAGE when writing fails.
 */
export async function appendRecords<T extends TableName>(
  root: string,
  table: T,
  rows: readonly TableRow<T>[],
  opts: AppendOptions,
): Promise<AppendResult> {
  const abs = resolveRoot(root);
  if (!TableNameSchema.safeParse(table).success) throw new VigilError('E_BAD_INPUT', `unknown warehouse table ${JSON.stringify(table)}`);
  const def = TABLES[table];
  const batchId = checkFileId('batch id', opts?.batchId);
  const stem = opts.part === undefined ? batchId : `${batchId}-${checkFileId('part', opts.part)}`;
  if (!Array.isArray(rows)) throw new VigilError('E_BAD_INPUT', `${table}: rows must be an array`);

  const valid = rows.map((row, i) => validateRow(table, i, row));
  const groups = new Map<string, { rel: string; day: string; rows: Record<string, unknown>[] }>();
  for (const row of valid) {
    const day = microsToUtcDay(isoToMicros(row[def.dayColumn] as string));
    const user = def.userColumn === null ? null : (row[def.userColumn] as string);
    const rel = partitionFile(table, day, user, stem);
    let g = groups.get(rel);
    if (g === undefined) groups.set(rel, (g = { rel, day, rows: [] }));
    g.rows.push(row);
  }
  const result: AppendResult = { files: [], rows: 0, skipped: [] };
  if (groups.size === 0) return result;

  const instance = await sharedWriterDuckDB();
  const staging = `staging_${process.pid}_${++stagingSeq}`;
  let con: DuckDBConnection | undefined;
  try {
    con = await instance.connect();
    await con.run(`SET TimeZone = 'UTC'`);
    const columns = Object.entries(def.columns);
    const ordered = [...groups.values()].sort((a, b) => (a.rel < b.rel ? -1 : 1));
    await stage(con, staging, columns, ordered.map((g) => g.rows));
    let manifest: Map<string, ManifestEntry> | undefined;
    for (const [g, group] of ordered.entries()) {
      const target = absolutePath(abs, group.rel);
      if (await exists(target)) {
        manifest ??= await readManifest(abs);
        // Listed: nothing to do. Unlisted but named in the day's compaction log: a compaction
        // merged it (or is about to) and will remove it; listing it again would count it twice.
        if (!manifest.has(group.rel) && !(await compactedAway(abs, table, group.day, group.rel))) {
          await recordIfUnlisted(abs, table, group.rel, batchId, manifest);
        }
        result.skipped.push(target);
        continue;
      }
      if (await compactedAway(abs, table, group.day, group.rel)) {
        result.skipped.push(target);
        continue;
      }
      const written = await writeGroup(con, staging, abs, table, group.rel, g, columns, batchId, group.rows.length);
      if (written) {
        result.files.push(target);
        result.rows += group.rows.length;
      } else {
        result.skipped.push(target);
      }
    }
    return result;
  } finally {
    await con?.run(`DROP TABLE IF EXISTS ${staging}`).catch(() => undefined);
    con?.closeSync();
  }
}

/** Names the staging table of each append: calls share one DuckDB and may run at once. */
let stagingSeq = 0;

/**
 * True when a compaction named `rel` among the files it replaces (the day's `_compacted.jsonl`,
 * written before that compaction commits): this batch was appended before and its rows are in a
 * compacted file now, or will be once that compaction commits.
 */
async function compactedAway(root: string, table: TableName, day: string, rel: string): Promise<boolean> {
  const log = await readCompactedLog(root, table, day);
  const aborted = new Set(log.filter((l) => l.status === 'aborted').map((l) => l.compaction));
  return log.some((l) => l.status === 'prepared' && !aborted.has(l.compaction) && l.replaced.some((e) => e.file === rel));
}

function checkFileId(kind: string, value: unknown): string {
  const r = BatchIdSchema.safeParse(value);
  if (!r.success) throw new VigilError('E_BAD_ID', `${kind} ${JSON.stringify(value)} is invalid: ${r.error.issues[0]?.message ?? 'bad value'}`, { kind });
  return r.data;
}

function validateRow(table: TableName, index: number, row: unknown): Record<string, unknown> {
  const r = TABLES[table].schema.safeParse(row);
  if (r.success) return r.data as Record<string, unknown>;
  const issue = r.error.issues[0];
  const field = issue?.path.length ? issue.path.map(String).join('.') : '(row)';
  const extra = issue?.code === 'unrecognized_keys' ? ` ${issue.keys.join(', ')}` : '';
  throw new VigilError('E_BAD_INPUT', `${table} row ${index}: ${field}: ${issue?.message ?? 'invalid'}${extra}`, { table, row: index, field });
}

async function exists(p: string): Promise<boolean> {
  try {
    await fs.lstat(p);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw new VigilError('E_STORAGE', `cannot stat ${p}: ${(err as Error).message}`);
  }
}

/** Loads every group into one staging table (`_g` = group index, `_i` = order inside the group). */
async function stage(con: DuckDBConnection, staging: string, columns: [string, SqlType][], groups: Record<string, unknown>[][]): Promise<void> {
  const cols = columns.map(([name, type]) => `${sqlIdent(name)} ${type}`).join(', ');
  await con.run(`CREATE TABLE ${staging} (${cols}, _g INTEGER, _i INTEGER)`);
  const app = await con.createAppender(staging);
  try {
    groups.forEach((rows, g) => {
      rows.forEach((row, i) => {
        for (const [name, type] of columns) appendValue(app, type, row[name]);
        app.appendInteger(g);
        app.appendInteger(i);
        app.endRow();
      });
    });
    app.flushSync();
  } finally {
    app.closeSync();
  }
}

/** Explicit list type: an empty list cannot be typed from its items. */
const VARCHAR_LIST = LIST(VARCHAR);

function appendValue(app: DuckDBAppender, type: SqlType, v: unknown): void {
  if (v === null || v === undefined) return app.appendNull();
  switch (type) {
    case 'VARCHAR':
      return app.appendVarchar(v as string);
    case 'VARCHAR[]':
      return app.appendList(v as string[], VARCHAR_LIST);
    case 'TIMESTAMPTZ':
      return app.appendTimestampTZ(new DuckDBTimestampTZValue(isoToMicros(v as string)));
    case 'DATE':
      return app.appendDate(new DuckDBDateValue(dateToDays(v as string)));
    case 'TINYINT':
      return app.appendTinyInt(v as number);
    case 'SMALLINT':
      return app.appendSmallInt(v as number);
    case 'INTEGER':
      return app.appendInteger(v as number);
    case 'BIGINT':
      return app.appendBigInt(BigInt(v as number));
    case 'DOUBLE':
      return app.appendDouble(v as number);
    case 'BOOLEAN':
      return app.appendBoolean(v as boolean);
  }
}

/**
 * Writes group `g` to `rel`: COPY to a temporary name in the same folder, fsync, hash, link into
 * place (fails if the target appeared meanwhile: then false, nothing replaced), record in the manifest.
 */
async function writeGroup(
  con: DuckDBConnection,
  staging: string,
  root: string,
  table: TableName,
  rel: string,
  g: number,
  columns: [string, SqlType][],
  batchId: string,
  rows: number,
): Promise<boolean> {
  const target = absolutePath(root, rel);
  const dir = path.dirname(target);
  const tmp = path.join(dir, `.${path.basename(target)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const select = `SELECT ${columns.map(([n]) => sqlIdent(n)).join(', ')} FROM ${staging} WHERE _g = ${g} ORDER BY _i`;
    // A compaction finishing meanwhile removes partition folders it emptied: between our mkdir and
    // the file's creation the folder can vanish, and so can the day folder while mkdir is making
    // the user folder in it (ENOENT from mkdir). Once the temp file is in it, it cannot.
    for (let attempt = 1; ; attempt++) {
      try {
        await fs.mkdir(dir, { recursive: true });
        await con.run(`COPY (${select}) TO ${sqlString(tmp)} (FORMAT parquet, COMPRESSION zstd)`);
        break;
      } catch (err) {
        if (attempt >= 5 || existsSync(dir)) throw err;
      }
    }
    await fsyncPath(tmp);
    const { sha256, bytes } = await hashFile(tmp);
    try {
      await fs.link(tmp, target);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw err;
    }
    await fsyncPath(dir);
    const entry: ManifestEntry = { table, file: rel, rows, bytes, sha256, batch_id: batchId, written_at: new Date().toISOString() };
    await appendManifestEntries(root, [entry]);
    return true;
  } catch (err) {
    if (err instanceof VigilError) throw err;
    throw new VigilError('E_STORAGE', `cannot write ${target}: ${duckMessage(err)}`, { file: rel });
  } finally {
    await fs.rm(tmp, { force: true });
  }
}

/**
 * A file that exists but is not in the manifest was linked by a writer that stopped before
 * recording it: record it now (after checking it is a whole Parquet file) so it stays verifiable.
 */
async function recordIfUnlisted(root: string, table: TableName, rel: string, batchId: string, manifest: Map<string, ManifestEntry>): Promise<void> {
  if (manifest.has(rel)) return;
  const file = absolutePath(root, rel);
  const defect = await parquetDefect(file);
  if (defect !== null) throw new VigilError('E_CORRUPT', `corrupt parquet file ${file}: ${defect}`, { file: rel });
  const instance = await memoryDuckDB();
  try {
    const con = await instance.connect();
    try {
      const reader = await con.runAndReadAll(`SELECT count(*)::INTEGER AS n FROM read_parquet(${sqlString(file)})`);
      const rows = Number(reader.getRows()[0]?.[0] ?? 0);
      const { sha256, bytes } = await hashFile(file);
      const entry: ManifestEntry = { table, file: rel, rows, bytes, sha256, batch_id: batchId, written_at: new Date().toISOString() };
      await appendManifestEntries(root, [entry]);
      manifest.set(rel, entry);
    } finally {
      con.closeSync();
    }
  } catch (err) {
    if (err instanceof VigilError) throw err;
    throw new VigilError('E_CORRUPT', `unreadable parquet file ${file}: ${duckMessage(err)}`, { file: rel });
  } finally {
    instance.closeSync();
  }
}
