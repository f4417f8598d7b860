import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import protos from '@temporalio/proto';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { WORKFLOWS_PATH } from '../temporal/worker.js';

const { History } = protos.temporal.api.history.v1;
const HISTORIES = path.resolve(import.meta.dirname, 'fixtures/histories');

try {
  Runtime.install({ logger: new DefaultLogger('WARN') });
} catch {
  // already installed in this process
}

/** A history in the fixtures: `History.encode()` of what `fetchHistory()` gave on the server. */
function loadHistory(name: string) {
  return History.decode(readFileSync(path.join(HISTORIES, `${name}.pb`)));
}

/**
 * Workflow histories recorded by earlier versions must replay on the current workflow code: a
 * worker upgraded while batches are in flight resumes them rather than failing them.
 */
test('a batch history recorded before the stage lanes replays on the current workflow code', async () => {
  const history = loadHistory('batch-before-lanes');
  const scheduled = (history.events ?? []).map((e) => e.activityTaskScheduledEventAttributes).filter((a) => !!a);
  // Recorded with validate and detect on the workflow's own task queue.
  assert.deepEqual(scheduled.map((a) => a.activityType?.name), ['rulesInForce', 'validateStage', 'detectStage', 'threatsStage', 'recordsStage']);
  assert.equal(new Set(scheduled.map((a) => a.taskQueue?.name)).size, 1);
  await Worker.runReplayHistory({ workflowsPath: WORKFLOWS_PATH }, history, 'batch-before-lanes');
});
