import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { loadConfig, type Config } from '../lib/config.js';
import { laneQueue } from '../lib/taskQueues.js';
import type { Device } from '../ingest/devices.js';
import type { RepoStore } from '../repos/index.js';
import { batchWorkflowId, makeBatchStarter } from '../temporal/starter.js';
import type { BatchSummary } from '../workflows/index.js';
import { seconds } from './helpers/faults.js';
import { ingestFrames, runWorker, setupDevice, startTemporal } from './helpers/pipeline.js';
import { FIXTURES, tmpDir } from './helpers/tmp.js';

const QUEUE = 'lanes-test';
const BATCHES = 4;

let env: TestWorkflowEnvironment;
let stopWorker: (() => Promise<void>) | undefined;
let store: RepoStore;
let device: Device;
let config: Config;

before(async () => {
  env = await startTemporal();
  const dir = tmpDir();
  ({ store, device } = await setupDevice(dir));
  // One activity at a time per task queue.
  config = loadConfig({
    VIGIL_DATA: dir, TEMPORAL_ADDRESS: env.address, TEMPORAL_TASK_QUEUE: QUEUE, VIGIL_THREADS: '2', VIGIL_CHUNK_SIZE: '4',
    VIGIL_WORKER_ACTIVITIES: '1', VIGIL_VALIDATE_ACTIVITIES: '1', VIGIL_DETECT_ACTIVITIES: '1',
  });
  stopWorker = (await runWorker(env, config, store)).stop;
});

after(async () => {
  await stopWorker?.();
  await env?.teardown();
});

interface Run {
  type: string;
  queue: string;
  startedMs: number;
  closedMs: number;
}

/** Each activity of a workflow's history: its type, the task queue it was scheduled on, and when it ran. */
async function activitiesOf(workflowId: string): Promise<Run[]> {
  const events = (await env.client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
  const runs = new Map<string, Run>();
  for (const e of events) {
    const s = e.activityTaskScheduledEventAttributes;
    if (s) runs.set(String(e.eventId), { type: s.activityType?.name ?? '?', queue: s.taskQueue?.name ?? '?', startedMs: NaN, closedMs: NaN });
    const st = e.activityTaskStartedEventAttributes;
    if (st) runs.get(String(st.scheduledEventId))!.startedMs = seconds(e.eventTime) * 1000;
    const done = e.activityTaskCompletedEventAttributes;
    if (done) runs.get(String(done.scheduledEventId))!.closedMs = seconds(e.eventTime) * 1000;
  }
  return [...runs.values()];
}

/** The most activities of `runs` that ran at the same moment. */
function mostAtOnce(runs: Run[]): number {
  const edges = runs.flatMap((r) => [[r.startedMs, 1], [r.closedMs, -1]] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let now = 0;
  let most = 0;
  for (const [, d] of edges) most = Math.max(most, (now += d));
  return most;
}

const overlap = (a: Run, b: Run) => a.startedMs < b.closedMs && b.startedMs < a.closedMs;

/** Pixels of its own per batch (the same pixels would skip inference through the datum keys). */
async function uniqueFrame(dir: string, fixture: string, n: number): Promise<string> {
  const file = path.join(dir, `${n}-${fixture}.png`);
  writeFileSync(file, await sharp(path.join(FIXTURES, fixture)).modulate({ brightness: 0.8 + n * 0.05 }).png().toBuffer());
  return file;
}

test('validate and detect run on task queues of their own, each with its own activity slots', async () => {
  const t0 = Date.UTC(2026, 10, 28, 9, 0, 0);
  const batches = [];
  const dir = tmpDir('vigil-lanes-');
  for (let i = 0; i < BATCHES; i++) {
    const files = await Promise.all(['chelsea.png', 'messi5.jpg'].map((f) => uniqueFrame(dir, f, i)));
    batches.push(await ingestFrames(store, files.map((file, j) => ({ device, file, atMs: t0 + i * 60_000 + j * 1000 }))));
  }
  // All batches at once, as a burst of ingest starts them.
  const start = makeBatchStarter(env.client, config);
  await Promise.all(batches.map((b) => start(b)));
  const summaries: BatchSummary[] = await Promise.all(batches.map((b) => env.client.workflow.result(batchWorkflowId(b.batchId))));
  for (const s of summaries) assert.deepEqual([s.standardized, s.detected], [2, 2], 'both frames validated and inferred');

  const runs = (await Promise.all(batches.map((b) => activitiesOf(batchWorkflowId(b.batchId))))).flat();
  const queuesOf = (type: string) => [...new Set(runs.filter((r) => r.type === type).map((r) => r.queue))];
  assert.deepEqual(queuesOf('validateStage'), [laneQueue(QUEUE, 'validate')]);
  assert.deepEqual(queuesOf('detectStage'), [laneQueue(QUEUE, 'detect')]);
  for (const type of ['rulesInForce', 'threatsStage', 'recordsStage']) assert.deepEqual(queuesOf(type), [QUEUE], type);
  // Each queue keeps to its own limit of one...
  for (const queue of [QUEUE, laneQueue(QUEUE, 'validate'), laneQueue(QUEUE, 'detect')]) {
    assert.equal(mostAtOnce(runs.filter((r) => r.queue === queue)), 1, `one activity at a time on ${queue}`);
  }
  // ...so a batch validates while another's frames are inferred (on one shared queue with one slot,
  // no two activities could ever overlap).
  const validates = runs.filter((r) => r.type === 'validateStage');
  assert.ok(runs.some((d) => d.type === 'detectStage' && validates.some((v) => overlap(v, d))), 'a validate ran while a detect did');
});
