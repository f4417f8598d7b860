/**
 * Warehouse compaction on real DuckDB and real files: closed days and months merged into sorted
 * files whose rows reconcile, reports identical before and after, batch re-runs and late rows
 * never counted twice, a crash simulated at every step of a compaction (readers stay consistent
 * and the next compaction finishes or undoes it), tampered files refused or named, appends racing
 * a compaction, the automatic compaction's throttle, and `vigil warehouse` as a subprocess.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, cpSync, existsSync, openSync, readdirSync, readFileSync, statSync, writeFileSync, writeSync } from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { isVigilError } from '../lib/errors.js';
import {
  AUTO_COMPACT_STATE,
  JOURNAL_DIR,
  MANIFEST,
  SimulatedCrash,
  TABLE_NAMES,
  appendRecords,
  autoCompact,
  compactWarehouse,
  dailyReport,
  findFrameRecords,
  openWarehouse,
  readCompactedLog,
  readManifest,
  usersReport,
  verifyWarehouse,
  type AlertRow,
  type CompactStep,
  type DeliveryRow,
  type DetectionRow,
  type FrameRow,
  type NonMatchRow,
  type RuleVersionRow,
  type TableName,
  type TableRow,
  type ThreatRow,
  type Warehouse,
} from '../warehouse/index.js';
import { tmpDir } from './helpers/tmp.js';

// ---------------------------------------------------------------------------------------------
// Fixture: 4 UTC days across a month boundary, 3 users, 2 devices each, 3 batches per day.

const DAYS = ['2026-01-30', '2026-01-31', '2026-02-01', '2026-02-02'];
const USERS = ['alice', 'bob', 'carol'];
const ZONES: Record<string, string> = { alice: 'Europe/Paris', bob: 'America/New_York', carol: 'UTC' };
const RULES_COMMIT = 'c0ffee'.padEnd(40, '0');
const MODEL = createHash('sha256').update('model').digest('hex');
const sha = (s: string): string => createHash('sha256').update(s).digest('hex');
const CLASSES = ['person', 'car', 'cat', 'knife', 'dog'];

type Batch = { id: string; rows: { [T in TableName]: TableRow<T>[] } };

function local(instant: string, tz: string): { date: string; hour: number } {
  const f = new Intl.DateTimeFormat('en-CA', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', hourCycle: 'h23' });
  const p = Object.fromEntries(f.formatToParts(new Date(instant)).map((x) => [x.type, x.value]));
  return { date: `${p.year}-${p.month}-${p.day}`, hour: Number(p.hour) };
}

/** Deterministic pseudo-random in [0, 1). */
function rnd(seed: string): number {
  return parseInt(sha(seed).slice(0, 8), 16) / 2 ** 32;
}

/** One batch (`b` 0-2): frames of every user on `day`, batch b's in hours 8b+2 to 8b+7, with everything they cause. */
function makeBatch(day: string, b: number, tag = ''): Batch {
  const id = `b-${day}-${b}${tag}`;
  const rows: Batch['rows'] = { frames: [], detections: [], threats: [], non_matches: [], alerts: [], deliveries: [], rule_versions: [] };
  const safe = new Map<string, NonMatchRow>();
  for (const user of USERS) {
    for (let i = 0; i < 6; i++) {
      const device = i % 2 === 0 ? 'cam1' : 'cam2';
      // The last frame of the day's last batch fires a rule late enough for its alert to fall on the next day.
      const lateAlert = b === 2 && i === 5;
      const at = lateAlert
        ? `${day}T23:4${USERS.indexOf(user)}:00.000Z`
        : new Date(Date.parse(`${day}T00:00:00Z`) + (b * 8 + i + 2) * 3_600_000 + Math.floor(rnd(`${id}${user}${i}t`) * 3_500_000)).toISOString();
      const frameId = sha(`${id}/${user}/${i}`);
      const tz = ZONES[user]!;
      const lt = local(at, tz);
      const invalid = !lateAlert && rnd(`${id}${user}${i}inv`) < 0.15;
      const frameTag = `${user}-${device}-${at.replace(/[-:.]/g, '')}-${tz.replace('/', '.')}`;
      rows.frames.push({
        frame_id: frameId, tag: frameTag, user_id: user, device_id: device, site: 'home', captured_at: at, tz, local_date: lt.date, local_hour: lt.hour,
        received_at: new Date(Date.parse(at) + 900).toISOString(), batch_id: id, status: invalid ? 'invalid' : 'standardized',
        reason: invalid ? (i % 2 ? 'blank' : 'corrupt') : null, camera_fault: invalid && i % 2 === 1,
      });
      if (invalid) continue;
      const n = Math.max(lateAlert ? 1 : 0, Math.floor(rnd(`${id}${user}${i}n`) * 4));
      const fired: ThreatRow[] = [];
      for (let k = 0; k < n; k++) {
        const cls = lateAlert && k === 0 ? 'knife' : CLASSES[Math.floor(rnd(`${id}${user}${i}c${k}`) * CLASSES.length)]!;
        const score = Math.round(rnd(`${id}${user}${i}s${k}`) * 1000) / 1000;
        rows.detections.push({
          frame_id: frameId, user_id: user, device_id: device, captured_at: at, batch_id: id, model_sha256: MODEL, class: cls, score,
          box_x: k * 10, box_y: 5, box_w: 50, box_h: 80,
        });
        if ((cls === 'person' && score >= 0.6) || cls === 'knife') {
          fired.push({
            frame_id: frameId, tag: frameTag, user_id: user, device_id: device, captured_at: at, local_hour: lt.hour, batch_id: id,
            rules_commit: RULES_COMMIT, rule_id: cls === 'knife' ? 1 : 2, rule_name: cls === 'knife' ? 'weapons' : 'people', class: cls, score,
          });
        }
      }
      rows.threats.push(...fired);
      if (fired.length === 0) {
        const hour = new Date(Math.floor(Date.parse(at) / 3_600_000) * 3_600_000).toISOString();
        const key = `${user}|${device}|${hour}`;
        const row = safe.get(key) ?? { user_id: user, device_id: device, hour, batch_id: id, frames: 0, objects: 0 };
        row.frames++;
        row.objects += n;
        safe.set(key, row);
        continue;
      }
      for (const ruleId of [...new Set(fired.map((f) => f.rule_id))]) {
        const alertId = sha(`alert ${frameId} ${ruleId}`).slice(0, 32);
        // Created 30 minutes after capture: a frame late in the day has its alert the next day.
        const created = new Date(Date.parse(at) + 1_800_000).toISOString();
        const status: AlertRow['status'] = rnd(alertId) < 0.2 ? 'failed' : 'delivered';
        rows.alerts.push({
          alert_id: alertId, frame_id: frameId, user_id: user, device_id: device, rule_id: ruleId, classes: [...new Set(fired.filter((f) => f.rule_id === ruleId).map((f) => f.class))],
          max_score: Math.max(...fired.filter((f) => f.rule_id === ruleId).map((f) => f.score)), created_at: created, batch_id: id, status, channels: 1,
        });
        const d = (attempt: number, sec: number, code: number | null, outcome: DeliveryRow['outcome']): DeliveryRow => ({
          alert_id: alertId, channel: 'webhook', attempt, at: new Date(Date.parse(created) + sec * 1000).toISOString(), request_summary: `POST hook ${alertId.slice(0, 6)}`,
          status_code: code, response_summary: code === null ? 'timeout' : `HTTP ${code}`, latency_ms: 100 + attempt, outcome,
        });
        rows.deliveries.push(...(status === 'failed' ? [d(1, 1, 500, 'retry'), d(2, 3, null, 'failed')] : [d(1, 1, 200, 'delivered')]));
      }
    }
  }
  rows.non_matches.push(...safe.values());
  if (b === 0) rows.rule_versions.push({ rules_commit: RULES_COMMIT, rules_hash: sha('rules'), at: `${day}T00:00:01.000Z`, rule_ids: '1,2' } satisfies RuleVersionRow);
  return { id, rows };
}

const BATCHES: Batch[] = DAYS.flatMap((day) => [0, 1, 2].map((b) => makeBatch(day, b)));

async function appendBatch(root: string, batch: Batch): Promise<{ files: number; skipped: number }> {
  let files = 0;
  let skipped = 0;
  for (const table of TABLE_NAMES) {
    const rows = batch.rows[table] as TableRow<typeof table>[];
    if (rows.length === 0) continue;
    const r = await appendRecords(root, table, rows, { batchId: batch.id });
    files += r.files.length;
    skipped += r.skipped.length;
  }
  return { files, skipped };
}

/** A fresh warehouse holding every batch; cached and copied, so each test starts from the same files. */
let template: string | undefined;
async function freshWarehouse(): Promise<string> {
  if (template === undefined) {
    const t = path.join(tmpDir('vigil-whc-tpl-'), 'warehouse');
    for (const b of BATCHES) await appendBatch(t, b);
    template = t;
  }
  const root = path.join(tmpDir('vigil-whc-'), 'warehouse');
  cpSync(template, root, { recursive: true });
  return root;
}

const rowCount = (batches: Batch[], table: TableName): number => batches.reduce((n, b) => n + b.rows[table].length, 0);

/** Every row of every table (with `day` and `user`), in a total order: what a reader sees. */
async function dump(wh: Warehouse): Promise<Record<string, unknown[]>> {
  const out: Record<string, unknown[]> = {};
  for (const t of TABLE_NAMES) out[t] = await wh.query(`SELECT * FROM ${t} ORDER BY ALL`);
  return out;
}

/** Every report the product offers, over the fixture. */
async function reports(wh: Warehouse): Promise<unknown> {
  const out: Record<string, unknown> = {};
  for (const day of [...DAYS, '2026-02-03']) {
    out[`daily ${day}`] = await dailyReport(wh, { date: day });
    out[`daily ${day} NY`] = await dailyReport(wh, { date: day, tz: 'America/New_York' });
    out[`daily ${day} alice`] = await dailyReport(wh, { date: day, user: 'alice', tz: 'Europe/Paris' });
  }
  out.users = await usersReport(wh, { from: DAYS[0]!, to: DAYS[3]! });
  out.usersJan = await usersReport(wh, { from: '2026-01-31', to: '2026-02-01' });
  const frames = await wh.query(`SELECT frame_id FROM frames ORDER BY frame_id LIMIT 12`);
  for (const f of frames) out[`frame ${String(f.frame_id)}`] = await findFrameRecords(wh, String(f.frame_id));
  return out;
}

async function snapshot(root: string): Promise<{ dump: Record<string, unknown[]>; reports: unknown }> {
  const wh = await openWarehouse(root);
  try {
    return { dump: await dump(wh), reports: await reports(wh) };
  } finally {
    wh.close();
  }
}

/** Relative paths of every file under the root, sorted. */
function listAll(root: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(path.relative(root, p).split(path.sep).join('/'));
    }
  };
  if (existsSync(root)) walk(root);
  return out.sort();
}

const parquetFiles = (root: string): string[] => listAll(root).filter((f) => f.endsWith('.parquet'));
const journals = (root: string): string[] => (existsSync(path.join(root, JOURNAL_DIR)) ? readdirSync(path.join(root, JOURNAL_DIR)) : []);

async function rejects(p: Promise<unknown>, code: string, includes: string[]): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(isVigilError(err), `expected a VigilError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    for (const s of includes) assert.ok(err.message.includes(s), `message ${JSON.stringify(err.message)} should mention ${s}`);
    return true;
  });
}

const sha256File = (p: string): string => createHash('sha256').update(readFileSync(p)).digest('hex');

// Closed: January (month), Feb 1 and Feb 2 (days). Feb 3 is still open.
const NOW_FEB = new Date('2026-02-03T12:00:00Z');
// Closed: January and February (months).
const NOW_MAR = new Date('2026-03-02T00:00:00Z');

// ---------------------------------------------------------------------------------------------

test('compaction merges closed months and days into sorted files; counts reconcile; every report is identical', async () => {
  const root = await freshWarehouse();
  const before = await snapshot(root);
  assert.ok((before.dump.threats ?? []).length > 20 && (before.dump.deliveries ?? []).length > 10, 'the fixture is not trivial');
  const filesBefore = parquetFiles(root);
  const manifestBefore = await readManifest(root);

  const r = await compactWarehouse(root, { now: NOW_FEB });
  assert.equal(r.filesBefore, manifestBefore.size);
  assert.equal(r.remaining, 0);
  assert.equal(r.dropped, 0);
  // Every table: January as one month file, Feb 1 and Feb 2 as one file each (rule_versions and
  // alerts/deliveries only where they have rows).
  const byTable = (t: TableName) => r.partitions.filter((p) => p.table === t).map((p) => `${p.period} ${p.first}..${p.last}`);
  assert.deepEqual(byTable('detections'), ['month 2026-01-30..2026-01-31', 'day 2026-02-01..2026-02-01', 'day 2026-02-02..2026-02-02']);
  assert.deepEqual(byTable('frames'), byTable('detections'));
  // Alerts created 30 minutes after a late frame of Feb 2 fall on Feb 3: still open, left alone.
  const alertFebThree = BATCHES.flatMap((b) => b.rows.alerts).filter((a) => a.created_at.startsWith('2026-02-03')).length;
  assert.ok(alertFebThree > 0, 'fixture: some alerts are created on the open day');
  assert.equal(r.rows, manifestBefore.size > 0 ? [...manifestBefore.values()].filter((e) => !e.file.includes('day=2026-02-03')).reduce((n, e) => n + e.rows, 0) : 0);
  assert.equal(r.filesAfter, r.partitions.length + [...manifestBefore.keys()].filter((f) => f.includes('day=2026-02-03')).length);

  // The manifest lists the compacted files with their sha256 and what they replaced; the
  // originals are gone from disk; each day's log names them.
  const manifest = await readManifest(root);
  assert.equal(manifest.size, r.filesAfter);
  const replaced = new Set<string>();
  for (const e of manifest.values()) {
    if (!e.file.includes('/compacted/')) {
      assert.ok(e.file.includes('day=2026-02-03'), `only the open day keeps batch files: ${e.file}`);
      continue;
    }
    assert.equal(e.sha256, sha256File(path.join(root, e.file)));
    assert.equal(e.bytes, statSync(path.join(root, e.file)).size);
    assert.ok(e.replaces && e.replaces.length > 0 && e.first_day && e.last_day && e.fingerprint?.startsWith(`${e.rows}:`));
    assert.equal(e.rows, e.replaces!.reduce((n, f) => n + manifestBefore.get(f)!.rows, 0), `${e.file} rows = sum of what it replaced`);
    for (const f of e.replaces!) replaced.add(f);
  }
  assert.deepEqual([...replaced].sort(), [...manifestBefore.keys()].filter((f) => !f.includes('day=2026-02-03')).sort());
  for (const f of replaced) assert.equal(existsSync(path.join(root, f)), false, `${f} removed`);
  assert.deepEqual(parquetFiles(root).sort(), [...manifest.keys()].sort(), 'on disk: exactly the live files');
  assert.ok(filesBefore.length > parquetFiles(root).length * 3);
  const log = await readCompactedLog(root, 'detections', '2026-01-31');
  assert.equal(log.length, 1);
  assert.equal(log[0]!.status, 'prepared');
  assert.deepEqual(log[0]!.replaced.map((e) => e.file).sort(), [...manifestBefore.keys()].filter((f) => f.startsWith('detections/day=2026-01-31/')).sort());
  assert.deepEqual(journals(root), [], 'no journal left');

  // Sorted as documented: frames by frame id.
  const wh = await openWarehouse(root);
  try {
    const janFrames = [...manifest.values()].find((e) => e.table === 'frames' && e.first_day === '2026-01-30')!;
    const ids = (await wh.query(`SELECT frame_id FROM read_parquet('${path.join(root, janFrames.file)}')`)).map((x) => String(x.frame_id));
    assert.deepEqual(ids, [...ids].sort());
    assert.equal(ids.length, rowCount(BATCHES.slice(0, 6), 'frames'));
  } finally {
    wh.close();
  }

  // Readers see exactly the same rows and reports.
  const after = await snapshot(root);
  assert.deepEqual(after.dump, before.dump);
  assert.deepEqual(after.reports, before.reports);
  const v = await verifyWarehouse(root, { rows: true });
  assert.deepEqual(v.problems, []);

  // Nothing left to do; a month later the February day files become one month file.
  assert.deepEqual((await compactWarehouse(root, { now: NOW_FEB })).partitions, []);
  const march = await compactWarehouse(root, { now: NOW_MAR });
  const feb = march.partitions.filter((p) => p.table === 'detections');
  assert.deepEqual(feb.map((p) => `${p.period} ${p.first}..${p.last} ${p.files}`), ['month 2026-02-01..2026-02-02 2']);
  // Alerts of Feb 3 (left as batch files while that day was open) join February's file now.
  const febAlerts = march.partitions.filter((p) => p.table === 'alerts');
  assert.deepEqual(febAlerts.map((p) => `${p.period} ${p.first}..${p.last}`), ['month 2026-02-01..2026-02-03']);
  assert.ok(febAlerts[0]!.files > 2);
  const afterMarch = await snapshot(root);
  assert.deepEqual(afterMarch.dump, before.dump);
  assert.deepEqual(afterMarch.reports, before.reports);
  // The day log of Feb 1 now has both compactions: the batch files, then the day file.
  const feb1 = await readCompactedLog(root, 'detections', '2026-02-01');
  assert.equal(feb1.length, 2);
  assert.ok(feb1[1]!.replaced.every((e) => e.file.includes('/compacted/')));
  assert.deepEqual((await verifyWarehouse(root)).problems, []);
});

test('a batch re-run after compaction writes nothing; late rows land next to the compacted file and are merged next time', async () => {
  const root = await freshWarehouse();
  const before = await snapshot(root);
  await compactWarehouse(root, { now: NOW_FEB });
  const manifest = readFileSync(path.join(root, MANIFEST), 'utf8');

  // Every batch again (as a retried records activity would): its files were merged, so nothing is written.
  for (const b of BATCHES) {
    const r = await appendBatch(root, b);
    assert.equal(r.files, 0, b.id);
    assert.ok(r.skipped > 0, b.id);
  }
  assert.equal(readFileSync(path.join(root, MANIFEST), 'utf8'), manifest, 'manifest unchanged');
  assert.deepEqual((await snapshot(root)).dump, before.dump);

  // A late batch for a compacted day (a camera that was offline): a new file next to the compacted one.
  const late = makeBatch('2026-01-31', 1, '-late');
  const w = await appendBatch(root, late);
  assert.ok(w.files > 0);
  const wh = await openWarehouse(root);
  try {
    for (const t of TABLE_NAMES) {
      const [c] = await wh.query(`SELECT count(*) AS n FROM ${t}`);
      assert.equal(c?.n, rowCount([...BATCHES, late], t), t);
    }
    const daily = await dailyReport(wh, { date: '2026-01-31' });
    const frames = daily.users.reduce((n, u) => n + u.frames.processed, 0);
    assert.equal(frames, [...BATCHES, late].flatMap((b) => b.rows.frames).filter((f) => f.captured_at.startsWith('2026-01-31')).length);
    // The next compaction merges them into a new January file.
    const r = await compactWarehouse(root, { now: NOW_FEB });
    assert.ok(r.partitions.some((p) => p.table === 'frames' && p.period === 'month' && p.first === '2026-01-30' && p.files === 1 + USERS.length));
    for (const t of TABLE_NAMES) {
      const [c] = await wh.query(`SELECT count(*) AS n FROM ${t}`); // the open handle follows the manifest
      assert.equal(c?.n, rowCount([...BATCHES, late], t), `${t} after recompaction`);
    }
  } finally {
    wh.close();
  }
  // And the late batch re-run after that writes nothing either.
  assert.equal((await appendBatch(root, late)).files, 0);
  assert.deepEqual((await verifyWarehouse(root)).problems, []);
});

test('a crash at any step of a compaction leaves a consistent warehouse, and the next compaction finishes it', async () => {
  const steps: CompactStep[] = ['written', 'logged', 'committed', 'removed'];
  const expected = await snapshot(await freshWarehouse());
  for (const step of steps) {
    const root = await freshWarehouse();
    await assert.rejects(
      compactWarehouse(root, { now: NOW_FEB, onStep: (s) => { if (s === step) throw new SimulatedCrash(s); } }),
      (err: unknown) => err instanceof SimulatedCrash,
    );
    const left = journals(root).filter((n) => n.endsWith('.json'));
    assert.ok(step === 'removed' ? left.length === 0 : left.length > 0, `${step}: journals ${left.length}`);

    // Readers: the same rows, whichever side of the commit the crash fell on (never both, none lost).
    const mid = await snapshot(root);
    assert.deepEqual(mid.dump, expected.dump, `rows after a crash at ${step}`);
    assert.deepEqual(mid.reports, expected.reports, `reports after a crash at ${step}`);
    const v = await verifyWarehouse(root);
    assert.equal(v.ok, true, `${step}: ${JSON.stringify(v.problems.slice(0, 3))}`);
    const kinds = new Set(v.problems.map((p) => p.kind));
    if (step === 'written' || step === 'logged') assert.deepEqual([...kinds].sort(), ['interrupted', 'uncommitted'], step);
    if (step === 'committed') assert.deepEqual([...kinds].sort(), ['interrupted', 'replaced'], step);
    if (step === 'removed') assert.deepEqual([...kinds], [], step);

    // A batch re-run in that state counts nothing twice (at 'committed' its old files are still on
    // disk but no longer listed: it must not list them again).
    for (const b of BATCHES.slice(0, 3)) await appendBatch(root, b);
    assert.deepEqual((await snapshot(root)).dump, expected.dump, `rows after a re-run at ${step}`);

    // The next compaction finishes (committed) or undoes (not committed) the interrupted one, then compacts.
    const r = await compactWarehouse(root, { now: NOW_FEB });
    if (step === 'written' || step === 'logged') assert.ok(r.recovered.undone > 0 && r.recovered.finished === 0, `${step}: ${JSON.stringify(r.recovered)}`);
    if (step === 'committed') assert.ok(r.recovered.finished > 0 && r.recovered.undone === 0, `${step}: ${JSON.stringify(r.recovered)}`);
    const end = await snapshot(root);
    assert.deepEqual(end.dump, expected.dump, `rows after recovery from ${step}`);
    assert.deepEqual(end.reports, expected.reports);
    assert.deepEqual((await verifyWarehouse(root, { rows: true })).problems, [], `clean after recovery from ${step}`);
    assert.deepEqual(journals(root), []);
    assert.ok(parquetFiles(root).every((f) => f.includes('/compacted/') || f.includes('day=2026-02-03')), `${step}: everything closed is compacted`);
    if (step === 'written' || step === 'logged') {
      // The aborted compaction is recorded as such in the day logs it had written to.
      const log = await readCompactedLog(root, 'alerts', '2026-01-30');
      if (step === 'logged') assert.ok(log.some((l) => l.status === 'aborted'), 'aborted line');
    }
  }
});

test('leftover temporary outputs and orphans are removed; --sweep removes merged files a lost unlink left behind', async () => {
  const root = await freshWarehouse();
  const manifestBefore = await readManifest(root);
  await compactWarehouse(root, { now: NOW_FEB });
  // Simulate: a compaction that died while writing (temporary output without journal), an output
  // that never committed, and an original whose removal was lost.
  const tmp = path.join(root, 'frames/compacted/.2026-02-05_2026-02-05-0123456789abcdef.parquet.tmp');
  writeFileSync(tmp, 'partial');
  const orphan = 'threats/compacted/2026-01-30_2026-01-31-00000000deadbeef.parquet';
  const someCompacted = [...(await readManifest(root)).keys()].find((f) => f.startsWith('threats/compacted/'))!;
  cpSync(path.join(root, someCompacted), path.join(root, orphan));
  const original = [...manifestBefore.keys()].find((f) => f.startsWith('threats/day=2026-01-31/'))!;
  const template2 = path.join(tmpDir('vigil-whc-x-'), 'warehouse');
  cpSync(template!, template2, { recursive: true });
  cpSync(path.join(template2, original), path.join(root, original));

  const v = await verifyWarehouse(root);
  assert.equal(v.ok, true);
  assert.deepEqual(v.problems.map((p) => [p.kind, p.file]).sort(), [['replaced', original], ['uncommitted', orphan]].sort());
  const snap = await snapshot(root);
  const r = await compactWarehouse(root, { now: NOW_FEB, sweep: true });
  assert.equal(r.swept, 2);
  assert.equal(existsSync(tmp), false);
  assert.deepEqual((await verifyWarehouse(root)).problems, []);
  assert.deepEqual((await snapshot(root)).dump, snap.dump);
});

test('verify names a tampered compacted file; compaction refuses a tampered input and rows that do not reconcile', async () => {
  {
    const root = await freshWarehouse();
    await compactWarehouse(root, { now: NOW_FEB });
    const rel = [...(await readManifest(root)).keys()].find((f) => f.startsWith('detections/compacted/2026-02-01_'))!;
    const file = path.join(root, rel);
    const size = statSync(file).size;
    const fd = openSync(file, 'r+');
    writeSync(fd, Buffer.from('tampered'), 0, 8, Math.floor(size / 3));
    closeSync(fd);
    const v = await verifyWarehouse(root);
    assert.equal(v.ok, false);
    assert.deepEqual(v.problems.map((p) => [p.kind, p.file]), [['changed', rel]]);
    await rejects(openWarehouse(root, { verifyHashes: true }), 'E_CORRUPT', [rel, 'changed']);
    // A later compaction that would merge it (a month later) refuses instead of laundering it into a fresh hash.
    await rejects(compactWarehouse(root, { now: NOW_MAR }), 'E_CORRUPT', ['refused', rel]);
  }
  {
    const root = await freshWarehouse();
    const files = parquetFiles(root);
    const rel = files.find((f) => f.startsWith('alerts/day=2026-01-31/'))!;
    const fd = openSync(path.join(root, rel), 'r+');
    writeSync(fd, Buffer.from('x'), 0, 1, 100);
    closeSync(fd);
    await rejects(compactWarehouse(root, { now: NOW_FEB }), 'E_CORRUPT', ['refused', rel]);
    // Partitions committed before the failure stay committed and consistent; the tampered one was not touched.
    assert.ok(existsSync(path.join(root, rel)));
    assert.deepEqual(journals(root), []);
  }
  {
    // The manifest says a file holds more rows than it does: the compaction fails loudly, commits
    // nothing for that partition and leaves no output behind.
    const root = await freshWarehouse();
    const m = path.join(root, MANIFEST);
    const lines = readFileSync(m, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { file: string; rows: number });
    const victim = lines.find((l) => l.file.startsWith('frames/day=2026-01-30/'))!;
    victim.rows += 1;
    writeFileSync(m, lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
    const before = readFileSync(m, 'utf8');
    await rejects(compactWarehouse(root, { now: NOW_FEB, tables: ['frames'] }), 'E_CORRUPT', ['frames 2026-01-30..2026-01-31', 'do not reconcile']);
    assert.equal(readFileSync(m, 'utf8'), before, 'nothing committed');
    assert.deepEqual(readdirSync(path.join(root, 'frames/compacted')), [], 'no output left');
    assert.deepEqual(journals(root), []);
  }
});

test('appends racing a compaction lose nothing; an open reader follows the manifest through it', async () => {
  const root = await freshWarehouse();
  const wh = await openWarehouse(root);
  try {
    const expectCounts = async (batches: Batch[], label: string): Promise<void> => {
      for (const t of TABLE_NAMES) {
        const [c] = await wh.query(`SELECT count(*) AS n FROM ${t}`);
        assert.equal(c?.n, rowCount(batches, t), `${label}: ${t}`);
      }
    };
    await expectCounts(BATCHES, 'before');
    // New batches on the open day (and one late for a closed day), appended while the compaction runs.
    const extra = [makeBatch('2026-02-03', 0), makeBatch('2026-02-03', 1), makeBatch('2026-01-30', 1, '-late')];
    const [r] = await Promise.all([
      compactWarehouse(root, { now: NOW_FEB, commitEveryMs: 0 }),
      (async () => {
        for (const b of extra) await appendBatch(root, b);
      })(),
    ]);
    assert.ok(r.partitions.length > 0);
    await expectCounts([...BATCHES, ...extra], 'after');
    const v = await verifyWarehouse(root);
    assert.deepEqual(v.problems, []);
    // Every appended file is listed (none lost to the manifest rewrite).
    const live = await readManifest(root);
    for (const f of parquetFiles(root)) assert.ok(live.has(f), `${f} is listed`);
  } finally {
    wh.close();
  }
});

test('a partition folder removed by a compaction while an append makes it (mkdir fails ENOENT) is made again; nothing is lost', async () => {
  const root = await freshWarehouse();
  // The compaction's rmdir of an emptied day folder landing between mkdir's two levels: what mkdir
  // reports then is ENOENT. Injected once, for the first partition folder the append makes.
  const realMkdir = fsp.mkdir;
  let injected = 0;
  fsp.mkdir = (async (p: string, opts?: unknown) => {
    if (injected === 0 && String(p).includes('day=2026-01-29')) {
      injected++;
      throw Object.assign(new Error(`ENOENT: no such file or directory, mkdir '${p}'`), { code: 'ENOENT' });
    }
    return realMkdir(p, opts as never);
  }) as typeof fsp.mkdir;
  try {
    const late = makeBatch('2026-01-29', 0, '-late');
    await appendBatch(root, late);
    assert.equal(injected, 1);
    const wh = await openWarehouse(root);
    try {
      for (const t of TABLE_NAMES) {
        const [c] = await wh.query(`SELECT count(*) AS n FROM ${t}`);
        assert.equal(c?.n, rowCount([...BATCHES, late], t), t);
      }
    } finally {
      wh.close();
    }
  } finally {
    fsp.mkdir = realMkdir;
  }
});

test('autoCompact runs at most once per interval, only when no other compaction runs, and can be disabled', async () => {
  const root = await freshWarehouse();
  const first = await autoCompact(root, { now: NOW_FEB });
  assert.ok(first !== null && first.partitions.length > 0);
  assert.ok(existsSync(path.join(root, AUTO_COMPACT_STATE)));
  // Within the hour: not again, even with new closed work.
  await appendBatch(root, makeBatch('2026-01-31', 0, '-late'));
  assert.equal(await autoCompact(root, { now: new Date(NOW_FEB.getTime() + 60_000) }), null);
  // Later: it runs and merges the late batch.
  const again = await autoCompact(root, { now: new Date(NOW_FEB.getTime() + 2 * 3_600_000) });
  assert.ok(again !== null && again.partitions.length > 0);
  // Another compaction holding the lock: skipped, not waited for.
  await appendBatch(root, makeBatch('2026-01-31', 2, '-late2'));
  writeFileSync(path.join(root, '_compact.lock'), JSON.stringify({ pid: process.pid, host: (await import('node:os')).hostname(), at: new Date().toISOString() }));
  assert.equal(await autoCompact(root, { now: new Date(NOW_FEB.getTime() + 4 * 3_600_000) }), null);
  await rejects(compactWarehouse(root, { now: NOW_FEB }), 'E_LOCKED', ['another compaction']);
  (await import('node:fs')).unlinkSync(path.join(root, '_compact.lock'));
  process.env.VIGIL_WAREHOUSE_AUTOCOMPACT = '0';
  try {
    assert.equal(await autoCompact(root, { now: new Date(NOW_FEB.getTime() + 8 * 3_600_000) }), null);
  } finally {
    delete process.env.VIGIL_WAREHOUSE_AUTOCOMPACT;
  }
  assert.ok((await autoCompact(root, { now: new Date(NOW_FEB.getTime() + 8 * 3_600_000) }))!.partitions.length > 0);
  // Two records stages finishing at once in one worker: one compacts, the other returns at once.
  await appendBatch(root, makeBatch('2026-02-01', 0, '-late'));
  const later = new Date(NOW_FEB.getTime() + 10 * 3_600_000);
  const both = await Promise.all([autoCompact(root, { now: later }), autoCompact(root, { now: later })]);
  assert.equal(both.filter((x) => x !== null).length, 1);
  assert.deepEqual((await verifyWarehouse(root)).problems, []);
});

test('vigil warehouse compact and verify, as a subprocess', async () => {
  const data = tmpDir('vigil-whc-cli-');
  cpSync(await freshWarehouse(), path.join(data, 'warehouse'), { recursive: true });
  const run = (args: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
    new Promise((resolve) => {
      const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VIGIL_')));
      execFile(process.execPath, [path.resolve(import.meta.dirname, '../bin/vigil.js'), ...args], { env: { ...env, VIGIL_DATA: data }, timeout: 120_000 }, (err, stdout, stderr) =>
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }));
    });
  const c = await run(['warehouse', 'compact', '--now', '2026-02-03T12:00:00Z', '--json']);
  assert.equal(c.code, 0, c.stderr);
  const r = JSON.parse(c.stdout) as { partitions: unknown[]; filesAfter: number };
  assert.ok(r.partitions.length > 0);
  const v = await run(['warehouse', 'verify']);
  assert.equal(v.code, 0, v.stderr);
  assert.match(v.stdout, /ok$/m);
  const rel = [...(await readManifest(path.join(data, 'warehouse'))).keys()].find((f) => f.startsWith('frames/compacted/2026-02-01_'))!;
  const fd = openSync(path.join(data, 'warehouse', rel), 'r+');
  writeSync(fd, Buffer.from('zz'), 0, 2, 50);
  closeSync(fd);
  const bad = await run(['warehouse', 'verify']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, new RegExp(`^vigil: warehouse verify failed: 1 problem\\(s\\), first: changed .*${rel.replace(/[.]/g, '\\.')}`));
  const again = await run(['warehouse', 'compact', '--now', '2026-03-02T00:00:00Z']);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /refused/);
});
