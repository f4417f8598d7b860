import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { readFile } from 'node:fs/promises';
import { batchIndexFile, fsck, listFiles } from '../repos/index.js';
import { batchWorkflowId, makeBatchStarter } from '../temporal/starter.js';
import type { BatchSummary } from '../workflows/index.js';
import { ingestFixtures, setupDevice, startTemporal, testConfig } from './helpers/pipeline.js';
import { tmpDir } from './helpers/tmp.js';

const BIN = path.resolve(import.meta.dirname, '../bin/vigil.js');
let env: TestWorkflowEnvironment;

before(async () => {
  env = await startTemporal();
});
after(async () => {
  await env?.teardown();
});

function spawnWorker(dataDir: string, taskQueue: string): ChildProcess {
  return spawn(process.execPath, [BIN, 'worker'], {
    env: { ...process.env, VIGIL_DATA: dataDir, TEMPORAL_ADDRESS: env.address, TEMPORAL_TASK_QUEUE: taskQueue, VIGIL_THREADS: '1' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}

test('killing the worker (SIGKILL) mid-batch and starting it again finishes the batch, nothing lost or doubled', async () => {
  const dir = tmpDir();
  const { store, device } = await setupDevice(dir);
  const files = ['chelsea.png', 'astronaut.png', 'camera.png', 'messi5.jpg', 'coffee.png', 'rocket.jpg', 'home.jpg', 'motorcycle_left.png', 'truncated.jpg'];
  const batch = await ingestFixtures(store, device, files);
  const config = testConfig(dir, env.address, 'faults-kill');
  let worker = spawnWorker(dir, 'faults-kill');
  await makeBatchStarter(env.client, config)(batch);
  // Wait until the first stage has committed, then kill the worker in the middle of the batch.
  const deadline = Date.now() + 120_000;
  while ((await listFiles(store, 'standardized').catch(() => [])).length === 0) {
    assert.ok(Date.now() < deadline, 'validation started');
    await new Promise((r) => setTimeout(r, 100));
  }
  worker.kill('SIGKILL');
  await new Promise((r) => worker.once('exit', r));
  worker = spawnWorker(dir, 'faults-kill');
  try {
    const summary: BatchSummary = await env.client.workflow.result(batchWorkflowId(batch.batchId));
    assert.equal(summary.frames, files.length);
  } finally {
    worker.kill('SIGTERM');
    await new Promise((r) => worker.once('exit', r));
  }
  const std = (await listFiles(store, 'standardized')).map((f) => f.path);
  const inv = (await listFiles(store, 'invalid')).map((f) => f.path);
  const det = (await listFiles(store, 'detections')).map((f) => f.path);
  const all = batch.frames.map((f) => f.path).sort();
  assert.deepEqual([...std, ...inv].sort(), all, 'every frame in exactly one of standardized/invalid');
  assert.deepEqual(det.sort(), std.sort(), 'one detection per standardized frame');
  assert.equal(inv.length, 1);
  // Nothing doubled: across every commit the batch made, each output path was written exactly once.
  const rows = (await readFile(batchIndexFile(store, batch.batchId), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { repo: string; changed: number });
  const written = (repo: string) => rows.filter((r) => r.repo === repo).reduce((n, r) => n + r.changed, 0);
  assert.equal(written('detections'), det.length);
  assert.equal(written('standardized'), std.length);
  assert.equal(written('invalid'), inv.length);
  assert.deepEqual((await fsck(store)).problems, []);
});
