/**
 * Nightly reprocessing on the real Temporal server: past frames go through the DAG again under
 * the rules in force; unchanged work is skipped; new alerts are recorded, never sent; the
 * schedule is created, updated and removed from the settings.
 */
import assert from 'node:assert/strict';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { ScheduleNotFoundError } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Device } from '../ingest/devices.js';
import { listFiles, readJson, resolveRef, type RepoStore } from '../repos/index.js';
import { AlertDocSchema } from '../stages/alerts.js';
import { openWarehouse, runReadOnlySql } from '../warehouse/index.js';
import { ledgerFile, readAttempts } from '../stages/ledger.js';
import { traceAlert } from '../stages/trace.js';
import { ensureReprocessSchedule, reprocessScheduleId } from '../temporal/schedule.js';
import { batchWorkflowId, makeBatchStarter } from '../temporal/starter.js';
import type { ReprocessSummary } from '../workflows/index.js';
import { ingestFixtures, runWorker, setupDevice, startTemporal, testConfig } from './helpers/pipeline.js';
import { tmpDir } from './helpers/tmp.js';

const T0 = Date.UTC(2026, 10, 27, 21, 0, 0);
let env: TestWorkflowEnvironment;
let stopWorker: (() => Promise<void>) | undefined;
let store: RepoStore;
let device: Device;
let rulesDir: string;
let config: ReturnType<typeof testConfig>;

function writeRules(unsafe: string[]): void {
  mkdirSync(path.join(rulesDir, 'users'), { recursive: true });
  writeFileSync(path.join(rulesDir, 'global.yaml'), `rules:\n  - { id: 100, name: animals, unsafe: [${unsafe.join(', ')}], minScore: 0.5 }\n`);
  writeFileSync(path.join(rulesDir, 'users', 'alice.yaml'), 'user: alice\nrules: [100]\ncontacts:\n  email: [alice@example.com]\n');
}

before(async () => {
  env = await startTemporal();
  const dir = tmpDir();
  ({ store, device } = await setupDevice(dir));
  rulesDir = path.join(dir, 'rules-src');
  writeRules(['dog']);
  config = { ...testConfig(dir, env.address, 'reprocess-test'), VIGIL_RULES: rulesDir };
  stopWorker = (await runWorker(env, config, store)).stop;
});

after(async () => {
  await stopWorker?.();
  await env?.teardown();
});

const reprocess = (id: string, at = T0) =>
  env.client.workflow.execute('reprocessWorkflow', { taskQueue: config.TEMPORAL_TASK_QUEUE, workflowId: id, args: [{ window: { fromMs: at - 3_600_000, toMs: at + 3_600_000 }, pageSize: 1 }] }) as Promise<ReprocessSummary>;

/** Rows per warehouse table, and the alerts' statuses. */
async function warehouseCounts(): Promise<Record<string, unknown>> {
  const wh = await openWarehouse(path.join(store.dataDir, 'warehouse'));
  try {
    const tables = ['frames', 'detections', 'threats', 'non_matches', 'alerts', 'deliveries'];
    const r = await runReadOnlySql(wh, tables.map((t) => `(SELECT count(*) FROM ${t}) AS ${t}`).join(', ').replace(/^/, 'SELECT '));
    const statuses = await runReadOnlySql(wh, 'SELECT status, count(*) AS n FROM alerts GROUP BY status ORDER BY status');
    return { ...r.rows[0], alertStatuses: statuses.rows };
  } finally {
    wh.close();
  }
}

test('reprocessing under new rules: past frames decided again without inference, new alerts recorded and never sent', async () => {
  const batch = await ingestFixtures(store, device, ['chelsea.png', 'home.jpg', 'truncated.jpg'], T0);
  await makeBatchStarter(env.client, config)(batch);
  const live = await env.client.workflow.result(batchWorkflowId(batch.batchId));
  assert.equal(live.unsafe, 0, 'a cat is safe while the rules only name dogs');
  assert.equal(live.alerts, 0);
  const detectionsBefore = await resolveRef(store, 'detections', 'main');
  const onRecord = await warehouseCounts();
  assert.equal(onRecord.frames, 3);
  assert.ok(Number(onRecord.detections) > 0 && Number(onRecord.non_matches) > 0, JSON.stringify(onRecord));

  writeRules(['dog', 'cat']);
  const first = await reprocess('reprocess-1');
  assert.equal(first.frames, 3, 'every decided frame of the window, the invalid one too');
  assert.equal(first.batches, 3, 'one child batch per page of 1 frame');
  assert.equal(first.detected, 0, 'same images, same model: no inference');
  assert.equal(first.unsafe, 1);
  assert.equal(first.alerts, 1);
  assert.equal(await resolveRef(store, 'detections', 'main'), detectionsBefore, 'no new detections commit');
  const alerts = await Promise.all((await listFiles(store, 'alerts')).filter((f) => !f.path.startsWith('cooldowns/')).map(async (f) => AlertDocSchema.parse(await readJson(store, 'alerts', f.path))));
  assert.equal(alerts.length, 1);
  assert.equal(alerts[0]!.status, 'recorded');
  assert.deepEqual(alerts[0]!.deliveries, [], 'planned on no channel');
  assert.deepEqual(await readAttempts(store, alerts[0]!.alert.alertId), [], 'nothing sent, not even to the outbox');
  assert.deepEqual((await listFiles(store, 'alerts')).filter((f) => f.path.startsWith('cooldowns/')), [], 'no cooldown moved by an alert never sent');
  // The warehouse keeps the live history: the frames, detections and decisions are not counted
  // again; the recorded alert is added, as recorded.
  const afterFirst = await warehouseCounts();
  assert.deepEqual(afterFirst, { ...onRecord, alerts: 1, alertStatuses: [{ status: 'recorded', n: 1 }] });

  // Again with nothing changed: no new decision, the same alert.
  const threatsHead = await resolveRef(store, 'threats', 'main');
  const second = await reprocess('reprocess-2');
  assert.deepEqual([second.frames, second.detected, second.unsafe, second.alerts], [3, 0, 1, 1]);
  assert.equal(await resolveRef(store, 'threats', 'main'), threatsHead, 'same rules: no new threats commit');
  assert.deepEqual(await warehouseCounts(), afterFirst, 'the same recorded alert is not appended again');

  // Newer rules again: the frame is decided anew and its recorded alert replaced by one with a new
  // id. The warehouse still lists the first id, and the auditor can still trace it, from history.
  const firstId = alerts[0]!.alert.alertId;
  const firstHops = await traceAlert(store, firstId);
  writeRules(['dog', 'cat', 'bird']);
  const third = await reprocess('reprocess-3');
  assert.equal(third.alerts, 1);
  const [now] = await Promise.all((await listFiles(store, 'alerts')).filter((f) => !f.path.startsWith('cooldowns/')).map(async (f) => AlertDocSchema.parse(await readJson(store, 'alerts', f.path))));
  assert.ok(now && now.alert.alertId !== firstId, 'a new recorded alert replaced it at main');
  const replaced = await traceAlert(store, firstId.slice(0, 8));
  assert.match(replaced[0]!.at, /^alerts@[0-9a-f]{40}:/, 'found at the commit that still has it');
  assert.match(replaced[0]!.what, new RegExp(`^alert ${firstId} .*, recorded; replaced at main by a later run$`));
  assert.deepEqual(replaced.slice(1), firstHops.slice(1), 'the same verified hops to the same frame');
  assert.ok((await traceAlert(store, now.alert.alertId))[0]!.at.startsWith('alerts@main:'));
  await assert.rejects(traceAlert(store, '0123456789abcdef'), (e: Error & { code?: string }) => e.code === 'E_NOT_FOUND' && /or its history/.test(e.message));
});

test('the nightly schedule follows the settings: created, updated, triggered, removed', async () => {
  const id = await ensureReprocessSchedule(env.client, { ...config, VIGIL_REPROCESS_CRON: '30 3 * * *' });
  assert.equal(id, reprocessScheduleId(config));
  const handle = env.client.schedule.getHandle(id!);
  let d = await handle.describe();
  assert.equal(d.action.type, 'startWorkflow');
  assert.equal(d.action.type === 'startWorkflow' && d.action.workflowType, 'reprocessWorkflow');
  const hours = (x: typeof d) => x.spec.calendars?.map((c) => JSON.stringify([c.hour, c.minute])) ?? [];
  assert.deepEqual(hours(d), [JSON.stringify([[{ start: 3, end: 3, step: 1 }], [{ start: 30, end: 30, step: 1 }]])]);
  await ensureReprocessSchedule(env.client, { ...config, VIGIL_REPROCESS_CRON: '0 2 * * *' });
  d = await handle.describe();
  assert.deepEqual(hours(d), [JSON.stringify([[{ start: 2, end: 2, step: 1 }], [{ start: 0, end: 0, step: 1 }]])], 'updated in place');
  // Triggered now: a reprocessing run starts on the worker's task queue and completes.
  await handle.trigger();
  let runId: string | undefined;
  for (let i = 0; i < 120 && !runId; i++) {
    runId = (await handle.describe()).info.recentActions[0]?.action.workflow.workflowId;
    if (!runId) await new Promise((r) => setTimeout(r, 250));
  }
  assert.ok(runId, 'the schedule started a workflow');
  const summary = (await env.client.workflow.getHandle(runId).result()) as ReprocessSummary;
  assert.ok(summary.window.from < summary.window.to);
  assert.equal(await ensureReprocessSchedule(env.client, { ...config, VIGIL_REPROCESS_CRON: 'off' }), null);
  await assert.rejects(handle.describe(), (e) => e instanceof ScheduleNotFoundError);
});

test('a live alert outlives reprocessing under other rules: same document, same id, still traceable, nothing sent again', async () => {
  const T1 = T0 + 6 * 3_600_000;
  writeRules(['dog', 'cat']);
  const batch = await ingestFixtures(store, device, ['chelsea.png'], T1);
  await makeBatchStarter(env.client, config)(batch);
  const live = await env.client.workflow.result(batchWorkflowId(batch.batchId));
  assert.equal(live.alerts, 1, 'the cat is a threat: one live alert');
  const docs = async () =>
    Promise.all((await listFiles(store, 'alerts')).filter((f) => !f.path.startsWith('cooldowns/')).map(async (f) => ({ path: f.path, doc: AlertDocSchema.parse(await readJson(store, 'alerts', f.path)) })));
  const mine = (all: Awaited<ReturnType<typeof docs>>) => all.filter((d) => d.doc.alert.capturedAt === new Date(T1).toISOString());
  const [before] = mine(await docs());
  assert.ok(before);
  assert.equal(before.doc.status, 'pending');
  const sent = await readAttempts(store, before.doc.alert.alertId);
  assert.ok(sent.length > 0, 'delivered (to the outbox: no credentials here)');
  // As if its delivery had not ended (a live batch still retrying, or cut short): reprocessing must
  // not deliver it, that is the live batch's business. Its ledger is set aside meanwhile.
  const ledger = ledgerFile(store, before.doc.alert.alertId);
  renameSync(ledger, `${ledger}.aside`);

  // New rules (one more class): a new rules version, so reprocessing decides the frame again and
  // its alert would get a new id.
  writeRules(['dog', 'cat', 'bird']);
  const r = await reprocess('reprocess-live', T1);
  assert.equal(r.unsafe, 1);
  assert.equal(r.alerts, 1);
  assert.deepEqual(await readAttempts(store, before.doc.alert.alertId), [], 'reprocessing delivered nothing');
  renameSync(`${ledger}.aside`, ledger);
  const after = mine(await docs());
  assert.equal(after.length, 1);
  assert.equal(after[0]!.path, before.path);
  assert.equal(after[0]!.doc.alert.alertId, before.doc.alert.alertId, 'the alert its user got is kept, not replaced by a recorded one');
  assert.equal(after[0]!.doc.status, 'pending');
  assert.deepEqual(await readAttempts(store, before.doc.alert.alertId), sent, 'nothing sent again');
  const hops = await traceAlert(store, before.doc.alert.alertId);
  assert.ok(hops.length >= 4, 'the auditor still traces it to its frame');
});
