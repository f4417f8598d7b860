/**
 * A synthetic year of warehouse records, generated with DuckDB directly (appendRecords validates
 * every row in JavaScript and writes one file per partition per call, far too slow for 10 million
 * rows in the benchmark's time budget; the benchmark measures its rate separately).
 *
 * The files follow the warehouse's own layout (warehouse/files.ts) and a `_manifest.jsonl` lists
 * every file with its row count, size and sha256, so `openWarehouse` verifies them as it would the
 * real ones:
 * ```
 * <root>/<table>/day=YYYY-MM-DD/user=<user_id>/gen_0.parquet     (frames, detections, threats, non_matches, alerts)
 * <root>/<table>/day=YYYY-MM-DD/gen_0.parquet                    (deliveries, rule_versions)
 * ```
 * Each (table, day, user) partition holds one file (the real writer adds one file per batch part
 * and partition, so real warehouses hold more, smaller files). `ensureCompacted` then makes a
 * compacted copy with `compactWarehouse` (hard links, so the generated files stay as they are).
 *
 * Data: `devices` cameras, 10 per user, frames spread uniformly over `days` days from January 1st, 2 % invalid
 * (0.4 % camera faults), 0-5 objects per valid frame (mean 2.5) from a street-camera class mix,
 * threats where rules would match (animals >= 0.8, people >= 0.95, knives >= 0.5), one alert per
 * (threat frame, rule), one or two delivery attempts per alert, safe frames aggregated per user,
 * device, UTC hour and batch. Cached under the bench cache folder, keyed by the parameters.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { MANIFEST, TABLES, compactWarehouse, type CompactResult, type ManifestEntry, type TableName } from '../../warehouse/index.js';
import { mapLimit } from './http.js';
import { now, round } from './common.js';

/** Size of the synthetic year. */
export interface GenParams {
  /** Detection rows (objects) to generate, about. */
  detections: number;
  devices: number;
  /** Devices per user. */
  devicesPerUser: number;
  year: number;
  /** Days from January 1st (365 = the whole year). */
  days: number;
}

/** What the generator made (also stored as `<dir>/dataset.json`). */
export interface Dataset {
  params: GenParams;
  root: string;
  rows: Record<string, number>;
  files: Record<string, number>;
  bytes: number;
  generatedMs: number;
  /** A frame with threats and alerts, for the lookup. */
  sampleFrameId: string;
  /** A busy day and a user with records on it. */
  sampleDay: string;
  sampleUser: string;
  version: number;
}

const VERSION = 3;
const ZONES = ['Europe/Paris', 'America/New_York', 'Asia/Tokyo', 'UTC', 'Australia/Sydney'];
const RULES_COMMIT = 'c0ffee'.padEnd(40, '0');
const MODEL_SHA = '9697a185dd8eb7448aea4c979e10db2b4977f70a46687890ef796936c44a848b';

/** Cache folder of a dataset. */
export function datasetDir(cacheDir: string, p: GenParams): string {
  return path.join(cacheDir, `warehouse-v${VERSION}-${p.year}-${p.days}days-${p.detections}det-${p.devices}dev-${p.devicesPerUser}per`);
}

/** The dataset for these parameters, generated unless cached. */
export async function ensureDataset(cacheDir: string, p: GenParams, log: (s: string) => void): Promise<{ dataset: Dataset; cached: boolean }> {
  const dir = datasetDir(cacheDir, p);
  const marker = path.join(dir, 'dataset.json');
  if (existsSync(marker)) {
    const ds = JSON.parse(readFileSync(marker, 'utf8')) as Dataset;
    if (ds.version === VERSION) return { dataset: { ...ds, root: path.join(dir, 'warehouse') }, cached: true };
  }
  rmSync(dir, { recursive: true, force: true });
  const staging = `${dir}.building-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  try {
    const ds = await generate(staging, p, log);
    writeFileSync(path.join(staging, 'dataset.json'), JSON.stringify({ ...ds, root: 'warehouse' }, null, 2));
    renameSync(staging, dir);
    return { dataset: { ...ds, root: path.join(dir, 'warehouse') }, cached: false };
  } catch (err) {
    rmSync(staging, { recursive: true, force: true });
    throw err;
  }
}

const q = (s: string) => `'${s.replace(/'/g, "''")}'`;

async function generate(dir: string, p: GenParams, log: (s: string) => void): Promise<Dataset> {
  const t0 = now();
  const root = path.join(dir, 'warehouse');
  mkdirSync(root, { recursive: true });
  const dbFile = path.join(dir, 'staging.duckdb');
  const instance = await DuckDBInstance.create(dbFile, { threads: '2', memory_limit: '4GB', preserve_insertion_order: 'false', temp_directory: path.join(dir, 'tmp') });
  const con = await instance.connect();
  try {
    await con.run(`SET TimeZone = 'UTC'`);
    const frames = Math.ceil(p.detections / (2.5 * 0.98));
    const users = Math.ceil(p.devices / p.devicesPerUser);
    const days = p.days;
    const yearMicros = days * 86_400_000_000;
    const zoneCase = `CASE (u % ${ZONES.length}) ${ZONES.map((z, i) => `WHEN ${i} THEN ${q(z)}`).join(' ')} END`;
    log(`    staging ${frames.toLocaleString('en-US')} frames, ${users} users, ${p.devices} devices…`);
    await con.run(`CREATE TABLE f AS
      WITH base AS (
        SELECT i,
          (hash(i * 11 + 1) % ${p.devices})::INTEGER AS dev,
          TIMESTAMPTZ '${p.year}-01-01 00:00:00+00' + to_microseconds((hash(i * 11 + 2) % ${yearMicros})::BIGINT // 1000 * 1000) AS captured_at,
          (hash(i * 11 + 3) % 1000)::INTEGER AS r1,
          (hash(i * 11 + 4) % 6)::INTEGER AS k
        FROM range(${frames}) t(i)),
      withUser AS (SELECT *, dev // ${p.devicesPerUser} AS u FROM base)
      SELECT i,
        sha256('vigil-bench-frame-' || i::VARCHAR) AS frame_id,
        'u' || lpad(u::VARCHAR, 4, '0') AS user_id,
        'cam' || (dev % ${p.devicesPerUser})::VARCHAR AS device_id,
        's' || lpad(u::VARCHAR, 4, '0') AS site,
        captured_at,
        ${zoneCase} AS tz,
        strftime(captured_at, '%Y-%m-%d') AS day,
        'b' || dev::VARCHAR || '-' || (epoch(captured_at)::BIGINT // 600)::VARCHAR AS batch_id,
        CASE WHEN r1 < 20 THEN 'invalid' ELSE 'standardized' END AS status,
        CASE WHEN r1 < 20 THEN [ 'truncated', 'corrupt', 'low_contrast', 'too_small', 'blank', 'black' ][r1 % 6 + 1] END AS reason,
        r1 < 20 AND r1 % 6 >= 4 AS camera_fault,
        CASE WHEN r1 < 20 THEN 0 ELSE k END AS nobj
      FROM withUser ORDER BY captured_at`);
    await con.run(`CREATE TABLE frames AS SELECT frame_id,
        user_id || '-' || device_id || '-' || strftime(captured_at, '%Y%m%dT%H%M%S') || lpad((epoch_ms(captured_at) % 1000)::VARCHAR, 3, '0') || 'Z-' || replace(tz, '/', '.') AS tag,
        user_id, device_id, site, captured_at, tz,
        CAST(timezone(tz, captured_at) AS DATE) AS local_date, hour(timezone(tz, captured_at))::TINYINT AS local_hour,
        captured_at + INTERVAL 1 SECOND AS received_at, batch_id, status, reason, camera_fault, day, user_id AS "user"
      FROM f`);
    log('    staging detections, threats, non_matches, alerts, deliveries…');
    await con.run(`CREATE TABLE detections AS
      WITH d AS (SELECT f.*, j, hash(f.i * 7 + j) AS h FROM f, range(5) r(j) WHERE j < f.nobj)
      SELECT frame_id, user_id, device_id, captured_at, batch_id, ${q(MODEL_SHA)} AS model_sha256,
        CASE WHEN h % 100 < 40 THEN 'person' WHEN h % 100 < 56 THEN 'car' WHEN h % 100 < 61 THEN 'cat' WHEN h % 100 < 66 THEN 'dog'
             WHEN h % 100 < 71 THEN 'truck' WHEN h % 100 < 76 THEN 'bicycle' WHEN h % 100 < 81 THEN 'backpack' WHEN h % 100 < 84 THEN 'handbag'
             WHEN h % 100 < 89 THEN 'chair' WHEN h % 100 < 93 THEN 'potted plant' WHEN h % 100 < 94 THEN 'knife' WHEN h % 100 < 97 THEN 'motorcycle'
             ELSE 'suitcase' END AS class,
        round(0.25 + ((h // 100) % 7400)::DOUBLE / 10000, 4)::DOUBLE AS score,
        round(((h // 1000000) % 1000)::DOUBLE, 1) AS box_x, round(((h // 1000000000) % 600)::DOUBLE, 1) AS box_y,
        round(20 + ((h // 10000) % 260)::DOUBLE, 1) AS box_w, round(20 + ((h // 100000) % 100)::DOUBLE, 1) AS box_h,
        day, user_id AS "user"
      FROM d`);
    await con.run(`CREATE TABLE threats AS
      SELECT d.frame_id, fr.tag, d.user_id, d.device_id, d.captured_at, fr.local_hour, d.batch_id, ${q(RULES_COMMIT)} AS rules_commit,
        CASE WHEN d.class IN ('cat', 'dog') THEN 100 WHEN d.class = 'person' THEN 200 ELSE 400 END AS rule_id,
        CASE WHEN d.class IN ('cat', 'dog') THEN 'animals' WHEN d.class = 'person' THEN 'people' ELSE 'blades' END AS rule_name,
        d.class, d.score, d.day, d."user"
      FROM detections d JOIN frames fr USING (frame_id)
      WHERE (d.class IN ('cat', 'dog') AND d.score >= 0.8) OR (d.class = 'person' AND d.score >= 0.95) OR (d.class = 'knife' AND d.score >= 0.5)`);
    await con.run(`CREATE TABLE non_matches AS
      SELECT f.user_id, f.device_id, date_trunc('hour', f.captured_at) AS hour, f.batch_id, count(*)::INTEGER AS frames, sum(f.nobj)::INTEGER AS objects,
        strftime(date_trunc('hour', f.captured_at), '%Y-%m-%d') AS day, f.user_id AS "user"
      FROM f WHERE f.status = 'standardized' AND f.frame_id NOT IN (SELECT frame_id FROM threats)
      GROUP BY ALL`);
    await con.run(`CREATE TABLE alerts AS
      SELECT md5(frame_id || ':' || rule_id::VARCHAR) AS alert_id, frame_id, user_id, device_id, rule_id, list_sort(list_distinct(list(class))) AS classes,
        max(score) AS max_score, min(captured_at) + INTERVAL 3 SECOND AS created_at, min(batch_id) AS batch_id,
        CASE WHEN hash(frame_id) % 20 = 0 THEN 'failed' WHEN hash(frame_id) % 20 = 1 THEN 'outbox' WHEN hash(frame_id) % 10 = 2 THEN 'suppressed' ELSE 'delivered' END AS status,
        2::SMALLINT AS channels,
        strftime(min(captured_at) + INTERVAL 3 SECOND, '%Y-%m-%d') AS day, user_id AS "user"
      FROM threats GROUP BY frame_id, user_id, device_id, rule_id`);
    await con.run(`CREATE TABLE deliveries AS
      SELECT a.alert_id, CASE WHEN n = 0 THEN 'email' ELSE 'webhook' END AS channel, 1::SMALLINT AS attempt,
        a.created_at + INTERVAL 200 MILLISECOND AS "at",
        CASE WHEN n = 0 THEN 'email to s***@example.com' ELSE 'POST hooks.example.com' END AS request_summary,
        CASE WHEN a.status = 'failed' THEN 500 ELSE 202 END::SMALLINT AS status_code,
        CASE WHEN a.status = 'failed' THEN 'internal error' ELSE 'accepted' END AS response_summary,
        round(30 + (hash(a.alert_id) % 400)::DOUBLE, 1) AS latency_ms,
        CASE WHEN a.status = 'failed' THEN 'failed' ELSE 'delivered' END AS outcome,
        strftime(a.created_at + INTERVAL 200 MILLISECOND, '%Y-%m-%d') AS day
      FROM alerts a, range(2) r(n) WHERE a.status <> 'suppressed'`);
    await con.run(`CREATE TABLE rule_versions AS
      SELECT ${q(RULES_COMMIT)} AS rules_commit, ${q('ab'.repeat(32))} AS rules_hash, TIMESTAMPTZ '${p.year}-01-01 00:00:01+00' AS "at", '100,200,400' AS rule_ids,
        '${p.year}-01-01' AS day`);

    const rows: Record<string, number> = {};
    for (const t of Object.keys(TABLES)) {
      const r = await con.runAndReadAll(`SELECT count(*)::BIGINT FROM ${t}`);
      rows[t] = Number(r.getRows()[0]?.[0] ?? 0);
    }
    log(`    rows: ${Object.entries(rows).map(([k, v]) => `${k} ${v.toLocaleString('en-US')}`).join(', ')} (${round((now() - t0) / 1000, 1)} s)`);

    // One COPY per table and day, partitioned by user: one file per (table, day, user).
    const dayList: string[] = [];
    for (let d = 0; d < days; d++) dayList.push(new Date(Date.UTC(p.year, 0, 1) + d * 86_400_000).toISOString().slice(0, 10));
    const cons = [con, await instance.connect()];
    await cons[1]!.run(`SET TimeZone = 'UTC'`);
    const tW = now();
    let doneDays = 0;
    await Promise.all(cons.map(async (c, ci) => {
      for (let di = ci; di < dayList.length; di += cons.length) {
        await copyDay(c, root, dayList[di]!);
        if (++doneDays % 60 === 0) log(`    wrote ${doneDays}/${dayList.length} days (${round((now() - tW) / 1000, 0)} s)`);
      }
    }));
    cons[1]!.closeSync();

    log('    hashing files for the manifest…');
    const counts = new Map<string, number>();
    for (const [table, def] of Object.entries(TABLES)) {
      const r = await con.runAndReadAll(def.userColumn === null
        ? `SELECT day, NULL, count(*)::BIGINT FROM ${table} GROUP BY ALL`
        : `SELECT day, "user", count(*)::BIGINT FROM ${table} GROUP BY ALL`);
      for (const [day, user, n] of r.getRows() as [string, string | null, bigint][]) {
        counts.set(user === null ? `${table}/day=${day}/gen_0.parquet` : `${table}/day=${day}/user=${user}/gen_0.parquet`, Number(n));
      }
    }
    const entries = await manifestEntries(root, counts);
    await fs.writeFile(path.join(root, MANIFEST), entries.map((e) => JSON.stringify(e)).join('\n') + '\n');
    const files: Record<string, number> = {};
    let total = 0;
    for (const e of entries) {
      files[e.table] = (files[e.table] ?? 0) + 1;
      total += e.bytes;
    }
    const mid = dayList[Math.floor(dayList.length / 2)]!;
    const sample = await con.runAndReadAll(`SELECT a.frame_id, a.day, a.user_id FROM alerts a WHERE a.day = '${mid}' ORDER BY a.alert_id LIMIT 1`);
    const [frameId, day, user] = (sample.getRows()[0] ?? []) as [string, string, string];
    return {
      params: p, root, rows, files, bytes: total, generatedMs: round(now() - t0, 0),
      sampleFrameId: frameId, sampleDay: day ?? mid, sampleUser: user ?? 'u0000', version: VERSION,
    };
  } finally {
    con.closeSync();
    instance.closeSync();
    rmSync(dbFile, { force: true });
    rmSync(`${dbFile}.wal`, { force: true });
    rmSync(path.join(dir, 'tmp'), { recursive: true, force: true });
  }
}

async function copyDay(con: DuckDBConnection, root: string, day: string): Promise<void> {
  for (const [table, def] of Object.entries(TABLES) as [TableName, (typeof TABLES)[TableName]][]) {
    // Cast to the warehouse's declared column types, so the files have the real writer's schema.
    const cols = Object.entries(def.columns).map(([c, t]) => `CAST("${c}" AS ${t}) AS "${c}"`).join(', ');
    const dir = path.join(root, table, `day=${day}`);
    if (def.userColumn === null) {
      const r = await con.runAndReadAll(`SELECT count(*) FROM ${table} WHERE day = ${q(day)}`);
      if (Number(r.getRows()[0]?.[0] ?? 0) === 0) continue;
      await fs.mkdir(dir, { recursive: true });
      await con.run(`COPY (SELECT ${cols} FROM ${table} WHERE day = ${q(day)}) TO ${q(path.join(dir, 'gen_0.parquet'))} (FORMAT parquet, COMPRESSION zstd)`);
    } else {
      await fs.mkdir(dir, { recursive: true });
      await con.run(`COPY (SELECT ${cols}, "user" FROM ${table} WHERE day = ${q(day)}) TO ${q(dir)} (FORMAT parquet, COMPRESSION zstd, PARTITION_BY ("user"), FILENAME_PATTERN 'gen_{i}', OVERWRITE_OR_IGNORE)`);
    }
  }
}

/**
 * Manifest lines for every file: size and sha256 from the file, rows from the staging counts (one
 * file per partition), or from the Parquet footer for a file the counts do not name.
 */
async function manifestEntries(root: string, counts: Map<string, number>): Promise<ManifestEntry[]> {
  const files: Array<{ table: TableName; rel: string }> = [];
  for (const table of Object.keys(TABLES) as TableName[]) {
    const walk = async (rel: string): Promise<void> => {
      let entries: import('node:fs').Dirent[];
      try {
        entries = await fs.readdir(path.join(root, rel), { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of entries) {
        if (e.isDirectory()) await walk(`${rel}/${e.name}`);
        else if (e.name.endsWith('.parquet')) files.push({ table, rel: `${rel}/${e.name}` });
      }
    };
    await walk(table);
  }
  const hashed = await mapLimit(files, 8, async ({ table, rel }) => {
    const buf = await fs.readFile(path.join(root, rel));
    return { table, rel, bytes: buf.length, sha256: createHash('sha256').update(buf).digest('hex') };
  });
  // A partition written as several files: its staging count covers them all, so read their footers.
  const perDir = new Map<string, number>();
  for (const h of hashed) perDir.set(path.dirname(h.rel), (perDir.get(path.dirname(h.rel)) ?? 0) + 1);
  const unknown = hashed.filter((h) => !counts.has(h.rel) || (perDir.get(path.dirname(h.rel)) ?? 0) > 1);
  if (unknown.length) {
    const instance = await DuckDBInstance.create(':memory:');
    const con = await instance.connect();
    try {
      for (const h of unknown) {
        const r = await con.runAndReadAll(`SELECT sum(num_rows)::BIGINT FROM parquet_file_metadata(${q(path.join(root, h.rel))})`);
        counts.set(h.rel, Number(r.getRows()[0]?.[0] ?? 0));
      }
    } finally {
      con.closeSync();
      instance.closeSync();
    }
  }
  const writtenAt = new Date().toISOString();
  return hashed.map((h) => ({
    table: h.table, file: h.rel, rows: counts.get(h.rel) ?? 0, bytes: h.bytes, sha256: h.sha256, batch_id: path.basename(h.rel, '.parquet'), written_at: writtenAt,
  }));
}

/** A compacted copy of a dataset and how the compaction went (stored as `<dir>/compacted/compaction.json`). */
export interface Compacted {
  root: string;
  /** When the copy was compacted. */
  at: string;
  /** Hard-linking the generated files into the copy. */
  linkMs: number;
  /** compactWarehouse's result on the copy (partitions summarised). */
  result: Omit<CompactResult, 'partitions'> & { partitions: number; months: number; days: number; bytesBefore: number; bytesAfter: number };
  /** Live files per table before and after. */
  filesBefore: Record<string, number>;
  filesAfter: Record<string, number>;
}

/**
 * The dataset compacted: a copy of its warehouse made of hard links (instant, and compaction only
 * ever removes links and writes new files, so the generated files are untouched), compacted with
 * `compactWarehouse` at the current time (every day of a past year closed: one file per table and
 * month). Cached next to the dataset; `cached` says whether this call compacted.
 */
export async function ensureCompacted(ds: Dataset, log: (s: string) => void): Promise<{ compacted: Compacted; cached: boolean }> {
  const dir = path.join(path.dirname(ds.root), 'compacted');
  const marker = path.join(dir, 'compaction.json');
  if (existsSync(marker)) return { compacted: { ...(JSON.parse(readFileSync(marker, 'utf8')) as Compacted), root: path.join(dir, 'warehouse') }, cached: true };
  const staging = `${dir}.building-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  try {
    const root = path.join(staging, 'warehouse');
    const t0 = now();
    execFileSync('cp', ['-al', ds.root, root]);
    const linkMs = round(now() - t0, 0);
    log(`    hard-linked ${Object.values(ds.files).reduce((a, b) => a + b, 0).toLocaleString('en-US')} files in ${round(linkMs / 1000, 1)} s; compacting…`);
    let lines = 0;
    const r = await compactWarehouse(root, {
      log: (l) => {
        if (!l.startsWith('  ') || ++lines % 12 === 0) log(`    ${l.trim()}`);
      },
    });
    const count = (rel: string[]) => {
      const out: Record<string, number> = {};
      for (const f of rel) out[f.split('/')[0]!] = (out[f.split('/')[0]!] ?? 0) + 1;
      return out;
    };
    const after = readFileSync(path.join(root, MANIFEST), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as ManifestEntry).file);
    const compacted: Compacted = {
      root: '',
      at: new Date().toISOString(),
      linkMs,
      result: {
        ...r, partitions: r.partitions.length,
        months: r.partitions.filter((p) => p.period === 'month').length, days: r.partitions.filter((p) => p.period === 'day').length,
        bytesBefore: r.partitions.reduce((n, p) => n + p.bytesBefore, 0), bytesAfter: r.partitions.reduce((n, p) => n + p.bytesAfter, 0),
      },
      filesBefore: ds.files,
      filesAfter: count(after),
    };
    writeFileSync(path.join(staging, 'compaction.json'), JSON.stringify(compacted, null, 2));
    renameSync(staging, dir);
    return { compacted: { ...compacted, root: path.join(dir, 'warehouse') }, cached: false };
  } catch (err) {
    rmSync(staging, { recursive: true, force: true });
    throw err;
  }
}
