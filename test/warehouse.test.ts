/**
 * Warehouse: append a realistic small day (2 users, 3 devices) to real Parquet files, read it back
 * through DuckDB views, reports computed from the input rows, read-only SQL, integrity checks
 * (corrupted, truncated, deleted files) and refused input.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, readdirSync, readFileSync, statSync, truncateSync, unlinkSync, writeFileSync, openSync, writeSync, closeSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { isVigilError } from '../lib/errors.js';
import {
  appendRecords,
  clearCredentials,
  DeliveryRowSchema,
  dailyReport,
  dailyReportRows,
  findFrameRecords,
  formatTable,
  openWarehouse,
  runReadOnlySql,
  toCsv,
  usersReport,
  verifyWarehouse,
  DailyReportSchema,
  TABLE_NAMES,
  type AlertRow,
  type DeliveryRow,
  type DetectionRow,
  type FrameRow,
  type NonMatchRow,
  type RuleVersionRow,
  type TableName,
  type TableRow,
  type ThreatRow,
} from '../warehouse/index.js';
import { tmpDir } from './helpers/tmp.js';
import { zoneDayStart } from '../warehouse/time.js';

// ---------------------------------------------------------------------------------------------
// A realistic small day, generated deterministically

const DAY = '2026-03-10';
const NEXT_DAY = '2026-03-11';
const BATCH = 'home-20260310T235959-a1b2c3';
const BATCH2 = 'home-20260311T120000-d4e5f6';
const RULES_COMMIT = 'c0ffee'.padEnd(40, '0');
const RULES_HASH = createHash('sha256').update('rules v1').digest('hex');
const MODEL = createHash('sha256').update('yolov8n').digest('hex');

const DEVICES = [
  { user: 'alice', device: 'frontdoor', tz: 'Europe/Paris', site: 'home' },
  { user: 'alice', device: 'garage', tz: 'Europe/Paris', site: 'home' },
  { user: 'bob', device: 'porch', tz: 'America/New_York', site: 'cabin' },
] as const;

const RULES = [
  { id: 1, name: 'weapons', classes: ['knife'], minScore: 0.5 },
  { id: 2, name: 'people', classes: ['person'], minScore: 0.8 },
];

const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

function local(instant: string, tz: string): { date: string; hour: number } {
  const f = new Intl.DateTimeFormat('en-CA', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', hourCycle: 'h23' });
  const p = Object.fromEntries(f.formatToParts(new Date(instant)).map((x) => [x.type, x.value]));
  return { date: `${p.year}-${p.month}-${p.day}`, hour: Number(p.hour) };
}

type Spec = {
  dev: 0 | 1 | 2;
  at: string;
  objects?: [string, number][];
  invalid?: 'corrupt' | 'too_small' | 'blank' | 'black';
  batch?: string;
  /** Final alert status for each fired rule, in rule order. */
  alert?: AlertRow['status'];
  /** The same image bytes (so the same frame id) as the spec at this index, from another camera. */
  sameBytesAs?: number;
};

/** Frames of the day (UTC instants), plus one the next UTC day in a second batch. */
const SPECS: Spec[] = [
  { dev: 0, at: `${DAY}T00:15:00.000Z`, objects: [['person', 0.91], ['knife', 0.7]], alert: 'delivered' },
  { dev: 0, at: `${DAY}T06:30:00.000Z`, objects: [['person', 0.5]] },
  { dev: 0, at: `${DAY}T06:45:10.250Z`, objects: [['car', 0.88], ['dog', 0.6]] },
  { dev: 0, at: `${DAY}T09:00:00.000Z`, invalid: 'corrupt' },
  { dev: 1, at: `${DAY}T12:00:00.000Z`, objects: [['knife', 0.55]], alert: 'failed' },
  { dev: 1, at: `${DAY}T12:20:00.000Z`, invalid: 'black' },
  { dev: 1, at: `${DAY}T12:40:00.000Z`, invalid: 'blank' },
  { dev: 1, at: `${DAY}T22:59:59.999Z`, objects: [['person', 0.99]], alert: 'suppressed' },
  { dev: 2, at: `${DAY}T03:00:00.000Z`, objects: [['person', 0.85], ['person', 0.82]], alert: 'outbox' },
  { dev: 2, at: `${DAY}T03:10:00.000Z`, objects: [] },
  { dev: 2, at: `${DAY}T16:05:00.000Z`, invalid: 'too_small' },
  { dev: 2, at: `${DAY}T23:30:00.000Z`, objects: [['knife', 0.95]], alert: 'delivered' },
  { dev: 2, at: `${NEXT_DAY}T02:00:00.000Z`, objects: [['person', 0.97]], alert: 'delivered', batch: BATCH2 },
  // Identical bytes from two cameras (a static scene): one frame id, two frames.
  { dev: 0, at: `${DAY}T12:00:00.000Z`, objects: [['knife', 0.55]], alert: 'delivered', sameBytesAs: 4 },
  // An SMS sent without an answer (not retried), and an alert reprocessing recorded (never sent).
  { dev: 1, at: `${DAY}T14:00:00.000Z`, objects: [['knife', 0.95]], alert: 'unknown' },
  { dev: 2, at: `${DAY}T15:00:00.000Z`, objects: [['person', 0.99]], alert: 'recorded' },
  // The same bytes as a safe frame, seen with a threat by another camera (spec 9 is safe).
  { dev: 0, at: `${DAY}T03:12:00.000Z`, objects: [['knife', 0.95]], alert: 'delivered', sameBytesAs: 9 },
];

type Day = {
  frames: FrameRow[];
  detections: DetectionRow[];
  threats: ThreatRow[];
  non_matches: NonMatchRow[];
  alerts: AlertRow[];
  deliveries: DeliveryRow[];
  rule_versions: RuleVersionRow[];
};

function buildDay(): Day {
  const d: Day = { frames: [], detections: [], threats: [], non_matches: [], alerts: [], deliveries: [], rule_versions: [] };
  d.rule_versions.push({ rules_commit: RULES_COMMIT, rules_hash: RULES_HASH, at: `${DAY}T00:00:00.000Z`, rule_ids: '1,2' });
  const safe = new Map<string, NonMatchRow>();
  SPECS.forEach((s, i) => {
    const dev = DEVICES[s.dev];
    const batch = s.batch ?? BATCH;
    const frameId = sha(`frame ${s.sameBytesAs ?? i}`);
    const lt = local(s.at, dev.tz);
    const tag = `${dev.user}-${dev.device}-${s.at.replace(/[-:.]/g, '')}-${dev.tz.replace('/', '.')}`;
    const received = new Date(Date.parse(s.at) + 1500).toISOString();
    d.frames.push({
      frame_id: frameId, tag, user_id: dev.user, device_id: dev.device, site: dev.site, captured_at: s.at, tz: dev.tz,
      local_date: lt.date, local_hour: lt.hour, received_at: received, batch_id: batch,
      status: s.invalid ? 'invalid' : 'standardized', reason: s.invalid ?? null, camera_fault: s.invalid === 'blank' || s.invalid === 'black',
    });
    if (s.invalid) return;
    const objects = s.objects ?? [];
    objects.forEach(([cls, score], k) => {
      d.detections.push({
        frame_id: frameId, user_id: dev.user, device_id: dev.device, captured_at: s.at, batch_id: batch, model_sha256: MODEL,
        class: cls, score, box_x: 10 * k + 0.5, box_y: 20, box_w: 100.25, box_h: 200,
      });
    });
    const fired: { rule: (typeof RULES)[number]; cls: string; score: number }[] = [];
    for (const [cls, score] of objects) {
      for (const rule of RULES) if (rule.classes.includes(cls) && score >= rule.minScore) fired.push({ rule, cls, score });
    }
    for (const m of fired) {
      d.threats.push({
        frame_id: frameId, tag, user_id: dev.user, device_id: dev.device, captured_at: s.at, local_hour: lt.hour, batch_id: batch,
        rules_commit: RULES_COMMIT, rule_id: m.rule.id, rule_name: m.rule.name, class: m.cls, score: m.score,
      });
    }
    if (fired.length === 0) {
      const hour = new Date(Math.floor(Date.parse(s.at) / 3_600_000) * 3_600_000).toISOString();
      const key = `${dev.user}|${dev.device}|${hour}|${batch}`;
      const row = safe.get(key) ?? { user_id: dev.user, device_id: dev.device, hour, batch_id: batch, frames: 0, objects: 0 };
      row.frames += 1;
      row.objects += objects.length;
      safe.set(key, row);
      return;
    }
    for (const ruleId of [...new Set(fired.map((f) => f.rule.id))]) {
      const ms = fired.filter((f) => f.rule.id === ruleId);
      const alertId = sha(`alert ${tag} ${ruleId}`).slice(0, 32);
      const created = new Date(Date.parse(s.at) + 4000).toISOString();
      const status = s.alert ?? 'delivered';
      d.alerts.push({
        alert_id: alertId, frame_id: frameId, user_id: dev.user, device_id: dev.device, rule_id: ruleId,
        classes: [...new Set(ms.map((m) => m.cls))], max_score: Math.max(...ms.map((m) => m.score)), created_at: created, batch_id: batch,
        status, channels: status === 'suppressed' || status === 'recorded' ? 0 : 2,
      });
      const at = (sec: number): string => new Date(Date.parse(created) + sec * 1000).toISOString();
      const del = (channel: DeliveryRow['channel'], attempt: number, sec: number, code: number | null, outcome: DeliveryRow['outcome']): void =>
        void d.deliveries.push({
          alert_id: alertId, channel, attempt, at: at(sec), request_summary: `POST ${channel} alert ${alertId.slice(0, 8)}`, status_code: code,
          response_summary: code === null ? 'no response' : `HTTP ${code}`, latency_ms: 120.5 + attempt, outcome,
        });
      if (status === 'delivered') {
        del('email', 1, 0, 503, 'retry');
        del('email', 2, 2, 202, 'delivered');
        del('webhook', 1, 0, 200, 'delivered');
      } else if (status === 'failed') {
        del('sms', 1, 0, 500, 'retry');
        del('sms', 2, 2, 502, 'retry');
        del('sms', 3, 6, null, 'failed');
        del('webhook', 1, 0, 404, 'failed');
      } else if (status === 'suppressed') {
        del('email', 1, 0, null, 'suppressed');
      } else if (status === 'unknown') {
        del('sms', 1, 0, null, 'unknown');
      } else if (status === 'recorded') {
        // reprocessing sends nothing
      } else {
        del('outbox', 1, 0, null, 'delivered');
        del('outbox', 1, 0, null, 'delivered');
      }
    }
  });
  d.non_matches.push(...safe.values());
  return d;
}

const DAYDATA = buildDay();

/** Rows of `table` by batch. */
function byBatch<T extends { batch_id?: string }>(rows: T[], batch: string): T[] {
  return rows.filter((r) => (r.batch_id ?? BATCH) === batch);
}

const utcDay = (iso: string): string => new Date(iso).toISOString().slice(0, 10);

/** Appends the whole day (both batches); returns every file written. */
async function appendDay(root: string): Promise<{ files: string[]; skipped: string[]; rows: number }> {
  const out = { files: [] as string[], skipped: [] as string[], rows: 0 };
  const deliveriesByBatch = (batch: string): DeliveryRow[] => {
    const ids = new Set(byBatch(DAYDATA.alerts, batch).map((a) => a.alert_id));
    return DAYDATA.deliveries.filter((x) => ids.has(x.alert_id));
  };
  for (const batch of [BATCH, BATCH2]) {
    const parts: [TableName, unknown[]][] = [
      ['frames', byBatch(DAYDATA.frames, batch)],
      ['detections', byBatch(DAYDATA.detections, batch)],
      ['threats', byBatch(DAYDATA.threats, batch)],
      ['non_matches', byBatch(DAYDATA.non_matches, batch)],
      ['alerts', byBatch(DAYDATA.alerts, batch)],
      ['deliveries', deliveriesByBatch(batch)],
      ['rule_versions', batch === BATCH ? DAYDATA.rule_versions : []],
    ];
    for (const [table, rows] of parts) {
      const r = await appendRecords(root, table, rows as TableRow<typeof table>[], { batchId: batch });
      out.files.push(...r.files);
      out.skipped.push(...r.skipped);
      out.rows += r.rows;
    }
  }
  return out;
}

function listFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(path.relative(dir, p).split(path.sep).join('/'));
    }
  };
  if (existsSync(dir)) walk(dir);
  return out.sort();
}

const totalRows = Object.values(DAYDATA).reduce((n, rows) => n + rows.length, 0);

async function rejects(p: Promise<unknown>, code: string, includes: string[]): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(isVigilError(err), `expected a VigilError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    for (const s of includes) assert.ok(err.message.includes(s), `message ${JSON.stringify(err.message)} should mention ${s}`);
    return true;
  });
}

/** A fresh warehouse holding the day. */
async function dayWarehouse(): Promise<string> {
  const root = path.join(tmpDir('vigil-wh-'), 'warehouse');
  await appendDay(root);
  return root;
}

// ---------------------------------------------------------------------------------------------

test('appending a day lands each table in day/user partitions, one file per partition and batch', async () => {
  const root = path.join(tmpDir('vigil-wh-'), 'warehouse');
  const r = await appendDay(root);
  assert.equal(r.rows, totalRows);
  assert.deepEqual(r.skipped, []);

  const expected = new Set<string>();
  const main: Record<TableName, string> = {
    frames: 'captured_at', detections: 'captured_at', threats: 'captured_at', non_matches: 'hour', alerts: 'created_at', deliveries: 'at', rule_versions: 'at',
  };
  const alertBatch = new Map(DAYDATA.alerts.map((a) => [a.alert_id, a.batch_id]));
  for (const table of TABLE_NAMES) {
    for (const row of DAYDATA[table] as Record<string, unknown>[]) {
      const day = utcDay(row[main[table]] as string);
      const batch = (row.batch_id as string | undefined) ?? alertBatch.get(row.alert_id as string) ?? BATCH;
      const user = table === 'deliveries' || table === 'rule_versions' ? '' : `/user=${row.user_id as string}`;
      expected.add(`${table}/day=${day}${user}/${batch}.parquet`);
    }
  }
  const written = r.files.map((f) => path.relative(root, f).split(path.sep).join('/')).sort();
  assert.deepEqual(written, [...expected].sort());
  assert.deepEqual(listFiles(root), [...expected, '_manifest.jsonl'].sort(), 'no temporary file left behind');
  assert.ok(written.includes(`frames/day=${DAY}/user=alice/${BATCH}.parquet`));
  assert.ok(written.includes(`frames/day=${NEXT_DAY}/user=bob/${BATCH2}.parquet`));
  assert.ok(written.includes(`deliveries/day=${DAY}/${BATCH}.parquet`));

  const manifest = readFileSync(path.join(root, '_manifest.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { file: string; rows: number; sha256: string });
  assert.deepEqual(manifest.map((m) => m.file).sort(), written);
  for (const m of manifest) assert.equal(m.sha256, sha256File(path.join(root, m.file)));
  assert.equal(manifest.reduce((n, m) => n + m.rows, 0), totalRows);

  const wh = await openWarehouse(root);
  try {
    for (const table of TABLE_NAMES) {
      const [c] = await wh.query(`SELECT count(*) AS n FROM ${table}`);
      assert.equal(c?.n, DAYDATA[table].length, table);
    }
    const [inv] = await wh.query(`SELECT count(*) AS n FROM invalid_frames`);
    assert.equal(inv?.n, DAYDATA.frames.filter((f) => f.status === 'invalid').length);
    // Round trip: rows come back exactly as appended (instants as ISO UTC), plus the partition columns.
    // Ordered in full (two cameras can send at the same instant): tag, alert id break the ties.
    const back = await wh.query(`SELECT * EXCLUDE (day, "user") FROM frames ORDER BY captured_at, tag`);
    assert.deepEqual(back, [...DAYDATA.frames].sort((a, b) => a.captured_at.localeCompare(b.captured_at) || a.tag.localeCompare(b.tag)));
    const alerts = await wh.query(`SELECT * EXCLUDE (day, "user") FROM alerts ORDER BY created_at, alert_id`);
    assert.deepEqual(alerts, [...DAYDATA.alerts].sort((a, b) => a.created_at.localeCompare(b.created_at) || a.alert_id.localeCompare(b.alert_id)));
    const types = await wh.query(`SELECT typeof(captured_at) AS c, typeof(local_date) AS d, typeof(day) AS p FROM frames LIMIT 1`);
    assert.deepEqual(types, [{ c: 'TIMESTAMP WITH TIME ZONE', d: 'DATE', p: 'VARCHAR' }]);
  } finally {
    wh.close();
  }
});

function sha256File(p: string): string {
  return createHash('sha256').update(readFileSync(p)).digest('hex');
}

test('re-appending the same batch writes nothing and changes no count', async () => {
  const root = await dayWarehouse();
  const before = listFiles(root);
  const manifestBefore = readFileSync(path.join(root, '_manifest.jsonl'), 'utf8');
  const stat = statSync(path.join(root, `frames/day=${DAY}/user=alice/${BATCH}.parquet`));

  const again = await appendDay(root);
  assert.deepEqual(again.files, []);
  assert.equal(again.rows, 0);
  assert.equal(again.skipped.length, before.length - 1);
  assert.deepEqual(listFiles(root), before);
  assert.equal(readFileSync(path.join(root, '_manifest.jsonl'), 'utf8'), manifestBefore);
  assert.equal(statSync(path.join(root, `frames/day=${DAY}/user=alice/${BATCH}.parquet`)).mtimeMs, stat.mtimeMs, 'never rewritten');

  // The same batch appended twice at the same time: one writer wins each file, nothing doubles.
  const root2 = path.join(tmpDir('vigil-wh-'), 'warehouse');
  const rows = byBatch(DAYDATA.detections, BATCH);
  const [a, b] = await Promise.all([appendRecords(root2, 'detections', rows, { batchId: BATCH }), appendRecords(root2, 'detections', rows, { batchId: BATCH })]);
  assert.equal(a.rows + b.rows, rows.length);
  assert.equal(a.files.length + b.files.length, a.files.length + a.skipped.length);

  // A writer that stopped between linking a file and recording it: the re-run records it.
  const m = path.join(root2, '_manifest.jsonl');
  writeFileSync(m, '');
  const rerun = await appendRecords(root2, 'detections', rows, { batchId: BATCH });
  assert.deepEqual(rerun.files, []);
  const relisted = readFileSync(m, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { file: string; rows: number; sha256: string });
  assert.deepEqual(relisted.map((e) => path.join(root2, e.file)).sort(), [...rerun.skipped].sort());
  assert.equal(relisted.reduce((n, e) => n + e.rows, 0), rows.length);
  for (const e of relisted) assert.equal(e.sha256, sha256File(path.join(root2, e.file)));

  // A part suffix adds a second file for the same batch.
  const extra = await appendRecords(root, 'deliveries', DAYDATA.deliveries.slice(0, 1), { batchId: BATCH, part: 'retry2' });
  assert.equal(extra.files.length, 1);
  assert.ok(extra.files[0]!.endsWith(`deliveries/day=${DAY}/${BATCH}-retry2.parquet`));

  const wh = await openWarehouse(root);
  try {
    for (const table of TABLE_NAMES) {
      const [c] = await wh.query(`SELECT count(*) AS n FROM ${table}`);
      assert.equal(c?.n, DAYDATA[table].length + (table === 'deliveries' ? 1 : 0), table);
    }
  } finally {
    wh.close();
  }
  const wh2 = await openWarehouse(root2);
  try {
    assert.deepEqual(await wh2.query('SELECT count(*) AS n FROM detections'), [{ n: rows.length }]);
  } finally {
    wh2.close();
  }
});

/** The daily report expected from the input rows, for the window [from, to) and an hour function. */
function expectedDaily(from: string, to: string, hourOf: (t: ThreatRow) => number, user?: string) {
  const inWin = (iso: string): boolean => Date.parse(iso) >= Date.parse(from) && Date.parse(iso) < Date.parse(to);
  const frames = DAYDATA.frames.filter((f) => inWin(f.captured_at));
  const users = [...new Set([...frames.map((f) => f.user_id), ...DAYDATA.alerts.filter((a) => inWin(a.created_at)).map((a) => a.user_id)])]
    .filter((u) => user === undefined || u === user)
    .sort();
  const count = <K extends string>(items: K[]): Map<K, number> => {
    const m = new Map<K, number>();
    for (const k of items) m.set(k, (m.get(k) ?? 0) + 1);
    return m;
  };
  const sortDesc = <T extends { count: number }>(xs: T[], key: (x: T) => string): T[] => xs.sort((a, b) => b.count - a.count || key(a).localeCompare(key(b)));
  return users.map((u) => {
    const fr = frames.filter((f) => f.user_id === u);
    const inv = fr.filter((f) => f.status === 'invalid');
    const thr = DAYDATA.threats.filter((t) => t.user_id === u && inWin(t.captured_at));
    const det = DAYDATA.detections.filter((x) => x.user_id === u && inWin(x.captured_at));
    const al = DAYDATA.alerts.filter((a) => a.user_id === u && inWin(a.created_at));
    const alIds = new Set(al.map((a) => a.alert_id));
    const dl = DAYDATA.deliveries.filter((x) => alIds.has(x.alert_id));
    const nm = DAYDATA.non_matches.filter((n) => n.user_id === u && inWin(n.hour));
    const byHour = Array.from({ length: 24 }, (_, hour) => ({ hour, count: thr.filter((t) => hourOf(t) === hour).length }));
    const faults = fr.filter((f) => f.camera_fault);
    return {
      userId: u,
      frames: { processed: fr.length, standardized: fr.length - inv.length, invalid: inv.length, cameraFaults: faults.length },
      invalid: {
        byReason: sortDesc([...count(inv.map((f) => f.reason ?? '')).entries()].map(([reason, c]) => ({ reason, count: c })), (x) => x.reason),
        frames: [...inv]
          .sort((a, b) => a.captured_at.localeCompare(b.captured_at))
          .map((f) => ({ frameId: f.frame_id, tag: f.tag, deviceId: f.device_id, capturedAt: f.captured_at, reason: f.reason ?? '', cameraFault: f.camera_fault })),
        truncated: false,
      },
      cameraFaults: [...new Set(faults.map((f) => f.device_id))].sort().map((deviceId) => {
        const fs = faults.filter((f) => f.device_id === deviceId).map((f) => f.captured_at).sort();
        return { deviceId, count: fs.length, firstAt: fs[0]!, lastAt: fs[fs.length - 1]! };
      }),
      detections: { objects: det.length, byClass: sortDesc([...count(det.map((x) => x.class)).entries()].map(([c, n]) => ({ class: c, count: n })), (x) => x.class) },
      threats: {
        total: thr.length,
        frames: new Set(thr.map((t) => t.tag)).size,
        byClass: sortDesc([...count(thr.map((t) => t.class)).entries()].map(([c, n]) => ({ class: c, count: n })), (x) => x.class),
        byDevice: sortDesc([...count(thr.map((t) => t.device_id)).entries()].map(([d, n]) => ({ deviceId: d, count: n })), (x) => x.deviceId),
        byHour,
      },
      safe: { frames: nm.reduce((n, x) => n + x.frames, 0), objects: nm.reduce((n, x) => n + x.objects, 0) },
      alerts: {
        total: al.filter((a) => a.status !== 'recorded').length,
        delivered: al.filter((a) => a.status === 'delivered').length,
        failed: al.filter((a) => a.status === 'failed').length,
        unknown: al.filter((a) => a.status === 'unknown').length,
        suppressed: al.filter((a) => a.status === 'suppressed').length,
        outbox: al.filter((a) => a.status === 'outbox').length,
        recorded: al.filter((a) => a.status === 'recorded').length,
      },
      deliveries: {
        attempts: dl.length,
        delivered: dl.filter((x) => x.outcome === 'delivered' && x.channel !== 'outbox').length,
        outbox: dl.filter((x) => x.channel === 'outbox').length,
        retries: dl.filter((x) => x.outcome === 'retry').length,
        failed: dl.filter((x) => x.outcome === 'failed').length,
        unknown: dl.filter((x) => x.outcome === 'unknown').length,
        suppressed: dl.filter((x) => x.outcome === 'suppressed').length,
      },
    };
  });
}

test('dailyReport: the numbers equal what was appended (UTC day, device hours; a zone; one user)', async () => {
  const wh = await openWarehouse(await dayWarehouse());
  try {
    const from = `${DAY}T00:00:00.000Z`;
    const to = `${NEXT_DAY}T00:00:00.000Z`;
    const report = await dailyReport(wh, { date: DAY });
    DailyReportSchema.parse(report);
    assert.equal(report.from, from);
    assert.equal(report.to, to);
    const expected = expectedDaily(from, to, (t) => t.local_hour);
    assert.deepEqual(report.users, expected);
    // Sanity on the fixture itself, so the comparison above is not vacuous.
    const alice = report.users.find((u) => u.userId === 'alice')!;
    assert.ok(alice.threats.total >= 3 && alice.frames.invalid === 3 && alice.cameraFaults.length === 1);
    assert.ok(alice.deliveries.retries > 0 && alice.alerts.failed === 1 && alice.alerts.suppressed === 1);
    const every = report.users.reduce((n, u) => ({ unknown: n.unknown + u.alerts.unknown, recorded: n.recorded + u.alerts.recorded, sms: n.sms + u.deliveries.unknown }), { unknown: 0, recorded: 0, sms: 0 });
    assert.deepEqual(every, { unknown: 1, recorded: 1, sms: 1 }, 'the unknown and recorded buckets are filled');
    for (const u of report.users) {
      const a = u.alerts;
      assert.equal(a.total, a.delivered + a.failed + a.unknown + a.suppressed + a.outbox, `${u.userId}: the live alerts add up`);
    }
    assert.ok(alice.threats.byHour.some((h) => h.count > 0));

    // The day in New York: the window shifts by 4 or 5 hours; hours are New York hours.
    const tz = 'America/New_York';
    const ny = await dailyReport(wh, { date: DAY, tz });
    assert.equal(ny.tz, tz);
    assert.equal(ny.from, `${DAY}T04:00:00.000Z`); // EDT began on 2026-03-08
    assert.equal(ny.to, `${NEXT_DAY}T04:00:00.000Z`);
    assert.deepEqual(ny.users, expectedDaily(ny.from, ny.to, (t) => local(t.captured_at, tz).hour));
    const bobNy = ny.users.find((u) => u.userId === 'bob')!;
    assert.equal(bobNy.threats.total, DAYDATA.threats.filter((t) => t.user_id === 'bob' && t.captured_at >= ny.from && t.captured_at < ny.to).length);
    assert.ok(bobNy.threats.total >= 2, 'the next-day (UTC) frame belongs to the New York day');

    // One user only; a user with nothing that day gets zeros.
    const onlyBob = await dailyReport(wh, { date: DAY, user: 'bob' });
    assert.deepEqual(onlyBob.users, expectedDaily(from, to, (t) => t.local_hour, 'bob'));
    const nobody = await dailyReport(wh, { date: DAY, user: 'carol' });
    assert.equal(nobody.users.length, 1);
    assert.equal(nobody.users[0]!.frames.processed, 0);
    assert.equal(nobody.users[0]!.threats.byHour.length, 24);

    // Concurrent reports on one warehouse queue up on its connection and agree with the sequential ones.
    const [c1, c2, c3] = await Promise.all([dailyReport(wh, { date: DAY }), dailyReport(wh, { date: DAY, tz }), runReadOnlySql(wh, 'SELECT count(*) AS n FROM threats')]);
    assert.deepEqual(c1, report);
    assert.deepEqual(c2, ny);
    assert.deepEqual(c3.rows, [{ n: DAYDATA.threats.length }]);

    // Invalid-frame listing is capped.
    const capped = await dailyReport(wh, { date: DAY, user: 'alice', invalidLimit: 1 });
    assert.equal(capped.users[0]!.invalid.frames.length, 1);
    assert.equal(capped.users[0]!.invalid.truncated, true);

    // Flattened for table / CSV output.
    const rows = dailyReportRows(report);
    assert.ok(rows.some((r) => r.user_id === 'alice' && r.section === 'threats' && r.key === 'total' && r.value === alice.threats.total));

    await rejects(dailyReport(wh, { date: '2026-02-30' }), 'E_BAD_INPUT', ['2026-02-30']);
    await rejects(dailyReport(wh, { date: DAY, tz: 'Mars/Olympus' }), 'E_BAD_INPUT', ['Mars/Olympus']);
    await rejects(dailyReport(wh, { date: DAY, user: "x' OR 1=1 --" }), 'E_BAD_INPUT', ['user']);
  } finally {
    wh.close();
  }
});

test('usersReport: threats, frames and alerts per user between two days', async () => {
  const wh = await openWarehouse(await dayWarehouse());
  try {
    for (const [from, to] of [[DAY, DAY], [DAY, NEXT_DAY], [NEXT_DAY, NEXT_DAY]] as const) {
      const inRange = (iso: string): boolean => utcDay(iso) >= from && utcDay(iso) <= to;
      const r = await usersReport(wh, { from, to });
      const users = [...new Set(DAYDATA.frames.filter((f) => inRange(f.captured_at)).map((f) => f.user_id))];
      const expected = users
        .map((u) => {
          const fr = DAYDATA.frames.filter((f) => f.user_id === u && inRange(f.captured_at));
          const th = DAYDATA.threats.filter((t) => t.user_id === u && inRange(t.captured_at));
          const al = DAYDATA.alerts.filter((a) => a.user_id === u && inRange(a.created_at));
          return {
            userId: u,
            frames: fr.length,
            invalid: fr.filter((f) => f.status === 'invalid').length,
            cameraFaults: fr.filter((f) => f.camera_fault).length,
            threats: th.length,
            threatFrames: new Set(th.map((t) => t.tag)).size,
            alerts: al.length,
            delivered: al.filter((a) => a.status === 'delivered').length,
          };
        })
        .sort((a, b) => b.threats - a.threats || a.userId.localeCompare(b.userId));
      assert.deepEqual(r, { from, to, users: expected }, `${from}..${to}`);
    }
    await rejects(usersReport(wh, { from: NEXT_DAY, to: DAY }), 'E_BAD_INPUT', ['after']);
  } finally {
    wh.close();
  }
});

test('findFrameRecords finds the records of one frame in every table', async () => {
  const wh = await openWarehouse(await dayWarehouse());
  try {
    // A frame that fired a rule whose alert was delivered after a retry.
    const frame = DAYDATA.frames.find((f) => DAYDATA.alerts.some((a) => a.frame_id === f.frame_id && a.status === 'delivered'))!;
    const rec = await findFrameRecords(wh, frame.frame_id);
    const strip = (rows: Record<string, unknown>[]): Record<string, unknown>[] => rows.map(({ day: _d, user: _u, ...rest }) => rest);
    assert.deepEqual(strip(rec.frames), [frame]);
    assert.deepEqual(rec.invalidFrames, []);
    assert.equal(rec.detections.length, DAYDATA.detections.filter((d) => d.frame_id === frame.frame_id).length);
    assert.ok(rec.detections.length > 0);
    assert.equal(rec.threats.length, DAYDATA.threats.filter((t) => t.frame_id === frame.frame_id).length);
    const alerts = DAYDATA.alerts.filter((a) => a.frame_id === frame.frame_id);
    assert.deepEqual(strip(rec.alerts), alerts.sort((a, b) => a.created_at.localeCompare(b.created_at) || a.alert_id.localeCompare(b.alert_id)));
    const ids = new Set(alerts.map((a) => a.alert_id));
    assert.equal(rec.deliveries.length, DAYDATA.deliveries.filter((d) => ids.has(d.alert_id)).length);
    assert.ok(rec.deliveries.some((d) => d.outcome === 'retry'));
    assert.deepEqual(strip(rec.ruleVersions), DAYDATA.rule_versions);
    assert.deepEqual(rec.nonMatches, []);

    // A safe frame: counted in a non_matches aggregate.
    const safe = DAYDATA.frames.find((f) => f.status === 'standardized' && !DAYDATA.threats.some((t) => t.frame_id === f.frame_id))!;
    const srec = await findFrameRecords(wh, safe.frame_id);
    assert.equal(srec.nonMatches.length, 1);
    assert.equal(srec.nonMatches[0]!.device_id, safe.device_id);
    assert.equal(srec.threats.length + srec.alerts.length, 0);

    // The same bytes from two cameras, a threat on one and safe on the other: the safe copy's
    // aggregate is still found, and only its own.
    const mixedId = sha('frame 9');
    const copies = DAYDATA.frames.filter((f) => f.frame_id === mixedId);
    const safeCopy = copies.find((f) => !DAYDATA.threats.some((t) => t.frame_id === mixedId && t.device_id === f.device_id))!;
    assert.ok(copies.length === 2 && safeCopy, 'fixture: two copies, one safe');
    const mrec = await findFrameRecords(wh, mixedId);
    assert.equal(mrec.frames.length, 2);
    assert.ok(mrec.threats.length > 0);
    assert.deepEqual(
      strip(mrec.nonMatches),
      DAYDATA.non_matches.filter((n) => n.user_id === safeCopy.user_id && n.device_id === safeCopy.device_id && n.hour === `${DAY}T03:00:00.000Z`),
    );
    assert.equal(mrec.nonMatches.length, 1);

    // An invalid frame.
    const bad = DAYDATA.frames.find((f) => f.status === 'invalid')!;
    const brec = await findFrameRecords(wh, bad.frame_id);
    assert.equal(brec.invalidFrames.length, 1);
    assert.equal(brec.invalidFrames[0]!.reason, bad.reason);

    await rejects(findFrameRecords(wh, sha('never seen')), 'E_NOT_FOUND', [sha('never seen')]);
    await rejects(findFrameRecords(wh, "' OR 1=1 --"), 'E_BAD_INPUT', ['sha256']);
  } finally {
    wh.close();
  }
});

test('runReadOnlySql answers queries and refuses anything that writes or escapes', async () => {
  const root = await dayWarehouse();
  const wh = await openWarehouse(root);
  const outside = path.join(tmpDir('vigil-wh-out-'), 'x.parquet');
  try {
    const r = await runReadOnlySql(wh, `SELECT user_id, count(*) AS n FROM threats WHERE day = '${DAY}' GROUP BY user_id ORDER BY user_id`);
    assert.deepEqual(r.columns, ['user_id', 'n']);
    assert.deepEqual(
      r.rows,
      ['alice', 'bob'].map((u) => ({ user_id: u, n: DAYDATA.threats.filter((t) => t.user_id === u && utcDay(t.captured_at) === DAY).length })),
    );
    assert.equal(r.truncated, false);
    assert.equal((await runReadOnlySql(wh, 'SELECT * FROM detections', { maxRows: 2 })).truncated, true);
    for (const ok of ['WITH t AS (SELECT 1 AS a) SELECT a FROM t', 'DESCRIBE frames', 'SUMMARIZE alerts', 'SHOW TABLES', 'EXPLAIN SELECT * FROM frames', "PRAGMA table_info('frames')", '-- note\nSELECT 42 AS x;']) {
      await runReadOnlySql(wh, ok);
    }
    const refused = [
      `COPY (select 1) TO '${outside}'`,
      `COPY (select 1) TO '/tmp/x.parquet'`,
      `COPY (select 1) TO '${root}/frames/x.parquet'`,
      `ATTACH '${outside}.db' AS other`,
      'CREATE TABLE t (a INT)',
      `INSERT INTO frames SELECT * FROM frames`,
      'SELECT 1; SELECT 2',
      `SELECT 1; COPY (select 1) TO '${outside}'`,
      'INSTALL httpfs',
      'LOAD icu',
      'SET enable_external_access = true',
      `EXPLAIN ANALYZE COPY (select 1) TO '${outside}'`,
      'PRAGMA enable_profiling',
      'DROP VIEW frames',
      `CALL pragma_version()`,
      `EXPORT DATABASE '${path.dirname(outside)}'`,
      `/* comment */ DELETE FROM frames`,
    ];
    for (const sql of refused) await rejects(runReadOnlySql(wh, sql), 'E_BAD_INPUT', []);
    assert.equal(existsSync(outside), false);
    assert.equal(existsSync(path.join(root, 'frames/x.parquet')), false);

    // DuckDB itself is locked down: no file outside the warehouse, no configuration change.
    await rejects(runReadOnlySql(wh, `SELECT * FROM read_text('/etc/hostname')`), 'E_BAD_INPUT', ['disabled']);
    await rejects(wh.query(`COPY (SELECT 1) TO '${outside}'`), 'E_STORAGE', []);
    await rejects(wh.query(`SET enable_external_access = true`), 'E_STORAGE', ['locked']);
    await rejects(wh.query(`ATTACH '${outside}.db' AS other`), 'E_STORAGE', []);
    assert.equal(existsSync(outside), false);
    // The views still work afterwards.
    assert.deepEqual(await wh.query('SELECT count(*) AS n FROM frames'), [{ n: DAYDATA.frames.length }]);
  } finally {
    wh.close();
  }
});

/** A copy of a fresh day warehouse, for tampering. */
async function tamperable(): Promise<{ root: string; file: string; rel: string }> {
  const root = await dayWarehouse();
  const rel = `detections/day=${DAY}/user=alice/${BATCH}.parquet`;
  return { root, file: path.join(root, rel), rel };
}

test('openWarehouse checks listed files cheaply; verifyWarehouse re-hashes and finds strays, naming them', async () => {
  const problemsOf = async (root: string) => (await verifyWarehouse(root)).problems.map((p) => [p.kind, p.file]);
  {
    // Same-size overwrite: opening does not re-hash (cheap checks only), verify and a verifying open do.
    const { root, file, rel } = await tamperable();
    const size = statSync(file).size;
    const fd = openSync(file, 'r+');
    writeSync(fd, Buffer.from('garbage!garbage!'), 0, 16, Math.floor(size / 2));
    closeSync(fd);
    assert.equal(statSync(file).size, size);
    assert.deepEqual(await problemsOf(root), [['changed', rel]]);
    assert.equal((await verifyWarehouse(root)).ok, false);
    await rejects(openWarehouse(root, { verifyHashes: true }), 'E_CORRUPT', [rel, 'changed']);
  }
  {
    const { root, file, rel } = await tamperable();
    truncateSync(file, Math.floor(statSync(file).size / 2));
    await rejects(openWarehouse(root), 'E_CORRUPT', [rel, 'changed']);
    assert.deepEqual(await problemsOf(root), [['changed', rel]]);
  }
  {
    const { root, file, rel } = await tamperable();
    unlinkSync(file);
    await rejects(openWarehouse(root), 'E_CORRUPT', [rel, 'missing']);
    assert.deepEqual(await problemsOf(root), [['missing', rel]]);
  }
  {
    // Not in the manifest (copied in by hand) and broken: never read by queries, named by verify.
    const { root } = await tamperable();
    const rel = `threats/day=${DAY}/user=bob/stray.parquet`;
    const src = path.join(root, `threats/day=${DAY}/user=bob/${BATCH}.parquet`);
    writeFileSync(path.join(root, rel), readFileSync(src).subarray(0, 100));
    const wh = await openWarehouse(root);
    try {
      assert.deepEqual(await wh.query('SELECT count(*) AS n FROM threats'), [{ n: DAYDATA.threats.length }]);
    } finally {
      wh.close();
    }
    assert.deepEqual(await problemsOf(root), [['corrupt', rel]]);
    await rejects(openWarehouse(root, { verifyHashes: true }), 'E_CORRUPT', [rel]);
  }
  {
    // A whole Parquet file the manifest does not list (an append interrupted before its manifest
    // line): pending, not an error, and invisible to readers until its batch re-runs.
    const { root } = await tamperable();
    const rel = `threats/day=${DAY}/user=bob/unlisted.parquet`;
    cpSync(path.join(root, `threats/day=${DAY}/user=bob/${BATCH}.parquet`), path.join(root, rel));
    const r = await verifyWarehouse(root);
    assert.deepEqual(r.problems.map((p) => [p.kind, p.file]), [['unlisted', rel]]);
    assert.equal(r.ok, true);
    const wh = await openWarehouse(root, { verifyHashes: true });
    try {
      assert.deepEqual(await wh.query('SELECT count(*) AS n FROM threats'), [{ n: DAYDATA.threats.length }]);
    } finally {
      wh.close();
    }
  }
  {
    // Without hash verification a same-size change is not seen, but a truncation still is.
    const { root, file, rel } = await tamperable();
    truncateSync(file, statSync(file).size - 1);
    await rejects(openWarehouse(root, { verifyHashes: false }), 'E_CORRUPT', [rel]);
  }
  {
    // A file outside the partition layout.
    const { root } = await tamperable();
    mkdirSync(path.join(root, 'frames/misc'), { recursive: true });
    cpSync(path.join(root, `frames/day=${DAY}/user=bob/${BATCH}.parquet`), path.join(root, 'frames/misc/x.parquet'));
    assert.deepEqual(await problemsOf(root), [['stray', 'frames/misc/x.parquet']]);
    await rejects(openWarehouse(root, { verifyHashes: true }), 'E_CORRUPT', ['frames/misc/x.parquet']);
  }
  {
    // A damaged manifest line.
    const { root } = await tamperable();
    const m = path.join(root, '_manifest.jsonl');
    writeFileSync(m, readFileSync(m, 'utf8').replace('"rows":', '"rows":"x",'));
    await rejects(openWarehouse(root), 'E_CORRUPT', ['line 1']);
    await rejects(verifyWarehouse(root), 'E_CORRUPT', ['line 1']);
  }
  {
    // A clean warehouse verifies clean, with its totals.
    const { root } = await tamperable();
    const r = await verifyWarehouse(root, { rows: true });
    assert.deepEqual(r.problems, []);
    assert.equal(r.ok, true);
    assert.equal(r.rows, totalRows);
    assert.equal(r.tables.detections.rows, DAYDATA.detections.length);
  }
});

test('bad rows, unknown tables and path tricks are refused before anything is written', async () => {
  const root = path.join(tmpDir('vigil-wh-'), 'warehouse');
  const det = DAYDATA.detections.slice(0, 3).map((d) => ({ ...d }));
  det[2]!.score = 1.5;
  await rejects(appendRecords(root, 'detections', det, { batchId: 'b1' }), 'E_BAD_INPUT', ['detections', 'row 2', 'score']);

  const frames = DAYDATA.frames.slice(0, 2).map((f) => ({ ...f }));
  (frames[1] as Record<string, unknown>).captured_at = '2026-03-10 10:00:00';
  await rejects(appendRecords(root, 'frames', frames, { batchId: 'b1' }), 'E_BAD_INPUT', ['frames', 'row 1', 'captured_at']);
  const wrongHour = { ...DAYDATA.frames[0]!, local_hour: (DAYDATA.frames[0]!.local_hour + 1) % 24 };
  await rejects(appendRecords(root, 'frames', [wrongHour], { batchId: 'b1' }), 'E_BAD_INPUT', ['row 0', 'local_hour']);
  const noReason = { ...DAYDATA.frames.find((f) => f.status === 'invalid')!, reason: null };
  await rejects(appendRecords(root, 'frames', [noReason], { batchId: 'b1' }), 'E_BAD_INPUT', ['reason']);
  await rejects(appendRecords(root, 'frames', [{ ...DAYDATA.frames[0]!, extra: 1 } as FrameRow], { batchId: 'b1' }), 'E_BAD_INPUT', ['extra']);
  await rejects(appendRecords(root, 'non_matches', [{ ...DAYDATA.non_matches[0]!, hour: `${DAY}T10:30:00.000Z` }], { batchId: 'b1' }), 'E_BAD_INPUT', ['hour']);
  const leaky = { ...DAYDATA.deliveries[0]!, request_summary: 'POST /v3/mail/send Authorization: Bearer SG.abcdefghijklmnopqrstuvwxyz' };
  await rejects(appendRecords(root, 'deliveries', [leaky], { batchId: 'b1' }), 'E_BAD_INPUT', ['request_summary', 'credential']);
  await rejects(appendRecords(root, 'secrets' as TableName, [], { batchId: 'b1' }), 'E_BAD_INPUT', ['secrets']);

  // Path tricks: in a row's user id (the partition folder), in the batch id and the part (the file name).
  for (const user of ['../../etc', 'alice/../bob', '.', 'Alice', 'a'.repeat(64), 'al ice', 'alice\0']) {
    const row = { ...DAYDATA.alerts[0]!, user_id: user };
    await rejects(appendRecords(root, 'alerts', [row], { batchId: 'b1' }), 'E_BAD_INPUT', ['alerts row 0', 'user_id']);
  }
  for (const batchId of ['../x', 'a/b', '..', '.hidden', '', 'x'.repeat(129), 'a\\b']) {
    await rejects(appendRecords(root, 'alerts', DAYDATA.alerts.slice(0, 1), { batchId }), 'E_BAD_ID', ['batch id']);
  }
  await rejects(appendRecords(root, 'alerts', DAYDATA.alerts.slice(0, 1), { batchId: 'b1', part: '../p' }), 'E_BAD_ID', ['part']);
  assert.deepEqual(listFiles(root), [], 'nothing written');
  assert.deepEqual(await appendRecords(root, 'alerts', [], { batchId: 'b1' }), { files: [], rows: 0, skipped: [] });
});

test('an empty warehouse has every view with its columns, so queries and reports work', async () => {
  const root = path.join(tmpDir('vigil-wh-'), 'nothing-yet');
  const wh = await openWarehouse(root);
  try {
    for (const table of [...TABLE_NAMES, 'invalid_frames']) assert.deepEqual(await wh.query(`SELECT count(*) AS n FROM ${table}`), [{ n: 0 }]);
    const cols = await runReadOnlySql(wh, 'DESCRIBE frames');
    assert.deepEqual(cols.rows.map((r) => r.column_name), [...Object.keys(DAYDATA.frames[0]!), 'day', 'user']);
    assert.deepEqual((await dailyReport(wh, { date: DAY })).users, []);
    assert.deepEqual((await usersReport(wh, { from: DAY, to: DAY })).users, []);
  } finally {
    wh.close();
  }
  wh.close();
  await rejects(wh.query('SELECT 1'), 'E_BAD_INPUT', ['closed']);
});

test('filters on the day (and user) partition columns prune whole files', async () => {
  const root = await dayWarehouse();
  const wh = await openWarehouse(root);
  try {
    const files = (table: string): string[] => listFiles(path.join(root, table));
    /** "Scanning Files: k/n" of the Parquet scan in the analyzed plan. */
    const scanning = async (sql: string): Promise<[number, number]> => {
      const plan = (await wh.query(`EXPLAIN ANALYZE ${sql}`)).map((r) => String(r.explain_value)).join('\n');
      const m = /Scanning Files:\s*(\d+)\s*\/\s*(\d+)/.exec(plan);
      assert.ok(m, plan);
      return [Number(m[1]), Number(m[2])];
    };
    const det = files('detections');
    const dayFiles = det.filter((f) => f.startsWith(`day=${DAY}/`)).length;
    // The shape of the daily report's filters: day list, exact window, user.
    const window = `captured_at >= TIMESTAMPTZ '${DAY}T00:00:00Z' AND captured_at < TIMESTAMPTZ '${NEXT_DAY}T00:00:00Z'`;
    assert.deepEqual(await scanning(`SELECT count(*) FROM detections WHERE day IN ('${DAY}') AND ${window}`), [dayFiles, det.length]);
    assert.deepEqual(await scanning(`SELECT count(*) FROM detections WHERE day IN ('${DAY}') AND ${window} AND "user" = 'alice' AND user_id = 'alice'`), [1, det.length]);
    assert.deepEqual(await scanning(`SELECT count(*) FROM threats WHERE day BETWEEN '${NEXT_DAY}' AND '${NEXT_DAY}'`), [1, files('threats').length]);
    assert.ok(dayFiles < det.length);
  } finally {
    wh.close();
  }
});

test('formatTable and toCsv', () => {
  const rows = [
    { user_id: 'alice', threats: 12, classes: ['person', 'knife'], note: null },
    { user_id: 'bob', threats: 3, classes: [], note: '=HYPERLINK("x"), "quoted"' },
  ];
  const table = formatTable(rows);
  const lines = table.trimEnd().split('\n');
  assert.equal(lines.length, 4);
  assert.match(lines[0]!, /^user_id\s+threats\s+classes\s+note$/);
  assert.match(lines[2]!, /^alice\s+12\s+person,knife\s+-$/);
  assert.match(lines[3]!, /^bob\s+ 3/);
  assert.equal(formatTable([]), '(no rows)\n');
  const csv = toCsv(rows);
  assert.equal(
    csv,
    'user_id,threats,classes,note\r\nalice,12,"person,knife",\r\nbob,3,,"\'=HYPERLINK(""x""), ""quoted"""\r\n',
  );
  assert.equal(toCsv([{ n: -1 }]), 'n\r\n-1\r\n');
});

test('zoneDayStart: where a local day begins, also when its midnight happens twice or never', () => {
  assert.equal(zoneDayStart('2026-03-10', 'UTC'), '2026-03-10T00:00:00.000Z');
  assert.equal(zoneDayStart('2026-03-10', 'America/New_York'), '2026-03-10T04:00:00.000Z');
  assert.equal(zoneDayStart('2026-11-29', 'America/St_Johns'), '2026-11-29T03:30:00.000Z');
  assert.equal(zoneDayStart('2026-11-29', 'Pacific/Kiritimati'), '2026-11-28T10:00:00.000Z');
  // Havana sets its clocks back at 01:00 on 2026-11-01: local midnight happens at 04:00Z and again
  // at 05:00Z. The day begins at the first one (DuckDB's timezone() gave the second).
  assert.equal(zoneDayStart('2026-11-01', 'America/Havana'), '2026-11-01T04:00:00.000Z');
  // Havana springs forward at 00:00 on 2026-03-08: the day begins at 01:00 local (05:00Z).
  assert.equal(zoneDayStart('2026-03-08', 'America/Havana'), '2026-03-08T05:00:00.000Z');
});

test('dailyReport with a zone: a day whose midnight happens twice begins at the first one, and meets the day before', async () => {
  const wh = await openWarehouse(await dayWarehouse());
  try {
    const havana = await dailyReport(wh, { date: '2026-11-01', tz: 'America/Havana' });
    assert.equal(havana.from, '2026-11-01T04:00:00.000Z');
    const before = await dailyReport(wh, { date: '2026-10-31', tz: 'America/Havana' });
    assert.equal(before.to, havana.from, 'consecutive days meet');
  } finally {
    wh.close();
  }
});

test('clearCredentials: what a provider echoes back passes the no-secrets check once cleared, the rest of the text kept', () => {
  const row = (text: string) => ({
    alert_id: 'a'.repeat(32), channel: 'webhook', attempt: 1, at: '2026-01-01T00:00:00.000Z', request_summary: text,
    status_code: 401, response_summary: text, latency_ms: 1, outcome: 'failed',
  });
  const samples = [
    'HTTP 401 {"error":"missing Authorization: Bearer token"}',
    'authorization=Basic dXNlcjpwYXNz and bearer abc.def',
    'POST sg.alerts-receiver-prod.example.com/hook',
    'key SG.abcdefghijklmnopqrstuvwxyz and Sg.ABCDEFGHIJKLMNOPQRST',
    'rule "secret: vault" api_key=123 api-key: 456 password:hunter2 auth_token=x',
    'ends with bearer',
  ];
  for (const s of samples) {
    assert.equal(DeliveryRowSchema.safeParse(row(s)).success, s === 'ends with bearer', `raw: ${s}`);
    const cleared = clearCredentials(s);
    assert.ok(DeliveryRowSchema.safeParse(row(cleared)).success, `cleared: ${cleared}`);
  }
  assert.equal(clearCredentials(samples[0]!), 'HTTP 401 {"error":"missing [credential removed]');
  assert.equal(clearCredentials('HTTP 200 ok'), 'HTTP 200 ok');
});
