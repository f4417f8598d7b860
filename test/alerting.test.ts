import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import { DeviceRegistry } from '../ingest/devices.js';
import { listFiles, openStore, readJson, type RepoStore } from '../repos/index.js';
import { AlertDocSchema } from '../stages/alerts.js';
import { readAttempts, readLedger } from '../stages/ledger.js';
import { traceAlert } from '../stages/trace.js';
import { warehouseRoot } from '../stages/records.js';
import { batchWorkflowId, makeBatchStarter } from '../temporal/starter.js';
import { createVigilWorker } from '../temporal/worker.js';
import { dailyReport, openWarehouse, runReadOnlySql } from '../warehouse/index.js';
import type { BatchSummary } from '../workflows/index.js';
import { ingestFrames, startTemporal, testConfig } from './helpers/pipeline.js';
import { startSendGrid, startWebhookReceiver, type ProviderServer, type SendGridServer } from './helpers/providers.js';
import { tmpDir } from './helpers/tmp.js';

const T0 = Date.UTC(2026, 10, 26, 8, 0, 0);
const HOUR = 3_600_000;

let env: TestWorkflowEnvironment;
let sendgrid: SendGridServer;
let hook: ProviderServer;

/** A rules folder: cats for alice (rule 100), people >= 0.95 for bob (rule 200), carol's own person include and a lobby that excludes person. */
function writeRules(dir: string, hookUrl: string): string {
  const rules = path.join(dir, 'rules');
  mkdirSync(path.join(rules, 'users'), { recursive: true });
  writeFileSync(path.join(rules, 'global.yaml'), 'rules:\n  - { id: 100, name: animals, unsafe: [dog, cat, raccoon], minScore: 0.8 }\n  - { id: 200, name: people, unsafe: [person], minScore: 0.95 }\n');
  writeFileSync(path.join(rules, 'users', 'alice.yaml'), `user: alice\nrules: [100]\ncontacts:\n  email: [alice@example.com]\n  webhook:\n    - { url: "${hookUrl}", format: generic }\n`);
  writeFileSync(path.join(rules, 'users', 'bob.yaml'), 'user: bob\nrules: [200]\ncontacts:\n  email: [bob@example.com]\n');
  writeFileSync(path.join(rules, 'users', 'carol.yaml'), 'user: carol\ninclude: [{ class: person, minScore: 0.5 }]\ncontacts:\n  email: [carol@example.com]\ndevices:\n  lobby:\n    exclude: [person]\n');
  return rules;
}

async function setup() {
  const dir = tmpDir();
  const store = openStore(dir);
  const reg = new DeviceRegistry(dir);
  const dev = async (user: string, device: string) => (await reg.add({ user, device, site: 'hq', tz: 'Europe/Paris' })).device;
  const devices = { alice: await dev('alice', 'cam1'), bob: await dev('bob', 'cam1'), carol: await dev('carol', 'cam1'), lobby: await dev('carol', 'lobby') };
  const rules = writeRules(dir, hook.url);
  return { dir, store, devices, rules };
}

function channelEnv(): Record<string, string> {
  return { SENDGRID_API_KEY: sendgrid.apiKey, SENDGRID_BASE_URL: sendgrid.url, ALERT_EMAIL_FROM: 'vigil@example.com', ALERT_TIMEOUT_MS: '2000' };
}

const accepted = (s: ProviderServer, pred: (body: string) => boolean = () => true) => s.received.filter((r) => r.status !== null && r.status < 300 && pred(r.body));

before(async () => {
  env = await startTemporal();
  sendgrid = await startSendGrid();
  hook = await startWebhookReceiver();
});
after(async () => {
  await sendgrid?.close();
  await hook?.close();
  await env?.teardown();
});

async function withWorker<T>(dir: string, rules: string, queue: string, fn: (run: (b: Awaited<ReturnType<typeof ingestFrames>>) => Promise<BatchSummary>) => Promise<T>): Promise<T> {
  Object.assign(process.env, channelEnv());
  const config = testConfig(dir, env.address, queue);
  Object.assign(config, { VIGIL_RULES: rules, VIGIL_ALERT_MAX_ATTEMPTS: 5 });
  const { worker, close } = await createVigilWorker(config, env.nativeConnection);
  const running = worker.run();
  try {
    return await fn(async (batch) => {
      await makeBatchStarter(env.client, config)(batch);
      return env.client.workflow.result(batchWorkflowId(batch.batchId));
    });
  } finally {
    worker.shutdown();
    await running;
    await close();
  }
}

/**
 * Runs `batch` on a `vigil worker` process (local providers, 60 s alert timeout), SIGKILLs it once
 * `reached()` holds (after `beforeKill`), then lets a new worker finish the batch (one alert).
 */
async function killDuringAlerts(dir: string, rules: string, queue: string, batch: Awaited<ReturnType<typeof ingestFrames>>, reached: () => boolean, beforeKill?: () => void): Promise<void> {
  const spawnWorker = (): ChildProcess =>
    spawn(process.execPath, [path.resolve(import.meta.dirname, '../bin/vigil.js'), 'worker'], {
      env: { ...process.env, ...channelEnv(), ALERT_TIMEOUT_MS: '60000', VIGIL_DATA: dir, VIGIL_RULES: rules, TEMPORAL_ADDRESS: env.address, TEMPORAL_TASK_QUEUE: queue, VIGIL_THREADS: '1' },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
  let worker = spawnWorker();
  await makeBatchStarter(env.client, testConfig(dir, env.address, queue))(batch);
  const deadline = Date.now() + 120_000;
  while (!reached()) {
    assert.ok(Date.now() < deadline, 'the alerts stage got that far');
    await new Promise((r) => setTimeout(r, 50));
  }
  beforeKill?.();
  worker.kill('SIGKILL');
  await new Promise((r) => worker.once('exit', r));
  worker = spawnWorker();
  try {
    const summary: BatchSummary = await env.client.workflow.result(batchWorkflowId(batch.batchId));
    assert.equal(summary.alerts, 1);
  } finally {
    worker.kill('SIGTERM');
    await new Promise((r) => worker.once('exit', r));
  }
}

async function alertDocs(store: RepoStore) {
  const files = (await listFiles(store, 'alerts')).filter((f) => !f.path.startsWith('cooldowns/'));
  return Promise.all(files.map(async (f) => AlertDocSchema.parse(await readJson(store, 'alerts', f.path))));
}

test('rules decide who is alerted; each alert is delivered exactly once per channel and everything is on record', async () => {
  sendgrid.reset();
  hook.reset();
  const { dir, store, devices, rules } = await setup();
  const batch = await ingestFrames(store, [
    { device: devices.alice, file: 'chelsea.png', atMs: T0 },
    { device: devices.alice, file: 'astronaut.png', atMs: T0 + 1000 },
    { device: devices.bob, file: 'chelsea.png', atMs: T0 + 2000 },
    { device: devices.bob, file: 'astronaut.png', atMs: T0 + 3000 },
    { device: devices.carol, file: 'messi5.jpg', atMs: T0 + 4000 },
    { device: devices.lobby, file: 'messi5.jpg', atMs: T0 + 5000 },
    { device: devices.lobby, file: 'truncated.jpg', atMs: T0 + 6000 },
  ]);
  const summary = await withWorker(dir, rules, 'alerting-1', (run) => run(batch));
  assert.equal(summary.frames, 7);
  assert.ok(summary.rulesCommit, 'rules were versioned');

  const alerts = await alertDocs(store);
  const who = alerts.map((a) => `${a.alert.user}/${a.alert.device}:${a.alert.ruleId}`).sort();
  assert.deepEqual(who, ['alice/cam1:100', 'carol/cam1:0'], 'chelsea alerts alice only; astronaut alerts nobody; the lobby never alerts on people');
  const cat = alerts.find((a) => a.alert.user === 'alice')!;
  assert.ok(cat.alert.matches.some((m) => m.class === 'cat' && m.score >= 0.8));
  assert.equal(cat.alert.rulesCommit, summary.rulesCommit);
  const hops = await traceAlert(store, cat.alert.alertId);
  assert.deepEqual(hops.map((h) => h.at.split('@')[0]), ['alerts', 'detections', 'standardized', 'frames'], 'alert -> detection -> standardized -> frame');
  assert.match(hops.at(-1)!.verified, new RegExp(cat.alert.frameId));
  // The id as the alert messages show it (#<first 8 digits>), in any case; fewer digits are refused.
  assert.deepEqual(await traceAlert(store, cat.alert.alertId.slice(0, 8).toUpperCase()), hops);
  await assert.rejects(traceAlert(store, cat.alert.alertId.slice(0, 7)), (e: Error & { code?: string }) => e.code === 'E_BAD_ID');

  // Delivered exactly once each, to the local SendGrid and webhook servers.
  assert.equal(accepted(sendgrid).length, 2);
  assert.equal(accepted(sendgrid, (b) => b.includes('alice@example.com')).length, 1);
  assert.equal(accepted(sendgrid, (b) => b.includes('carol@example.com')).length, 1);
  assert.equal(accepted(hook).length, 1);
  assert.equal(hook.received[0]!.headers['idempotency-key'], cat.alert.alertId);

  // Every attempt is in the ledger and the warehouse; the daily report matches the repos.
  const attempts = (await Promise.all(alerts.map((a) => readAttempts(store, a.alert.alertId)))).flat();
  assert.equal(attempts.length, 3);
  assert.ok(attempts.every((a) => a.outcome === 'delivered' && !JSON.stringify(a).includes(sendgrid.apiKey)));
  const wh = await openWarehouse(warehouseRoot(store));
  try {
    const [{ n }] = (await wh.query('SELECT count(*)::INTEGER AS n FROM deliveries')) as [{ n: number }];
    assert.equal(n, attempts.length);
    const report = await dailyReport(wh, { date: '2026-11-26' });
    const threatDocs = await Promise.all((await listFiles(store, 'threats')).map(async (f) => (await readJson<{ decision: { unsafe: boolean } }>(store, 'threats', f.path))!));
    const unsafeFrames = threatDocs.filter((d) => d.decision.unsafe).length;
    // The Daily Threat Report's numbers, per user, equal what the repos hold.
    const threatDocsByUser = new Map<string, { matches: number; frames: number }>();
    for (const f of await listFiles(store, 'threats')) {
      const d = (await readJson<{ user: string; decision: { unsafe: boolean; matches: unknown[] } }>(store, 'threats', f.path))!;
      const t = threatDocsByUser.get(d.user) ?? { matches: 0, frames: 0 };
      if (d.decision.unsafe) threatDocsByUser.set(d.user, { matches: t.matches + d.decision.matches.length, frames: t.frames + 1 });
    }
    const alertsByUser = new Map<string, number>();
    for (const a of alerts) alertsByUser.set(a.alert.user, (alertsByUser.get(a.alert.user) ?? 0) + 1);
    for (const u of report.users) {
      assert.equal(u.threats.total, threatDocsByUser.get(u.userId)?.matches ?? 0, `threat matches of ${u.userId}`);
      assert.equal(u.threats.frames, threatDocsByUser.get(u.userId)?.frames ?? 0, `unsafe frames of ${u.userId}`);
    }
    assert.deepEqual(report.users.map((u) => u.userId).sort(), ['alice', 'bob', 'carol']);
    // Alerts count on the day they were created (today: the frames were captured earlier).
    const created = alerts[0]!.alert.createdAt.slice(0, 10);
    const today = await dailyReport(wh, { date: created });
    for (const user of ['alice', 'bob', 'carol']) {
      const u = today.users.find((x) => x.userId === user);
      assert.equal(u?.alerts.total ?? 0, alertsByUser.get(user) ?? 0, `alerts of ${user}`);
      assert.equal(u?.alerts.delivered ?? 0, alertsByUser.get(user) ?? 0, `all of ${user}'s alerts delivered`);
      assert.equal(u?.deliveries.attempts ?? 0, attempts.filter((a) => alerts.some((x) => x.alert.alertId === a.alertId && x.alert.user === user)).length, `delivery attempts of ${user}`);
    }
    const [{ frames, unsafe, invalid }] = (await wh.query(
      "SELECT count(DISTINCT f.tag)::INTEGER AS frames, (SELECT count(DISTINCT tag)::INTEGER FROM threats) AS unsafe, count(*) FILTER (WHERE f.status = 'invalid')::INTEGER AS invalid FROM frames f",
    )) as [{ frames: number; unsafe: number; invalid: number }];
    assert.equal(frames, (await listFiles(store, 'frames')).length);
    assert.equal(unsafe, unsafeFrames);
    assert.equal(invalid, (await listFiles(store, 'invalid')).length);
  } finally {
    wh.close();
  }
  // A damaged alert document does not stop the trace of another alert; it is named when it may
  // be the one asked for.
  const fault = alerts.find((a) => a.alert.user === 'carol')!;
  let faultPath = '';
  let faultOid = '';
  for (const f of await listFiles(store, 'alerts')) {
    if ((await readJson<{ alert?: { alertId: string } }>(store, 'alerts', f.path))?.alert?.alertId === fault.alert.alertId) [faultPath, faultOid] = [f.path, f.oid];
  }
  const faultFile = path.join(dir, 'repos', 'alerts.git', 'objects', faultOid.slice(0, 2), faultOid.slice(2));
  chmodSync(faultFile, 0o644);
  writeFileSync(faultFile, 'damaged');
  assert.deepEqual(await traceAlert(store, cat.alert.alertId), hops);
  await assert.rejects(traceAlert(store, fault.alert.alertId), (e: Error & { code?: string }) => e.code === 'E_CORRUPT' && e.message.includes(`alerts@main:${faultPath}`));

  // An auditor's trace fails, naming the hop, once the source frame's bytes are tampered with.
  const objectFile = path.join(dir, 'objects', cat.alert.frameId.slice(0, 2), cat.alert.frameId.slice(2));
  chmodSync(objectFile, 0o644);
  writeFileSync(objectFile, 'not the frame');
  await assert.rejects(traceAlert(store, cat.alert.alertId), (e: Error & { code?: string }) => e.code === 'E_HASH_MISMATCH' && e.message.startsWith(`${hops.at(-1)!.at}: `) && e.message.includes(cat.alert.frameId));
});

test('a SendGrid outage (500s) then recovery: delivered once, every failed attempt recorded', async () => {
  sendgrid.reset();
  hook.reset();
  const { dir, store, devices, rules } = await setup();
  const batch = await ingestFrames(store, [{ device: devices.alice, file: 'chelsea.png', atMs: T0 + 2 * HOUR }]);
  sendgrid.failNext(2, 500);
  const summary = await withWorker(dir, rules, 'alerting-2', (run) => run(batch));
  assert.equal(summary.alerts, 1);
  assert.equal(sendgrid.received.length, 3, 'two 500s, then the one that got through');
  assert.equal(accepted(sendgrid).length, 1, 'delivered once');
  const [doc] = await alertDocs(store);
  const attempts = await readAttempts(store, doc!.alert.alertId);
  const email = attempts.filter((a) => a.channel === 'email');
  assert.deepEqual(email.map((a) => [a.attempt, a.statusCode, a.outcome]), [[1, 500, 'retry'], [2, 500, 'retry'], [3, 202, 'delivered']]);
  assert.equal(attempts.filter((a) => a.channel === 'webhook').length, 1, 'the webhook went through once, not once per email retry');
});

test('a webhook refusing with a text that quotes a credential header: failed at once, recorded without it, the batch completes', { timeout: 120_000 }, async () => {
  sendgrid.reset();
  hook.reset();
  const { dir, store, devices, rules } = await setup();
  const batch = await ingestFrames(store, [{ device: devices.alice, file: 'chelsea.png', atMs: T0 + 3 * HOUR }]);
  hook.failNext(1, 401);
  const summary = await withWorker(dir, rules, 'alerting-401', (run) => run(batch));
  assert.equal(summary.alerts, 1);
  assert.equal(hook.received.length, 1, 'a 401 is not retried');
  const [doc] = await alertDocs(store);
  const wh = await openWarehouse(path.join(dir, 'warehouse'));
  try {
    const rows = (await runReadOnlySql(wh, `SELECT channel, outcome, status_code, response_summary FROM deliveries WHERE alert_id = '${doc!.alert.alertId}' AND channel = 'webhook'`)).rows;
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.outcome, 'failed');
    assert.equal(rows[0]!.status_code, 401);
    assert.match(String(rows[0]!.response_summary), /missing \[credential removed\]/);
    assert.doesNotMatch(String(rows[0]!.response_summary), /Bearer|Authorization/i);
  } finally {
    wh.close();
  }
});

test('a camera that keeps matching is suppressed by the cooldown, recorded not lost; a blank frame is an equipment alert', async () => {
  sendgrid.reset();
  hook.reset();
  const { dir, store, devices, rules } = await setup();
  const sharp = (await import('sharp')).default;
  const blank = await sharp({ create: { width: 640, height: 480, channels: 3, background: { r: 128, g: 128, b: 128 } } }).jpeg().toBuffer();
  const blankFile = path.join(dir, 'blank.jpg');
  writeFileSync(blankFile, blank);
  const batch = await ingestFrames(store, [
    { device: devices.alice, file: 'chelsea.png', atMs: T0 + 5 * HOUR },
    { device: devices.alice, file: 'chelsea.png', atMs: T0 + 5 * HOUR + 60_000 },
    { device: devices.bob, file: blankFile, atMs: T0 + 5 * HOUR },
  ]);
  const summary = await withWorker(dir, rules, 'alerting-3', (run) => run(batch));
  assert.equal(summary.cameraFaults, 1);
  const alerts = await alertDocs(store);
  const cats = alerts.filter((a) => a.alert.kind === 'threat');
  assert.deepEqual(cats.map((a) => a.status).sort(), ['pending', 'suppressed']);
  const fault = alerts.find((a) => a.alert.kind === 'camera_fault');
  assert.equal(fault?.alert.user, 'bob');
  assert.equal(accepted(sendgrid, (b) => b.includes('alice@example.com')).length, 1, 'one email for two cat frames a minute apart');
  assert.equal(accepted(sendgrid, (b) => b.includes('bob@example.com')).length, 1, 'bob is told his camera looks broken');
  const wh = await openWarehouse(warehouseRoot(store));
  try {
    const rows = (await wh.query("SELECT status, count(*)::INTEGER AS n FROM alerts GROUP BY status ORDER BY status")) as { status: string; n: number }[];
    assert.deepEqual(rows, [{ status: 'delivered', n: 2 }, { status: 'suppressed', n: 1 }]);
  } finally {
    wh.close();
  }
});

test('killing the worker during the alerts stage and restarting sends no duplicate', async () => {
  sendgrid.reset();
  hook.reset();
  const { dir, store, devices, rules } = await setup();
  const batch = await ingestFrames(store, [{ device: devices.alice, file: 'chelsea.png', atMs: T0 + 9 * HOUR }]);
  hook.hangNext(1); // the email goes through, then the worker is stuck on the webhook
  await killDuringAlerts(dir, rules, 'alerting-kill', batch, () => hook.received.length > 0, () => assert.equal(accepted(sendgrid).length, 1));
  assert.equal(accepted(sendgrid).length, 1, 'the email was not sent again');
  assert.equal(sendgrid.received.length, 1);
  assert.equal(accepted(hook).length, 1, 'the webhook was delivered after the restart');
});

test('a worker killed while SendGrid holds the request: the e-mail is not sent again, its attempt is recorded as unknown', async () => {
  sendgrid.reset();
  hook.reset();
  const { dir, store, devices, rules } = await setup();
  const batch = await ingestFrames(store, [{ device: devices.alice, file: 'chelsea.png', atMs: T0 + 10 * HOUR }]);
  // SendGrid gets the e-mail and holds it: the worker is killed with the request out and no answer.
  sendgrid.hangNext(1);
  await killDuringAlerts(dir, rules, 'alerting-kill-send', batch, () => sendgrid.received.length > 0);
  assert.equal(sendgrid.received.length, 1, 'the e-mail was not sent a second time');
  assert.equal(accepted(hook).length, 1, 'the webhook (idempotent) was delivered');
  const [doc] = await alertDocs(store);
  const ledger = await readLedger(store, doc!.alert.alertId);
  const email = ledger.attempts.filter((a) => a.channel === 'email');
  assert.deepEqual(email.map((a) => a.outcome), ['unknown']);
  assert.match(email[0]!.responseSummary, /worker stopped during the request/);
  assert.equal(ledger.sending.filter((m) => m.channel === 'email').length, 1, 'the mark written before the request');
  assert.deepEqual(ledger.sending.filter((m) => m.channel === 'webhook'), [], 'no mark on an idempotent channel');
});
