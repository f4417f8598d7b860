/**
 * Opening the warehouse: verify every Parquet file, then an in-memory DuckDB with one view per
 * table over the files, locked down so that it can only read the warehouse.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { VigilError } from '../lib/errors.js';
import { memoryDuckDB } from './instance.js';
import { duckMessage, jsonRows, sqlIdent, sqlString, type JsonRow, type SqlParams } from './duck.js';
import { absolutePath, hashFile, isLayoutPath, listParquet, parquetDefect, readManifest, resolveRoot } from './files.js';
import { DERIVED_VIEWS, TABLES, TABLE_NAMES, type TableName } from './schema.js';

/** An open warehouse: SQL over one view per table (plus `invalid_frames`). */
export interface Warehouse {
  /** Absolute warehouse root. */
  readonly root: string;
  /** Parquet files verified when opened, per table. */
  readonly files: Readonly<Record<TableName, number>>;
  /**
   * Runs one SQL statement with optional `$1` / `$name` parameters and returns its rows as
   * JSON-safe objects (instants as ISO 8601 UTC strings, integers as numbers when exact).
   * @throws VigilError E_STORAGE when DuckDB fails (bad SQL, unreadable file).
   */
  query(sql: string, params?: SqlParams): Promise<JsonRow[]>;
  /** Releases DuckDB. Idempotent. */
  close(): void;
}

/** Options of {@link openWarehouse}. */
export interface OpenOptions {
  /**
   * Re-hash every file listed in the manifest (default true). False only checks that listed
   * files exist with their recorded size, and that every file has Parquet footers.
   */
  verifyHashes?: boolean;
}

const CONNECTIONS = new WeakMap<Warehouse, DuckDBConnection>();
const QUEUES = new WeakMap<Warehouse, Promise<unknown>>();

function connectionOf(wh: Warehouse): DuckDBConnection {
  const con = CONNECTIONS.get(wh);
  if (con === undefined) throw new VigilError('E_BAD_INPUT', 'warehouse is closed');
  return con;
}

/**
 * @internal Runs `fn` with the DuckDB connection behind a warehouse, one call at a time per
 * warehouse (a DuckDB connection runs one query at a time; concurrent reports queue up).
 */
export function withConnection<T>(wh: Warehouse, fn: (con: DuckDBConnection) => Promise<T>): Promise<T> {
  const prev = QUEUES.get(wh) ?? Promise.resolve();
  const run = prev.then(() => fn(connectionOf(wh)));
  QUEUES.set(wh, run.catch(() => undefined));
  return run;
}

/**
 * Opens the warehouse at `root` (a missing root is an empty warehouse).
 *
 * First checks integrity: every manifest entry's file must exist (`missing <file>`), have the
 * recorded size and sha256 (`changed <file>`); every `*.parquet` file must sit at a layout path
 * and have Parquet magic and a footer that fits (`corrupt parquet file <file>`). Nothing is
 * silently skipped. Then creates one view per table over
 * `read_parquet('<root>/<table>/**\/*.parquet', hive_partitioning = true, union_by_name = true)`
 * with `day` (and `user`) as VARCHAR partition columns, so filters on `day` prune whole folders;
 * a table with no file yet is an empty view with the same columns. `invalid_frames` is a view over
 * `frames`. Session time zone is UTC.
 *
 * Finally locks DuckDB down: file access limited to the warehouse root, extensions neither
 * installed nor loaded, configuration locked. Views created at open see files appended later
 * (written atomically); a table that had no file at open stays empty until reopened.
 *
 * @throws VigilError E_CORRUPT naming the file; E_CONFIG for a bad root; E_STORAGE for I/O errors.
 */
export async function openWarehouse(root: string, opts: OpenOptions = {}): Promise<Warehouse> {
  const abs = resolveRoot(root);
  const files = await verify(abs, opts.verifyHashes ?? true);

  const instance = await memoryDuckDB();
  let con: DuckDBConnection | undefined;
  try {
    con = await instance.connect();
    await con.run(`SET TimeZone = 'UTC'`);
    for (const table of TABLE_NAMES) await con.run(`CREATE VIEW ${sqlIdent(table)} AS ${viewSql(abs, table, files[table] > 0)}`);
    for (const [name, sql] of Object.entries(DERIVED_VIEWS)) await con.run(`CREATE VIEW ${sqlIdent(name)} AS ${sql}`);
    await con.run(`SET autoinstall_known_extensions = false`);
    await con.run(`SET autoload_known_extensions = false`);
    await con.run(`SET allowed_directories = [${sqlString(abs + path.sep)}]`);
    await con.run(`SET enable_external_access = false`);
    await con.run(`SET lock_configuration = true`);
  } catch (err) {
    con?.closeSync();
    instance.closeSync();
    throw new VigilError('E_STORAGE', `cannot open warehouse ${abs}: ${duckMessage(err)}`);
  }

  const connection = con;
  let closed = false;
  const wh: Warehouse = {
    root: abs,
    files,
    query(sql: string, params?: SqlParams): Promise<JsonRow[]> {
      return withConnection(wh, async (c) => {
        try {
          const reader = await c.runAndReadAll(sql, params as Parameters<DuckDBConnection['runAndReadAll']>[1]);
          return jsonRows(reader);
        } catch (err) {
          throw new VigilError('E_STORAGE', `warehouse query failed: ${duckMessage(err)}`);
        }
      });
    },
    close(): void {
      if (closed) return;
      closed = true;
      CONNECTIONS.delete(wh);
      connection.closeSync();
      instance.closeSync();
    },
  };
  CONNECTIONS.set(wh, connection);
  return wh;
}

/** The SELECT behind a table's view: its Parquet files, or an empty relation with the same columns. */
function viewSql(root: string, table: TableName, hasFiles: boolean): string {
  const def = TABLES[table];
  const partitions: [string, string][] = def.userColumn === null ? [['day', 'VARCHAR']] : [['day', 'VARCHAR'], ['user', 'VARCHAR']];
  if (!hasFiles) {
    const cols = [...Object.entries(def.columns), ...partitions].map(([n, t]) => `CAST(NULL AS ${t}) AS ${sqlIdent(n)}`);
    return `SELECT ${cols.join(', ')} WHERE false`;
  }
  const glob = `${root}/${table}/**/*.parquet`;
  const hiveTypes = partitions.map(([n, t]) => `${sqlString(n)}: ${t}`).join(', ');
  return `SELECT * FROM read_parquet(${sqlString(glob)}, hive_partitioning = true, union_by_name = true, hive_types = {${hiveTypes}})`;
}

/** Runs the integrity checks; returns the number of Parquet files per table. */
async function verify(root: string, hashes: boolean): Promise<Record<TableName, number>> {
  const manifest = await readManifest(root);
  await mapLimit([...manifest.values()], 8, async (entry) => {
    const file = absolutePath(root, entry.file);
    let size: number;
    try {
      size = (await fs.stat(file)).size;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new VigilError('E_CORRUPT', `missing ${file} (listed in the warehouse manifest)`, { file: entry.file });
      throw new VigilError('E_STORAGE', `cannot stat ${file}: ${(err as Error).message}`, { file: entry.file });
    }
    if (size !== entry.bytes) throw new VigilError('E_CORRUPT', `changed ${file}: ${size} bytes, manifest says ${entry.bytes}`, { file: entry.file });
    if (hashes && (await hashFile(file)).sha256 !== entry.sha256) {
      throw new VigilError('E_CORRUPT', `changed ${file}: sha256 differs from the warehouse manifest`, { file: entry.file });
    }
  });
  const counts = {} as Record<TableName, number>;
  for (const table of TABLE_NAMES) {
    const rels = await listParquet(root, table);
    const byUser = TABLES[table].userColumn !== null;
    await mapLimit(rels, 16, async (rel) => {
      const file = absolutePath(root, rel);
      if (!isLayoutPath(table, rel, byUser)) throw new VigilError('E_CORRUPT', `unexpected file ${file}: not a ${table} partition path`, { file: rel });
      const defect = await parquetDefect(file);
      if (defect !== null) throw new VigilError('E_CORRUPT', `corrupt parquet file ${file}: ${defect}`, { file: rel });
    });
    counts[table] = rels.length;
  }
  return counts;
}

/** Runs `fn` over `items`, at most `limit` at a time; the first error wins. */
async function mapLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
