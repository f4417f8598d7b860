/**
 * Compaction: merges the many small batch files of a closed period into one Parquet file sorted
 * by keys the reports filter on, so DuckDB opens a handful of files and prunes row groups by their
 * min/max statistics.
 *
 * Periods: a closed month (every day of it over, plus the grace) becomes one file per table;
 * a closed day of the current month becomes one file per table; open days are left alone. Late
 * rows for a compacted period land in new batch files next to it, and the next compaction merges
 * them with it into a new compacted file.
 *
 * Nothing is updated in place and no row is lost or counted twice, whatever the crash point:
 *
 * 1. the inputs are re-hashed against the manifest (a changed file is refused, never laundered
 *    into a new hash);
 * 2. a journal naming output and inputs is written (`_compacting/<id>.json`, fsynced);
 * 3. the rows are read into DuckDB, counted and fingerprinted (sum of row hashes), written sorted
 *    to a temporary file, read back and checked again: the manifest's row counts, the rows read,
 *    the rows written (footer and scan) and both fingerprints must all agree, else the compaction
 *    fails loudly (`E_CORRUPT`); then fsync, rename to its final name, fsync of the folder;
 * 4. each day's `_compacted.jsonl` gets a `prepared` line naming the files it replaces (so a batch
 *    re-run never appends them again), fsynced;
 * 5. commit: under the manifest lock, the manifest is rewritten without the inputs and with the
 *    compacted file (its sha256, rows, days and `replaces`), fsynced, renamed over the old one;
 * 6. the inputs are removed, then the journal.
 *
 * Readers only see files the manifest lists, so before step 5 they read the inputs and after it
 * the compacted file, never both. A journal left by a crash is finished (committed: step 6) or
 * undone (not committed: output removed, `aborted` lines in the day logs) by the next compaction.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { VigilError, isVigilError } from '../lib/errors.js';
import { withLock } from '../repos/lock.js';
import { Catalog, relationSql, type CatalogFile } from './catalog.js';
import { duckMessage, sqlIdent, sqlString } from './duck.js';
import {
  MANIFEST,
  absolutePath,
  appendDurably,
  compactedFile,
  compactedLogFile,
  fsyncPath,
  hashFile,
  parseLayoutPath,
  readCompactedLog,
  readManifest,
  resolveRoot,
  rewriteManifest,
  withManifestLock,
  type CompactedLogLine,
  type ManifestEntry,
} from './files.js';
import { memoryDuckDB } from './instance.js';
import { readJournals, removeJournal, removeJournalTemps, writeJournal, type Journal } from './journal.js';
import { TABLES, TABLE_NAMES, type TableName } from './schema.js';
import { addDays } from './time.js';
import { mapLimit } from '../lib/mapLimit.js';

/** Lock file held by the one compaction running on a warehouse. */
export const COMPACT_LOCK = '_compact.lock';

/** State of the automatic compaction (when it last ran, whether work was left). */
export const AUTO_COMPACT_STATE = '_compact.json';

/**
 * Sort order of compacted files, per table. `frames` by frame id and `alerts` by frame id, so a
 * lookup by id reads one row group per file; `deliveries` by alert id for the same reason; the
 * per-day tables by day, user and device, so a day's or a user's rows are a few row groups.
 */
export const SORT_KEYS: Readonly<Record<TableName, readonly string[]>> = {
  frames: ['frame_id', 'captured_at', 'batch_id'],
  detections: ['day', 'user_id', 'device_id', 'captured_at', 'frame_id'],
  threats: ['day', 'user_id', 'device_id', 'captured_at', 'frame_id'],
  non_matches: ['day', 'user_id', 'device_id', 'hour'],
  alerts: ['frame_id', 'created_at', 'alert_id'],
  deliveries: ['alert_id', 'at', 'channel', 'attempt'],
  rule_versions: ['at', 'rules_commit'],
};

/** Rows per Parquet row group in compacted files: the unit DuckDB skips by min/max statistics. */
export const ROW_GROUP_ROWS = 16_384;

/** Options of {@link compactWarehouse}. */
export interface CompactOptions {
  /** The present (default now): which days and months are closed. */
  now?: Date;
  /** A day (month) is closed this long after it ended, UTC (default 1 hour). */
  graceMs?: number;
  /** Only these tables (default all). */
  tables?: readonly TableName[];
  /** Merge closed months into one file per table (default true); false stops at one file per day. */
  monthly?: boolean;
  /** Start no new partition after this long (ms); what is left is counted in `remaining`. */
  budgetMs?: number;
  /** At most this many partitions. */
  maxPartitions?: number;
  /** Commit (rewrite the manifest) at least this often, in ms (default 30 000), and every 64 partitions. */
  commitEveryMs?: number;
  /** Also remove files the manifest no longer lists that a committed compaction replaced, and uncommitted compaction outputs (walks every folder). */
  sweep?: boolean;
  /** DuckDB threads (default: see `defaultThreads`). */
  threads?: number;
  /** DuckDB memory limit (default `2GB`; beyond it DuckDB spills to the temp folder). */
  memoryLimit?: string;
  /** Wait this long for another compaction to finish (default 0: fail at once with E_LOCKED). */
  lockTimeoutMs?: number;
  /** Progress lines. */
  log?: (line: string) => void;
  /** @internal Test hook: called at named points of a compaction; throwing there simulates a crash. */
  onStep?: (step: CompactStep) => void | Promise<void>;
}

/** Points of a compaction that the `onStep` test hook sees. */
export type CompactStep = 'written' | 'logged' | 'committed' | 'removed';

/** One partition compacted. */
export interface CompactedPartition {
  table: TableName;
  /** `day` or `month`. */
  period: 'day' | 'month';
  first: string;
  last: string;
  /** Files merged. */
  files: number;
  rows: number;
  bytesBefore: number;
  bytesAfter: number;
  /** Relative path of the compacted file. */
  output: string;
  ms: number;
}

/** Result of {@link compactWarehouse}. */
export interface CompactResult {
  root: string;
  /** Live files before and after. */
  filesBefore: number;
  filesAfter: number;
  partitions: CompactedPartition[];
  /** Rows moved into compacted files. */
  rows: number;
  /** Partitions left undone (budget or maxPartitions). */
  remaining: number;
  /** Partitions prepared but not committed because their inputs changed meanwhile (another writer compacted them). */
  dropped: number;
  /** Interrupted compactions found: finished (they had committed) and undone (they had not). */
  recovered: { finished: number; undone: number };
  /** Files removed by `sweep`. */
  swept: number;
  ms: number;
}

/** A period of one table to compact. */
export interface PlannedPartition {
  table: TableName;
  period: 'day' | 'month';
  first: string;
  last: string;
  files: CatalogFile[];
}

interface Prepared {
  partition: PlannedPartition;
  journal: Journal;
  entry: ManifestEntry;
  ms: number;
  /** Where the time went: checking inputs, reading them, writing and checking the output. */
  steps: { hashMs: number; readMs: number; writeMs: number };
}

/** First day of the month after `day`'s. */
function nextMonth(day: string): string {
  const y = Number(day.slice(0, 4));
  const m = Number(day.slice(5, 7));
  return m === 12 ? `${y + 1}-01-01` : `${y}-${String(m + 1).padStart(2, '0')}-01`;
}

/**
 * The partitions a compaction would merge now: per table, each closed month (with `monthly`) and
 * each closed day of an open month, that holds a batch file or more than one file. A file spanning
 * several months is left alone.
 */
export function planCompaction(catalog: Catalog, opts: Pick<CompactOptions, 'now' | 'graceMs' | 'tables' | 'monthly'> = {}): PlannedPartition[] {
  const now = (opts.now ?? new Date()).getTime();
  const grace = opts.graceMs ?? 3_600_000;
  const monthly = opts.monthly ?? true;
  const closed = (dayAfter: string): boolean => now >= Date.parse(`${dayAfter}T00:00:00Z`) + grace;
  const out: PlannedPartition[] = [];
  for (const table of opts.tables ?? TABLE_NAMES) {
    const groups = new Map<string, PlannedPartition>();
    for (const f of catalog.files(table)) {
      if (f.first.slice(0, 7) !== f.last.slice(0, 7)) continue;
      let period: 'day' | 'month';
      let key: string;
      if (monthly && closed(nextMonth(f.first))) {
        period = 'month';
        key = f.first.slice(0, 7);
      } else if (f.first === f.last && closed(addDays(f.first, 1))) {
        period = 'day';
        key = f.first;
      } else continue;
      let g = groups.get(key);
      if (g === undefined) groups.set(key, (g = { table, period, first: f.first, last: f.last, files: [] }));
      g.files.push(f);
      if (f.first < g.first) g.first = f.first;
      if (f.last > g.last) g.last = f.last;
    }
    for (const g of groups.values()) if (g.files.length > 1 || g.files[0]?.kind === 'batch') out.push(g);
  }
  return out.sort((a, b) => (a.first < b.first ? -1 : a.first > b.first ? 1 : a.table < b.table ? -1 : a.table > b.table ? 1 : 0));
}

/**
 * Compacts the closed periods of the warehouse at `root` (see the module comment for the steps and
 * their crash safety). One compaction runs at a time per warehouse (`_compact.lock`); appenders and
 * readers are never blocked for longer than a manifest rewrite. Interrupted compactions are
 * finished or undone first.
 *
 * @throws VigilError E_LOCKED when another compaction holds the lock; E_CORRUPT when an input does
 *   not match the manifest or the rows do not reconcile (nothing of that partition is committed);
 *   E_STORAGE for I/O or DuckDB failures.
 */
export async function compactWarehouse(root: string, opts: CompactOptions = {}): Promise<CompactResult> {
  const abs = resolveRoot(root);
  const t0 = Date.now();
  const empty: CompactResult = { root: abs, filesBefore: 0, filesAfter: 0, partitions: [], rows: 0, remaining: 0, dropped: 0, recovered: { finished: 0, undone: 0 }, swept: 0, ms: 0 };
  if (!existsSync(abs)) return empty;
  return withCompactionLock(abs, opts.lockTimeoutMs ?? 0, async () => {
    const log = opts.log ?? (() => {});
    const recovered = await recover(abs, log);
    const catalog = new Catalog(abs);
    await catalog.refresh();
    const result: CompactResult = { ...empty, filesBefore: catalog.live.size, recovered };
    if (opts.sweep) result.swept = await sweep(abs, log);
    const plan = planCompaction(catalog, opts);
    const todo = opts.maxPartitions === undefined ? plan : plan.slice(0, opts.maxPartitions);
    result.remaining = plan.length - todo.length;
    if (todo.length > 0) {
      log(`compacting ${todo.length} partition(s) of ${catalog.live.size} live files`);
      const instance = await memoryDuckDB({ threads: opts.threads, memoryLimit: opts.memoryLimit ?? '2GB' });
      const con = await instance.connect();
      let group: Prepared[] = [];
      try {
        await con.run(`SET TimeZone = 'UTC'`);
        let groupStart = Date.now();
        const commitEvery = opts.commitEveryMs ?? 30_000;
        const flush = async (): Promise<void> => {
          const g = group;
          group = [];
          groupStart = Date.now();
          const tc = Date.now();
          let outcome: { committed: Prepared[]; dropped: number };
          try {
            outcome = await commitGroup(abs, g, opts, log);
          } catch (err) {
            // Whatever the manifest says now decides: committed ones are finished, the others undone.
            if (!isSimulatedCrash(err)) for (const p of g) await settle(abs, p.journal).catch(() => undefined);
            throw err;
          }
          const { committed, dropped } = outcome;
          log(`  committed ${committed.length} partition(s) in ${Date.now() - tc} ms`);
          result.dropped += dropped;
          for (const p of committed) {
            result.partitions.push({
              table: p.partition.table, period: p.partition.period, first: p.partition.first, last: p.partition.last,
              files: p.partition.files.length, rows: p.entry.rows,
              bytesBefore: p.partition.files.reduce((n, f) => n + f.entry.bytes, 0), bytesAfter: p.entry.bytes, output: p.entry.file, ms: p.ms,
            });
            result.rows += p.entry.rows;
          }
        };
        for (const [i, p] of todo.entries()) {
          if (opts.budgetMs !== undefined && Date.now() - t0 >= opts.budgetMs) {
            result.remaining += todo.length - i;
            break;
          }
          group.push(await preparePartition(con, abs, p, opts));
          const last = group.at(-1)!;
          log(`  ${p.table} ${p.first}..${p.last}: ${p.files.length} file(s) -> 1 (${last.entry.rows} rows, ${last.ms} ms: check ${last.steps.hashMs}, read ${last.steps.readMs}, write ${last.steps.writeMs})`);
          if (group.length >= 64 || Date.now() - groupStart >= commitEvery) await flush();
        }
        if (group.length > 0) await flush();
      } catch (err) {
        // Prepared partitions of the failed group are undone; committed ones stay committed.
        if (!isSimulatedCrash(err)) for (const p of group) await settle(abs, p.journal).catch(() => undefined);
        throw err;
      } finally {
        con.closeSync();
        instance.closeSync();
      }
    }
    const after = new Catalog(abs);
    await after.refresh();
    result.filesAfter = after.live.size;
    result.ms = Date.now() - t0;
    return result;
  });
}

/** Runs `fn` holding the compaction lock, touching it every minute so a long run never looks stale. */
async function withCompactionLock<T>(root: string, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  const lockPath = path.join(root, COMPACT_LOCK);
  try {
    return await withLock(lockPath, async () => {
      const beat = setInterval(() => {
        const t = new Date();
        fs.utimes(lockPath, t, t).catch(() => undefined);
      }, 60_000);
      beat.unref();
      try {
        return await fn();
      } finally {
        clearInterval(beat);
      }
    }, timeoutMs);
  } catch (err) {
    if (isVigilError(err, 'E_LOCKED') && (err.detail?.lockPath === lockPath)) {
      const holder = await fs.readFile(lockPath, 'utf8').catch(() => '?');
      throw new VigilError('E_LOCKED', `another compaction is running on ${root} (${COMPACT_LOCK}: ${holder.trim()})`, { lockPath });
    }
    throw err;
  }
}

/** UTC days `first..last`. */
function daysOf(first: string, last: string): string[] {
  const out: string[] = [];
  for (let d = first; d <= last; d = addDays(d, 1)) out.push(d);
  return out;
}

/** `count:sum of row hashes` of a relation, for the table's columns and `day`. */
async function fingerprint(con: DuckDBConnection, table: TableName, from: string): Promise<{ rows: number; sum: string }> {
  const cols = [...Object.keys(TABLES[table].columns), 'day'].map(sqlIdent).join(', ');
  const r = await con.runAndReadAll(`SELECT count(*)::BIGINT, coalesce(sum(hash(${cols})::HUGEINT), 0)::VARCHAR FROM ${from}`);
  const [n, sum] = (r.getRows()[0] ?? [0n, '0']) as [bigint, string];
  return { rows: Number(n), sum };
}

/** Steps 1-3: inputs checked, journal, output written, reconciled, renamed into place (not yet live). */
async function preparePartition(con: DuckDBConnection, root: string, p: PlannedPartition, opts: CompactOptions): Promise<Prepared> {
  const t0 = Date.now();
  const { table } = p;
  const label = `${table} ${p.first}..${p.last}`;
  // 1. The inputs are what the manifest says, byte for byte.
  const steps = { hashMs: 0, readMs: 0, writeMs: 0 };
  await mapLimit(p.files, 8, async (f) => {
    const file = absolutePath(root, f.rel);
    let st;
    try {
      st = await hashFile(file);
    } catch (err) {
      throw new VigilError('E_CORRUPT', `compaction of ${label} refused: cannot read ${file}: ${(err as Error).message}`, { file: f.rel });
    }
    if (st.bytes !== f.entry.bytes || st.sha256 !== f.entry.sha256) {
      throw new VigilError('E_CORRUPT', `compaction of ${label} refused: changed ${file}: it differs from the warehouse manifest`, { file: f.rel });
    }
  });
  steps.hashMs = Date.now() - t0;
  const id = randomBytes(8).toString('hex');
  const output = compactedFile(table, p.first, p.last, id);
  const tmp = `${table}/compacted/.${p.first}_${p.last}-${id}.parquet.tmp`;
  const days = [...new Set(p.files.flatMap((f) => daysOf(f.first, f.last)))].sort();
  // 2. Journal.
  const journal = await writeJournal(root, { id, table, first: p.first, last: p.last, output, tmp, inputs: p.files.map((f) => f.rel), days });
  const tmpAbs = absolutePath(root, tmp);
  const outAbs = absolutePath(root, output);
  try {
    await fs.mkdir(path.dirname(outAbs), { recursive: true });
    // 3. Read, count, fingerprint; write sorted; read back and compare.
    const cols = Object.keys(TABLES[table].columns).map(sqlIdent).join(', ');
    await con.run(`CREATE OR REPLACE TEMP TABLE staged AS SELECT ${cols}, "day" FROM (${relationSql(root, table, p.files)})`);
    const manifestRows = p.files.reduce((n, f) => n + f.entry.rows, 0);
    const read = await fingerprint(con, table, 'staged');
    const dayCol = sqlIdent(TABLES[table].dayColumn);
    const badDay = await con.runAndReadAll(
      `SELECT count(*)::BIGINT FROM staged WHERE "day" IS DISTINCT FROM strftime(CAST(${dayCol} AS TIMESTAMP), '%Y-%m-%d') OR "day" < ${sqlString(p.first)} OR "day" > ${sqlString(p.last)}`,
    );
    const misplaced = Number(badDay.getRows()[0]?.[0] ?? 0);
    if (read.rows !== manifestRows || misplaced !== 0) {
      throw new VigilError('E_CORRUPT', `compaction of ${label}: rows do not reconcile: the manifest lists ${manifestRows}, the ${p.files.length} file(s) hold ${read.rows}${misplaced ? `, ${misplaced} outside their day partition` : ''}`, { table, first: p.first, last: p.last });
    }
    steps.readMs = Date.now() - t0 - steps.hashMs;
    const order = SORT_KEYS[table].map(sqlIdent).join(', ');
    await con.run(`COPY (SELECT * FROM staged ORDER BY ${order}) TO ${sqlString(tmpAbs)} (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE ${ROW_GROUP_ROWS})`);
    await con.run('DROP TABLE staged');
    const written = await fingerprint(con, table, `read_parquet(${sqlString(tmpAbs)}, hive_partitioning = false)`);
    const footer = await con.runAndReadAll(`SELECT num_rows::BIGINT FROM parquet_file_metadata(${sqlString(tmpAbs)})`);
    const footerRows = Number(footer.getRows()[0]?.[0] ?? -1);
    if (written.rows !== read.rows || footerRows !== read.rows || written.sum !== read.sum) {
      throw new VigilError(
        'E_CORRUPT',
        `compaction of ${label}: rows do not reconcile: read ${read.rows} (fingerprint ${read.sum}), wrote ${written.rows} (footer ${footerRows}, fingerprint ${written.sum})`,
        { table, first: p.first, last: p.last },
      );
    }
    await fsyncPath(tmpAbs);
    const { sha256, bytes } = await hashFile(tmpAbs);
    await fs.rename(tmpAbs, outAbs);
    await fsyncPath(path.dirname(outAbs));
    const entry: ManifestEntry = {
      table, file: output, rows: read.rows, bytes, sha256, batch_id: `compact-${id}`, written_at: new Date().toISOString(),
      first_day: p.first, last_day: p.last, replaces: p.files.map((f) => f.rel), fingerprint: `${read.rows}:${read.sum}`,
    };
    steps.writeMs = Date.now() - t0 - steps.hashMs - steps.readMs;
    const prepared: Prepared = { partition: p, journal, entry, ms: Date.now() - t0, steps };
    await opts.onStep?.('written');
    return prepared;
  } catch (err) {
    await con.run('DROP TABLE IF EXISTS staged').catch(() => undefined);
    if (isSimulatedCrash(err)) throw err;
    await undo(root, journal);
    if (err instanceof VigilError) throw err;
    throw new VigilError('E_STORAGE', `compaction of ${label} failed: ${duckMessage(err)}`, { table, first: p.first, last: p.last });
  }
}

/** @internal Errors thrown by the `onStep` hook with this name leave everything as a crash would. */
export class SimulatedCrash extends Error {
  constructor(step: string) {
    super(`simulated crash after ${step}`);
    this.name = 'SimulatedCrash';
  }
}
function isSimulatedCrash(err: unknown): boolean {
  return err instanceof SimulatedCrash;
}

/** Steps 4-6 for a group of prepared partitions: day logs, one manifest rewrite, removal of the inputs. */
async function commitGroup(root: string, group: Prepared[], opts: CompactOptions, log: (l: string) => void): Promise<{ committed: Prepared[]; dropped: number }> {
  if (group.length === 0) return { committed: [], dropped: 0 };
  // 4. Day logs: what each compaction replaces, durable before it commits.
  for (const p of group) await writeDayLogs(root, p.journal, p.partition.files.map((f) => f.entry), p.entry.sha256);
  await opts.onStep?.('logged');
  // 5. Commit.
  let committed: Prepared[] = [];
  let live = new Map<string, ManifestEntry>();
  await withManifestLock(root, async () => {
    live = await readManifest(root);
    committed = group.filter((p) => !live.has(p.entry.file) && p.partition.files.every((f) => live.get(f.rel)?.sha256 === f.entry.sha256));
    if (committed.length === 0) return;
    for (const p of committed) {
      for (const f of p.partition.files) live.delete(f.rel);
      live.set(p.entry.file, p.entry);
    }
    await rewriteManifest(root, live.values());
  });
  const dropped = group.filter((p) => !committed.includes(p));
  for (const p of dropped) {
    log(`  ${p.partition.table} ${p.partition.first}..${p.partition.last}: its files changed meanwhile; not committed`);
    await undo(root, p.journal);
  }
  await opts.onStep?.('committed');
  // 6. Remove the inputs, then the journals.
  for (const p of committed) await finish(root, p.journal, live);
  await opts.onStep?.('removed');
  return { committed, dropped: dropped.length };
}

/** Appends a `prepared` line to the log of each day the compaction covers, naming that day's replaced files. */
async function writeDayLogs(root: string, j: Journal, inputs: readonly ManifestEntry[], outputSha256: string): Promise<void> {
  const at = new Date().toISOString();
  for (const day of j.days) {
    const replaced = inputs.filter((e) => {
      const l = parseLayoutPath(e.file);
      return l !== null && l.first <= day && day <= l.last;
    });
    if (replaced.length === 0) continue;
    const existing = await readCompactedLog(root, j.table, day);
    if (existing.some((l) => l.compaction === j.id && l.status === 'prepared')) continue;
    const line: CompactedLogLine = { compaction: j.id, status: 'prepared', table: j.table, day, output: j.output, output_sha256: outputSha256, at, replaced };
    const file = absolutePath(root, compactedLogFile(j.table, day));
    await fs.mkdir(path.dirname(file), { recursive: true });
    await appendDurably(file, JSON.stringify(line) + '\n');
  }
}

/** Finishes a compaction whose output the manifest lists, undoes one it does not. */
async function settle(root: string, j: Journal): Promise<void> {
  const live = await readManifest(root);
  if (live.has(j.output)) await finish(root, j, live);
  else await undo(root, j);
}

/** A compaction that did not commit: its output removed, `aborted` lines where it had logged, journal removed. */
async function undo(root: string, j: Journal): Promise<void> {
  await fs.rm(absolutePath(root, j.tmp), { force: true });
  const live = await readManifest(root);
  if (!live.has(j.output)) await fs.rm(absolutePath(root, j.output), { force: true });
  for (const day of j.days) {
    const lines = await readCompactedLog(root, j.table, day).catch(() => [] as CompactedLogLine[]);
    if (!lines.some((l) => l.compaction === j.id && l.status === 'prepared') || lines.some((l) => l.compaction === j.id && l.status === 'aborted')) continue;
    const line: CompactedLogLine = { compaction: j.id, status: 'aborted', table: j.table, day, output: j.output, output_sha256: null, at: new Date().toISOString(), replaced: [] };
    await appendDurably(absolutePath(root, compactedLogFile(j.table, day)), JSON.stringify(line) + '\n');
  }
  await removeJournal(root, j.id);
}

/** A committed compaction: removes its inputs (never a live file), empty folders, then the journal. */
async function finish(root: string, j: Journal, live: ReadonlyMap<string, ManifestEntry>): Promise<void> {
  const dirs = new Set<string>();
  for (const rel of j.inputs) {
    if (live.has(rel)) continue;
    const file = absolutePath(root, rel);
    await fs.rm(file, { force: true });
    dirs.add(path.dirname(file));
  }
  // Empty `user=` folders go; each changed parent is fsynced so the removals are durable before the journal goes.
  const synced = new Set<string>();
  for (const dir of [...dirs].sort((a, b) => b.length - a.length)) {
    let target = dir;
    try {
      await fs.rmdir(dir);
      target = path.dirname(dir);
    } catch {
      // not empty (other files, or the day's compaction log), or already gone
    }
    if (!synced.has(target)) {
      synced.add(target);
      await fsyncPath(target).catch(() => undefined);
    }
  }
  await removeJournal(root, j.id);
}

/** Finishes or undoes every journal left by an interrupted compaction; removes temporary outputs. */
async function recover(root: string, log: (l: string) => void): Promise<{ finished: number; undone: number }> {
  await removeJournalTemps(root);
  const out = { finished: 0, undone: 0 };
  const journals = await readJournals(root);
  if (journals.length > 0) {
    const live = await readManifest(root);
    for (const j of journals) {
      if (live.has(j.output)) {
        log(`finishing interrupted compaction ${j.id} (${j.table} ${j.first}..${j.last}): it had committed`);
        await finish(root, j, live);
        out.finished++;
      } else {
        log(`undoing interrupted compaction ${j.id} (${j.table} ${j.first}..${j.last}): it had not committed`);
        await undo(root, j);
        out.undone++;
      }
    }
  }
  // Temporary outputs without a journal (only a compaction writes there, and we hold its lock).
  for (const table of TABLE_NAMES) {
    const dir = path.join(root, table, 'compacted');
    let names: string[];
    try {
      names = await fs.readdir(dir);
    } catch {
      continue;
    }
    for (const n of names) if (n.startsWith('.') && n.endsWith('.parquet.tmp')) await fs.rm(path.join(dir, n), { force: true });
  }
  return out;
}

/**
 * Removes files the manifest does not list that are certainly dead: compacted outputs that never
 * committed, and files a committed compaction replaced (named in a day log, not aborted). Unlisted
 * batch files are kept: they are appends awaiting their re-run.
 */
async function sweep(root: string, log: (l: string) => void): Promise<number> {
  const live = await readManifest(root);
  let removed = 0;
  for (const table of TABLE_NAMES) {
    const tdir = path.join(root, table);
    let days: string[];
    try {
      days = await fs.readdir(tdir);
    } catch {
      continue;
    }
    for (const name of days) {
      if (name === 'compacted') {
        for (const f of await fs.readdir(path.join(tdir, name)).catch(() => [] as string[])) {
          const rel = `${table}/compacted/${f}`;
          if (f.endsWith('.parquet') && !f.startsWith('.') && !live.has(rel)) {
            log(`  sweep: ${rel} (never committed)`);
            await fs.rm(path.join(tdir, name, f), { force: true });
            removed++;
          }
        }
        continue;
      }
      const day = /^day=(\d{4}-\d{2}-\d{2})$/.exec(name)?.[1];
      if (day === undefined) continue;
      const lines = await readCompactedLog(root, table, day);
      const aborted = new Set(lines.filter((l) => l.status === 'aborted').map((l) => l.compaction));
      for (const l of lines) {
        if (l.status !== 'prepared' || aborted.has(l.compaction)) continue;
        for (const e of l.replaced) {
          if (live.has(e.file)) continue;
          const file = absolutePath(root, e.file);
          if (!existsSync(file)) continue;
          log(`  sweep: ${e.file} (replaced by compaction ${l.compaction})`);
          await fs.rm(file, { force: true });
          await fs.rmdir(path.dirname(file)).catch(() => undefined);
          removed++;
        }
      }
    }
  }
  return removed;
}

/** Options of {@link autoCompact}. */
export interface AutoCompactOptions {
  /** Run at most this often when the previous run finished everything (default 1 hour). */
  minIntervalMs?: number;
  /** Run again this soon when the previous run left work (default 1 minute). */
  backlogIntervalMs?: number;
  /** Time budget of one run (default 20 s: it runs inside the records activity). */
  budgetMs?: number;
  now?: Date;
}

/**
 * The automatic compaction the records stage runs after appending: at most once an hour per
 * warehouse (`_compact.json` says when it last ran; sooner while a backlog remains), only when no
 * other compaction runs, within a time budget, and only over closed periods. Disabled with
 * `VIGIL_WAREHOUSE_AUTOCOMPACT=0`. Returns null when it did not run.
 * @throws VigilError like {@link compactWarehouse} (the records stage logs and ignores them).
 */
export async function autoCompact(root: string, opts: AutoCompactOptions = {}): Promise<CompactResult | null> {
  if (process.env.VIGIL_WAREHOUSE_AUTOCOMPACT === '0') return null;
  const abs = resolveRoot(root);
  // One at a time per process without queueing behind it (the lock file covers other processes).
  if (AUTO_RUNNING.has(abs) || !existsSync(path.join(abs, MANIFEST))) return null;
  AUTO_RUNNING.add(abs);
  try {
    return await autoCompactOnce(abs, opts);
  } finally {
    AUTO_RUNNING.delete(abs);
  }
}

const AUTO_RUNNING = new Set<string>();

async function autoCompactOnce(abs: string, opts: AutoCompactOptions): Promise<CompactResult | null> {
  const stateFile = path.join(abs, AUTO_COMPACT_STATE);
  const now = opts.now ?? new Date();
  let state: { at?: string; remaining?: number } = {};
  try {
    state = JSON.parse(await fs.readFile(stateFile, 'utf8')) as typeof state;
  } catch {
    // never ran, or unreadable: run
  }
  const last = state.at === undefined ? NaN : Date.parse(state.at);
  const wait = (state.remaining ?? 0) > 0 ? (opts.backlogIntervalMs ?? 60_000) : (opts.minIntervalMs ?? 3_600_000);
  if (!Number.isNaN(last) && now.getTime() - last < wait && now.getTime() >= last) return null;
  const writeState = (remaining: number): Promise<void> =>
    fs.writeFile(stateFile, JSON.stringify({ at: now.toISOString(), remaining }) + '\n').catch(() => undefined);
  // Claim this slot first, so concurrent records stages do not all try.
  await writeState(state.remaining ?? 0);
  const catalog = new Catalog(abs);
  await catalog.refresh();
  if (planCompaction(catalog, { now }).length === 0 && (await readJournals(abs)).length === 0) {
    await writeState(0);
    return null;
  }
  try {
    const r = await compactWarehouse(abs, { now, budgetMs: opts.budgetMs ?? 20_000, lockTimeoutMs: 0 });
    await writeState(r.remaining);
    return r;
  } catch (err) {
    if (isVigilError(err, 'E_LOCKED')) return null;
    throw err;
  }
}
