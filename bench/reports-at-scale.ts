/**
 * Benchmark 4, reports-at-scale: a synthetic year of records (10 million detections from 1,000
 * devices; 1 million over January with --quick) in the warehouse's layout, compacted with
 * `compactWarehouse`, then the time of the reports the product offers: the Daily Threat Report,
 * per-user threat counts for a month and a year, and every record of one frame. Also measures the
 * compaction itself (time, files before and after), opening the warehouse before and after, the
 * daily report before compaction, `verifyWarehouse`, and appendRecords' own rate (the dataset is
 * generated with DuckDB directly because appending 10 million validated rows through it does not
 * fit the time budget).
 */
import path from 'node:path';
import {
  appendRecords, compactWarehouse, dailyReport, defaultThreads, findFrameRecords, openWarehouse, usersReport, verifyWarehouse,
  type DetectionRow, type FrameRow, type Warehouse,
} from '../warehouse/index.js';
import { bytes, fmt, now, percentile, round, target, tempDir, type Benchmark, type BenchOptions, type BenchOutcome } from './lib/common.js';
import { ensureCompacted, ensureDataset, type GenParams } from './lib/warehouse-gen.js';

async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t = now();
  const value = await fn();
  return { ms: round(now() - t, 1), value };
}

/** appendRecords' rate: one large call, and calls the size of a 16-frame chunk. */
async function appendRate(big: number): Promise<{ bigRows: number; bigRowsPerSec: number; chunkCallMs: number; chunkCalls: number; projected10MHours: number }> {
  const tmp = tempDir('append');
  try {
    const root = path.join(tmp.dir, 'warehouse');
    const base = Date.UTC(2025, 5, 15, 10);
    const det = (i: number, user: string): DetectionRow => ({
      frame_id: i.toString(16).padStart(64, '0'), user_id: user, device_id: 'cam1', captured_at: new Date(base + i * 1000).toISOString(),
      batch_id: 'b1', model_sha256: 'ab'.repeat(32), class: 'person', score: 0.5, box_x: 1, box_y: 2, box_w: 3, box_h: 4,
    });
    const rows = Array.from({ length: big }, (_, i) => det(i, 'u0001'));
    const t = now();
    await appendRecords(root, 'detections', rows, { batchId: 'big' });
    const bigMs = now() - t;
    const calls = 10;
    const t2 = now();
    for (let c = 0; c < calls; c++) {
      const frames: FrameRow[] = Array.from({ length: 16 }, (_, i) => ({
        frame_id: (1e6 + c * 100 + i).toString(16).padStart(64, '0'), tag: `u0002-cam1-x${c}-${i}-UTC`, user_id: 'u0002', device_id: 'cam1', site: 'hq',
        captured_at: new Date(base + (c * 100 + i) * 1000).toISOString(), tz: 'UTC', local_date: '2025-06-15', local_hour: 10,
        received_at: new Date(base + (c * 100 + i) * 1000 + 500).toISOString(), batch_id: `c${c}`, status: 'standardized', reason: null, camera_fault: false,
      }));
      await appendRecords(root, 'frames', frames, { batchId: `c${c}` });
      await appendRecords(root, 'detections', Array.from({ length: 40 }, (_, i) => det(1e6 + c * 100 + i, 'u0002')), { batchId: `c${c}` });
    }
    const chunkCallMs = (now() - t2) / (calls * 2);
    const bigRowsPerSec = Math.round((big * 1000) / bigMs);
    return { bigRows: big, bigRowsPerSec, chunkCallMs: round(chunkCallMs, 1), chunkCalls: calls * 2, projected10MHours: round(10_000_000 / bigRowsPerSec / 3600, 2) };
  } finally {
    tmp.cleanup();
  }
}

/** A timed measurement: every run, and the median as the figure. */
interface Measured<T> {
  ms: number | null;
  runs: number[];
  value: T | null;
}

const median = (xs: number[]): number | null => (xs.length ? percentile(xs, 50) : null);
const show = (m: Measured<unknown>): string =>
  m.runs.length === 0 ? 'not run' : m.runs.length === 1 ? `${fmt(m.runs[0], 0)} ms` : `median ${fmt(m.ms, 0)} ms (runs: ${m.runs.map((t) => fmt(t, 0)).join(', ')})`;

async function run(o: BenchOptions): Promise<BenchOutcome> {
  // --quick: 1 M detections over January only.
  const params: GenParams = o.quick
    ? { detections: 1_000_000, devices: 1000, devicesPerUser: 10, year: 2025, days: 31 }
    : { detections: 10_000_000, devices: 1000, devicesPerUser: 10, year: 2025, days: 365 };
  const period = params.days >= 365 ? `year ${params.year}` : `${params.days} days from ${params.year}-01-01`;
  const repeat = 5;
  o.log(`  appendRecords rate (scratch warehouse)…`);
  const append = await appendRate(o.quick ? 5000 : 20_000);
  o.log(`  appendRecords: ${fmt(append.bigRowsPerSec, 0)} rows/s in one ${append.bigRows}-row call (10 M rows: ~${append.projected10MHours} h); ${append.chunkCallMs} ms per call of a 16-frame chunk`);

  o.log(`  dataset: ${params.detections.toLocaleString('en-US')} detections, ${params.devices} devices, ${params.devices / params.devicesPerUser} users, ${period}…`);
  const { dataset: ds, cached } = await ensureDataset(o.cacheDir, params, o.log);
  const totalFiles = Object.values(ds.files).reduce((a, b) => a + b, 0);
  o.log(`  dataset ${cached ? 'cached' : `generated in ${round(ds.generatedMs / 1000, 1)} s`}: ${Object.entries(ds.rows).map(([k, v]) => `${k} ${fmt(v, 0)}`).join(', ')}; ${fmt(totalFiles, 0)} files, ${bytes(ds.bytes)}`);

  const month = ds.sampleDay.slice(0, 7);
  const monthEnd = new Date(Date.UTC(Number(month.slice(0, 4)), Number(month.slice(5, 7)), 0)).toISOString().slice(0, 10);
  const lastDay = new Date(Date.UTC(params.year, 0, params.days)).toISOString().slice(0, 10);

  // Before compaction (the generated layout, one file per table, day and user), with today's code:
  // opening checks sizes only; the daily report reads only that day's files.
  const rawOpen = await timed(() => openWarehouse(ds.root));
  o.log(`  before compaction: openWarehouse (manifest + existence and size of ${fmt(totalFiles, 0)} files, no hashing) ${fmt(rawOpen.ms, 0)} ms`);
  let rawDaily: { ms: number } | null = null;
  try {
    rawDaily = await timed(() => dailyReport(rawOpen.value, { date: ds.sampleDay }));
    o.log(`  before compaction: daily report ${ds.sampleDay} (only that day's ${fmt((totalFiles - 1) / params.days, 0)} files) ${fmt(rawDaily.ms, 0)} ms`);
  } finally {
    rawOpen.value.close();
  }

  o.log(`  compaction (a hard-linked copy of the dataset, compactWarehouse at the current time: every month of ${params.year} closed)…`);
  const { compacted, cached: compactedCached } = await ensureCompacted(ds, o.log);
  const cr = compacted.result;
  const filesAfter = Object.values(compacted.filesAfter).reduce((a, b) => a + b, 0);
  o.log(`  compaction ${compactedCached ? `cached (measured ${compacted.at})` : 'done'}: ${fmt(cr.filesBefore, 0)} -> ${fmt(cr.filesAfter, 0)} files, ${cr.partitions} partitions (${cr.months} months, ${cr.days} days), ${fmt(cr.rows, 0)} rows reconciled, ${round(cr.ms / 1000, 1)} s; ${bytes(cr.bytesBefore)} -> ${bytes(cr.bytesAfter)}`);
  const noop = await timed(() => compactWarehouse(compacted.root));
  o.log(`  compactWarehouse again (nothing left to do): ${fmt(noop.ms, 0)} ms`);
  const verify = await timed(() => verifyWarehouse(compacted.root, { hashes: true }));
  o.log(`  verifyWarehouse (re-hash every file): ${fmt(verify.ms, 0)} ms, ${verify.value.ok ? 'ok' : `PROBLEMS: ${verify.value.problems.slice(0, 3).map((p) => p.message).join('; ')}`}`);
  if (!verify.value.ok) throw new Error(`the compacted warehouse does not verify: ${verify.value.problems[0]?.message}`);

  const opens: number[] = [];
  for (let i = 0; i < 3; i++) {
    const r = await timed(() => openWarehouse(compacted.root));
    opens.push(r.ms);
    r.value.close();
  }
  o.log(`  after compaction: openWarehouse ${opens.map((t) => `${fmt(t, 0)} ms`).join(', ')}`);

  const wh: Warehouse = await openWarehouse(compacted.root);
  try {
    const measure = async <T>(label: string, fn: (i: number) => Promise<T>, n = repeat): Promise<Measured<T>> => {
      const times: number[] = [];
      let value: T | null = null;
      for (let i = 0; i < n; i++) {
        const r = await timed(() => fn(i));
        times.push(r.ms);
        value = r.value;
      }
      o.log(`  ${label}: ${times.map((t) => `${fmt(t, 0)} ms`).join(', ')}`);
      return { ms: median(times), runs: times, value };
    };
    // Frames to look up: the sample (it has threats and alerts) and others drawn at random.
    const sampleFrames = [ds.sampleFrameId, ...(await wh.query(`SELECT frame_id AS f FROM frames USING SAMPLE ${repeat - 1} ROWS (reservoir, 7) ORDER BY day`)).map((r) => String(r.f))];
    const daily = await measure(`daily report ${ds.sampleDay}, all users`, () => dailyReport(wh, { date: ds.sampleDay }));
    const dailyTz = await measure(`daily report ${ds.sampleDay} in America/New_York (two days' files)`, () => dailyReport(wh, { date: ds.sampleDay, tz: 'America/New_York' }), 3);
    const usersMonth = await measure(`per-user threat counts ${month}`, () => usersReport(wh, { from: `${month}-01`, to: monthEnd }));
    const usersYear = await measure(`per-user threat counts, ${period}`, () => usersReport(wh, { from: `${params.year}-01-01`, to: lastDay }));
    const frame = await measure(`every record of one frame (${sampleFrames.length} different frames)`, (i) => findFrameRecords(wh, sampleFrames[i % sampleFrames.length]!), sampleFrames.length);
    const frameAgain = await measure(`same frame again (Parquet footers cached)`, () => findFrameRecords(wh, ds.sampleFrameId), 3);

    const users = daily.value?.users.length ?? null;
    const f = (await findFrameRecords(wh, ds.sampleFrameId));
    const ms = (m: Measured<unknown>) => (m.ms === null ? 'n/a' : `${fmt(m.ms, 0)} ms`);
    const tableFiles = (files: Record<string, number>) => Object.entries(files).map(([k, v]) => `${k} ${fmt(v, 0)}`).join(', ');
    return {
      summary:
        `${fmt(ds.rows.detections ?? 0, 0)} detections (${period}), compacted ${fmt(totalFiles, 0)} -> ${fmt(filesAfter, 0)} files in ${fmt(cr.ms / 1000, 0)} s: ` +
        `daily report ${ms(daily)} (target < 1000 ms), per-user counts month ${ms(usersMonth)} / ${params.days >= 365 ? 'year' : 'period'} ${ms(usersYear)} (< 1000 ms), ` +
        `frame lookup ${ms(frame)} (< 200 ms); openWarehouse ${fmt(median(opens), 0)} ms (before compaction ${fmt(rawOpen.ms, 0)} ms); appendRecords ${fmt(append.bigRowsPerSec, 0)} rows/s`,
      figures: {
        params, period,
        dataset: { rows: ds.rows, files: ds.files, totalFiles, bytes: ds.bytes, cached, generatedMs: ds.generatedMs, sampleDay: ds.sampleDay, sampleUser: ds.sampleUser, sampleFrameId: ds.sampleFrameId },
        compaction: { ...compacted, cached: compactedCached },
        beforeCompaction: { openWarehouseMs: rawOpen.ms, dailyReportMs: rawDaily?.ms ?? null },
        compactNoopMs: noop.ms,
        verifyMs: verify.ms,
        appendRecords: append,
        openWarehouseMs: opens,
        dailyReportMs: daily.runs, dailyReportTzMs: dailyTz.runs, usersReportMonthMs: usersMonth.runs, usersReportPeriodMs: usersYear.runs,
        findFrameRecordsMs: frame.runs, findFrameRecordsAgainMs: frameAgain.runs, lookedUpFrames: sampleFrames,
        dailyReportContent: { users, threats: daily.value ? daily.value.users.reduce((n, u) => n + u.threats.total, 0) : null },
        frameRecords: { frames: f.frames.length, detections: f.detections.length, threats: f.threats.length, alerts: f.alerts.length, deliveries: f.deliveries.length },
      },
      targets: [
        target('daily report (all users, one day)', '<', 1000, daily.ms, 'ms'),
        target('per-user threat counts, one month', '<', 1000, usersMonth.ms, 'ms'),
        target(`per-user threat counts, ${params.days >= 365 ? 'one year' : `${params.days} days`}`, '<', 1000, usersYear.ms, 'ms'),
        target('every record of one frame by id', '<', 200, frame.ms, 'ms'),
      ],
      markdown: [
        '| measurement | time |',
        '| --- | --- |',
        `| compactWarehouse: ${fmt(cr.filesBefore, 0)} files -> ${fmt(cr.filesAfter, 0)} (${cr.partitions} partitions: ${cr.months} table-months, ${cr.days} table-days; ${fmt(cr.rows, 0)} rows reconciled; ${bytes(cr.bytesBefore)} -> ${bytes(cr.bytesAfter)})${compactedCached ? ` (cached copy, compacted ${compacted.at})` : ''} | ${fmt(cr.ms, 0)} ms |`,
        `| compactWarehouse again, nothing left to do | ${fmt(noop.ms, 0)} ms |`,
        `| verifyWarehouse of the compacted warehouse (re-hashes all ${fmt(filesAfter, 0)} files, \`vigil warehouse verify\`) | ${fmt(verify.ms, 0)} ms |`,
        `| openWarehouse before compaction (manifest, existence and size of ${fmt(totalFiles, 0)} files; no hashing) | ${fmt(rawOpen.ms, 0)} ms |`,
        `| daily report before compaction (reads only that day's ${fmt((totalFiles - 1) / params.days, 0)} files) | ${rawDaily ? `${fmt(rawDaily.ms, 0)} ms` : 'n/a'} |`,
        `| openWarehouse after compaction (what \`vigil report\` does first) | ${opens.map((t) => `${fmt(t, 0)} ms`).join(', ')} |`,
        `| daily report, ${ds.sampleDay}, all ${users ?? '?'} users | ${show(daily)} |`,
        `| daily report, ${ds.sampleDay} in America/New_York | ${show(dailyTz)} |`,
        `| per-user threat counts, ${month} | ${show(usersMonth)} |`,
        `| per-user threat counts, ${period} | ${show(usersYear)} |`,
        `| every record of one frame (findFrameRecords), ${sampleFrames.length} different frames | ${show(frame)} |`,
        `| the same frame again (footers cached by the open warehouse) | ${show(frameAgain)} |`,
        `| appendRecords, one ${append.bigRows}-row call | ${fmt(append.bigRowsPerSec, 0)} rows/s (10 M rows ≈ ${append.projected10MHours} h) |`,
        `| appendRecords, one call per table for a 16-frame chunk | ${append.chunkCallMs} ms per call |`,
        '',
        `Dataset: ${Object.entries(ds.rows).map(([k, v]) => `${k} ${fmt(v, 0)}`).join(', ')}; ${bytes(ds.bytes)} on disk. Files before compaction: ${tableFiles(ds.files)}; after: ${tableFiles(compacted.filesAfter)}.`,
      ],
      notes: [
        `Generated with DuckDB directly in the warehouse layout (day=/user= partitions, one file per table, day and user), with a _manifest.jsonl listing every file's rows, bytes and sha256; the real writer adds a file per batch part, so real warehouses start with more, smaller files. appendRecords validates rows in JS and writes a file per partition per call: ${fmt(append.bigRowsPerSec, 0)} rows/s.`,
        `${params.devices} devices, ${params.devices / params.devicesPerUser} users (${params.devicesPerUser} cameras each), frames uniform over ${period}, 2 % invalid, 0-5 objects per frame; threats where the usual rules match; one alert per (threat frame, rule); 1-2 deliveries per alert.${o.quick ? ' --quick covers January only.' : ''}`,
        `Compaction runs on a hard-linked copy of the cached dataset (so the generated files stay for the "before" figures) and is cached too: a run that finds the copy reports the compaction figures measured when it was made. Every day of ${params.year} is closed now, so each table became one file per month: frames and alerts sorted by frame id, deliveries by alert id, the other tables by day, user, device and time; row groups of 16,384 rows. Each partition's rows were counted and fingerprinted before and after (manifest, rows read, rows written, footer), inputs re-hashed first.`,
        `Reports run on one open warehouse (DuckDB in memory, threads = ${defaultThreads()}, memory_limit 1GB, Parquet footer cache on), each ${repeat} times (3 for the variants); the figure is the median. Each query reads only the files whose days overlap the request (the manifest says which), then DuckDB skips row groups by min/max statistics. Frame lookups: the sample frame (it has threats, alerts and deliveries) plus frames drawn at random. Cached dataset: ${path.dirname(ds.root)}.`,
      ],
    };
  } finally {
    wh.close();
  }
}

/** Benchmark 4. */
export const reportsAtScale: Benchmark = { name: 'reports-at-scale', title: 'Warehouse reports over a year of records', run };
