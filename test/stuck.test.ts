/**
 * A batch held by an activity that fails on every try, found on the real Temporal server: what
 * `GET /v1/health` reports as a problem under `vigil start`.
 */
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { batchWorkflowId, makeBatchStarter } from '../temporal/starter.js';
import { findStuckActivities } from '../temporal/stuck.js';
import { ingestFixtures, runWorker, setupDevice, startTemporal, testConfig } from './helpers/pipeline.js';
import { tmpDir } from './helpers/tmp.js';

let env: TestWorkflowEnvironment;

before(async () => {
  env = await startTemporal();
});
after(async () => {
  await env?.teardown();
});

test('an activity failing on every try is found with its attempt and failure; once it succeeds, nothing is', { timeout: 180_000 }, async () => {
  const dir = tmpDir();
  const { store, device } = await setupDevice(dir);
  const config = testConfig(dir, env.address, 'stuck-test');
  // The warehouse folder is a file: the records stage fails (a storage error, retried) on every try.
  const warehouse = path.join(dir, 'warehouse');
  writeFileSync(warehouse, 'not a folder');
  const { stop } = await runWorker(env, config, store);
  try {
    const batch = await ingestFixtures(store, device, ['home.jpg']);
    await makeBatchStarter(env.client, config)(batch);
    const look = () => findStuckActivities(env.client, { taskQueue: config.TEMPORAL_TASK_QUEUE, minAttempts: 3 });
    let stuck = await look();
    for (const t0 = Date.now(); stuck.length === 0 && Date.now() - t0 < 60_000; stuck = await look()) await new Promise((r) => setTimeout(r, 500));
    assert.equal(stuck.length, 1, 'the records stage, retried');
    assert.equal(stuck[0]!.activityType, 'recordsStage');
    assert.ok(stuck[0]!.attempt >= 3);
    assert.match(stuck[0]!.workflowId, new RegExp(batchWorkflowId(batch.batchId)));
    assert.match(stuck[0]!.lastFailure, /warehouse|ENOTDIR|EEXIST|not a directory/i);
    assert.deepEqual(await findStuckActivities(env.client, { taskQueue: 'another-queue', minAttempts: 3 }), [], 'only this task queue');

    // Fixed: the next retry succeeds, the batch completes, nothing is stuck.
    rmSync(warehouse);
    const summary = await env.client.workflow.result(batchWorkflowId(batch.batchId));
    assert.equal(summary.frames, 1);
    assert.deepEqual(await look(), []);
  } finally {
    await stop();
  }
});
