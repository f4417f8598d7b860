/**
 * Opening the warehouse: cheap checks of the files the manifest lists, then an in-memory DuckDB
 * with one view per table over exactly those files, locked down so that it can only read the
 * warehouse. The full integrity check (every sha256, stray files) is `verifyWarehouse`.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { VigilError } from '../lib/errors.js';
import { Catalog, relationSql, type DayRange } from './catalog.js';
import { memoryDuckDB } from './instance.js';
import { duckMessage, jsonRows, sqlIdent, sqlString, type JsonRow, type SqlParams } from './duck.js';
import { absolutePath, resolveRoot } from './files.js';
import { DERIVED_VIEWS, TABLE_NAMES, type TableName } from './schema.js';
import { mapLimit } from '../lib/mapLimit.js';
import { ERROR_KINDS, verifyWarehouse } from './verify.js';

/** An open warehouse: SQL over one view per table (plus `invalid_frames`). */
export interface Warehouse {
  /** Absolute warehouse root. */
  readonly root: string;
  /** Live Parquet files per table (as the manifest lists them now). */
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
   * Run the full check first (default false): re-hash every listed file, check Parquet footers and
   * look for files the manifest does not list (`verifyWarehouse`); the first error is thrown. By
   * default opening only checks that every listed file exists with its recorded size.
   */
  verifyHashes?: boolean;
  /** DuckDB threads (default: `VIGIL_DUCKDB_THREADS`, else the cores, at most 4). */
  threads?: number;
  /** DuckDB memory limit (default `1GB`). */
  memoryLimit?: string;
}

interface State {
  instance: DuckDBInstance;
  con: DuckDBConnection;
  catalog: Catalog;
  /** Catalog version the views were created for. */
  views: number;
  queue: Promise<unknown>;
}

const STATES = new WeakMap<Warehouse, State>();

function stateOf(wh: Warehouse): State {
  const s = STATES.get(wh);
  if (s === undefined) throw new VigilError('E_BAD_INPUT', 'warehouse is closed');
  return s;
}

/** DuckDB's ways of saying a file of a view is gone (compaction removed it after we listed it). */
const GONE = /no such file|no files found|cannot open file|could not open file|failed to open/i;

/** Brings the catalog up to date with the manifest and re-creates the views when it changed. */
async function sync(s: State, full = false): Promise<void> {
  await s.catalog.refresh(full);
  if (s.views === s.catalog.version) return;
  for (const table of TABLE_NAMES) await s.con.run(`CREATE OR REPLACE VIEW ${sqlIdent(table)} AS ${relationSql(s.catalog.root, table, s.catalog.files(table))}`);
  s.views = s.catalog.version;
}

/**
 * @internal Runs `fn` with the DuckDB connection and catalog behind a warehouse, one call at a
 * time per warehouse (a DuckDB connection runs one query at a time; concurrent reports queue up).
 * First brings the views up to date with the manifest (one stat when nothing changed). When a file
 * vanished under the query (a compaction committed and removed it meanwhile), re-reads the
 * manifest and runs `fn` again, so a reader sees either the files before or after a compaction.
 */
export function withConnection<T>(wh: Warehouse, fn: (con: DuckDBConnection, catalog: Catalog) => Promise<T>): Promise<T> {
  const s = STATES.get(wh);
  if (s === undefined) return Promise.reject(new VigilError('E_BAD_INPUT', 'warehouse is closed'));
  const run = s.queue.then(async () => {
    const st = stateOf(wh);
    for (let attempt = 1; ; attempt++) {
      try {
        await sync(st, attempt > 1);
        return await fn(st.con, st.catalog);
      } catch (err) {
        const msg = err instanceof Error ? err.message : String(err);
        if (attempt >= 3 || !GONE.test(msg)) throw err;
      }
    }
  });
  s.queue = run.catch(() => undefined);
  return run;
}

/** Names the relation over a table's live files holding rows of `days` (all files without). */
export type SourceFn = (table: TableName, days?: DayRange) => string;

/**
 * @internal Runs the query `build` returns, where `src(table, days)` is a parenthesised relation
 * over exactly the live files of `table` whose days overlap `days` (the table's view columns).
 * This is how the reports prune: DuckDB never sees the other files.
 * @throws VigilError E_STORAGE when DuckDB fails.
 */
export function scopedQuery(wh: Warehouse, build: (src: SourceFn) => string, params?: SqlParams): Promise<JsonRow[]> {
  return withConnection(wh, async (con, catalog) => {
    const sql = build((table, days) => `(${relationSql(catalog.root, table, catalog.select(table, days))})`);
    try {
      return jsonRows(await con.runAndReadAll(sql, params as Parameters<DuckDBConnection['runAndReadAll']>[1]));
    } catch (err) {
      throw new VigilError('E_STORAGE', `warehouse query failed: ${duckMessage(err)}`);
    }
  });
}

/**
 * Opens the warehouse at `root` (a missing root is an empty warehouse).
 *
 * Reads the manifest (`_manifest.jsonl`: the live files) and checks that each listed file exists
 * (`missing <file>`) with its recorded size (`changed <file>`); with `verifyHashes`, runs the full
 * `verifyWarehouse` check instead (every sha256 and footer; strays and unlisted files). Files on
 * disk the manifest does not list are never read. Then creates one view per table over the explicit
 * list of its live files (no glob): batch files with `day` (and `user`) as VARCHAR partition
 * columns from their folders, compacted files with `day` stored and `user` = `user_id`; a table
 * with no file is an empty view with the same columns. `invalid_frames` is a view over `frames`.
 * Session time zone is UTC; DuckDB runs with explicit threads and memory limit and caches Parquet
 * footers between queries.
 *
 * Finally locks DuckDB down: file access limited to the warehouse root, extensions neither
 * installed nor loaded, configuration locked. Before each query the views follow the manifest
 * (files appended or compacted since the open are seen; a reader never sees both a compacted file
 * and the files it replaced).
 *
 * @throws VigilError E_CORRUPT naming the file; E_CONFIG for a bad root; E_STORAGE for I/O errors.
 */
export async function openWarehouse(root: string, opts: OpenOptions = {}): Promise<Warehouse> {
  const abs = resolveRoot(root);
  const catalog = new Catalog(abs);
  await catalog.refresh();
  if (opts.verifyHashes) {
    const r = await verifyWarehouse(abs, { hashes: true });
    const first = r.problems.find((p) => ERROR_KINDS.has(p.kind));
    if (first !== undefined) throw new VigilError('E_CORRUPT', first.message, { file: first.file, kind: first.kind });
    await catalog.refresh();
  } else {
    // A compaction may commit and remove files between reading the manifest and checking them:
    // a missing file only counts when the manifest, read again, still lists it.
    for (let attempt = 1; ; attempt++) {
      try {
        await checkSizes(abs, catalog);
        break;
      } catch (err) {
        if (attempt >= 3 || !(err instanceof VigilError && err.code === 'E_CORRUPT') || !(await catalog.refresh(true))) throw err;
      }
    }
  }

  const instance = await memoryDuckDB({ threads: opts.threads, memoryLimit: opts.memoryLimit ?? '1GB' });
  let con: DuckDBConnection | undefined;
  const state = { instance, catalog, views: -1, queue: Promise.resolve() } as Omit<State, 'con'> & { con?: DuckDBConnection };
  try {
    con = await instance.connect();
    state.con = con;
    await con.run(`SET TimeZone = 'UTC'`);
    await con.run(`SET parquet_metadata_cache = true`);
    for (let attempt = 1; ; attempt++) {
      try {
        await sync(state as State, attempt > 1);
        break;
      } catch (err) {
        if (attempt >= 3 || !GONE.test(duckMessage(err))) throw err;
      }
    }
    for (const [name, sql] of Object.entries(DERIVED_VIEWS)) await con.run(`CREATE VIEW ${sqlIdent(name)} AS ${sql}`);
    await con.run(`SET autoinstall_known_extensions = false`);
    await con.run(`SET autoload_known_extensions = false`);
    await con.run(`SET allowed_directories = [${sqlString(abs + path.sep)}]`);
    await con.run(`SET enable_external_access = false`);
    await con.run(`SET lock_configuration = true`);
  } catch (err) {
    con?.closeSync();
    instance.closeSync();
    throw new VigilError('E_STORAGE', `cannot open warehouse ${abs}: ${duckMessage(err)} (\`vigil warehouse verify\` names a damaged file)`);
  }

  let closed = false;
  const wh: Warehouse = {
    root: abs,
    get files() {
      return catalog.counts();
    },
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
      const s = STATES.get(wh);
      STATES.delete(wh);
      s?.con.closeSync();
      s?.instance.closeSync();
    },
  };
  STATES.set(wh, state as State);
  return wh;
}

/** Every listed file exists with its recorded size (no hashing: `verifyWarehouse` does that). */
async function checkSizes(root: string, catalog: Catalog): Promise<void> {
  await mapLimit([...catalog.live.values()], 16, async (entry) => {
    const file = absolutePath(root, entry.file);
    let size: number;
    try {
      size = (await fs.stat(file)).size;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new VigilError('E_CORRUPT', `missing ${file} (listed in the warehouse manifest)`, { file: entry.file });
      throw new VigilError('E_STORAGE', `cannot stat ${file}: ${(err as Error).message}`, { file: entry.file });
    }
    if (size !== entry.bytes) throw new VigilError('E_CORRUPT', `changed ${file}: ${size} bytes, manifest says ${entry.bytes}`, { file: entry.file });
  });
}
