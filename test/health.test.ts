import assert from 'node:assert/strict';
import { test } from 'node:test';
import { healthStatus, START_WAIT_LIMIT_MS } from '../server/health.js';

const NOW = Date.parse('2026-11-29T04:00:00.000Z');
const ago = (ms: number) => new Date(NOW - ms).toISOString();
const fine = { worker: 'RUNNING', collector: { unstarted: 0, waitingSince: null, startError: null }, framesJournalCheckpointError: null };

test('healthStatus: healthy parts are ok with no problem', () => {
  assert.deepEqual(healthStatus(fine, NOW), { ok: true, problems: [] });
  // A batch waiting a moment (being started) is normal.
  assert.deepEqual(healthStatus({ ...fine, collector: { unstarted: 2, waitingSince: ago(START_WAIT_LIMIT_MS - 1), startError: null } }, NOW), { ok: true, problems: [] });
  // An API host that runs no worker (VIGIL_WORKERS=0; workers run elsewhere).
  assert.deepEqual(healthStatus({ ...fine, worker: 'NONE' }, NOW), { ok: true, problems: [] });
  assert.deepEqual(healthStatus({ ...fine, worker: 'NONE', pollers: null }, NOW), { ok: true, problems: [] }, 'not looked yet');
  assert.deepEqual(healthStatus({ ...fine, worker: 'NONE', pollers: 2 }, NOW), { ok: true, problems: [] });
  assert.deepEqual(healthStatus({ ...fine, pollers: 1 }, NOW), { ok: true, problems: [] });
});

test('healthStatus: each broken part is one problem line', () => {
  assert.deepEqual(healthStatus({ ...fine, worker: 'NONE', pollers: 0 }, NOW).problems, ['no worker polls the task queue (VIGIL_WORKERS=0 here: run `vigil worker` elsewhere): no batch is processed']);
  assert.deepEqual(healthStatus({ ...fine, pollers: 0 }, NOW).problems, ['no worker has polled the task queue for 2 minutes, though worker processes run here (hung?): no batch is processed']);
  assert.deepEqual(healthStatus({ ...fine, worker: '1 of 2 running; worker 2 RESTARTING (worker 2 killed by SIGKILL; started again in 1 s)', workersRunning: 1 }, NOW).problems, [
    'worker processes: 1 of 2 running; worker 2 RESTARTING (worker 2 killed by SIGKILL; started again in 1 s) (the running ones process batches)',
  ]);
  assert.deepEqual(healthStatus({ ...fine, worker: '0 of 2 running; worker 1 STARTING; worker 2 STARTING', workersRunning: 0 }, NOW).problems, ['worker is 0 of 2 running; worker 1 STARTING; worker 2 STARTING: no batch is processed']);
  assert.deepEqual(healthStatus({ ...fine, worker: 'STOPPED' }, NOW).problems, ['worker is STOPPED: no batch is processed']);
  assert.deepEqual(healthStatus({ ...fine, worker: 'RESTARTING (worker 1 killed by SIGKILL; started again in 1 s)' }, NOW).problems, [
    'worker is RESTARTING (worker 1 killed by SIGKILL; started again in 1 s): no batch is processed',
  ]);
  assert.deepEqual(
    healthStatus({ ...fine, collector: { unstarted: 3, waitingSince: ago(START_WAIT_LIMIT_MS), startError: { message: 'connect ECONNREFUSED 127.0.0.1:7233', since: ago(5000) } } }, NOW).problems,
    [`3 batch(es) waiting to start since ${ago(START_WAIT_LIMIT_MS)} (last failure: connect ECONNREFUSED 127.0.0.1:7233)`],
  );
  assert.deepEqual(healthStatus({ ...fine, framesJournalCheckpointError: 'ENOSPC: no space left on device' }, NOW).problems, ['frames journal checkpoint failing: ENOSPC: no space left on device']);
  const all = healthStatus({ worker: 'FAILED', collector: { unstarted: 1, waitingSince: ago(60_000), startError: null }, framesJournalCheckpointError: 'EIO' }, NOW);
  assert.equal(all.ok, false);
  assert.equal(all.problems.length, 3);
});

test('healthStatus: pipeline activities failing on every try are one problem line naming the first three', () => {
  const a = (n: number) => ({ workflowId: `batch-b${n}`, activityType: 'recordsStage', attempt: 6 + n, lastFailure: 'warehouse append failed: ENOTDIR' });
  assert.deepEqual(healthStatus({ ...fine, stuckActivities: [] }, NOW), { ok: true, problems: [] });
  assert.deepEqual(healthStatus({ ...fine, stuckActivities: [a(1)] }, NOW).problems, [
    '1 pipeline activity failing and retried, batches held: recordsStage of batch-b1 (attempt 7): warehouse append failed: ENOTDIR',
  ]);
  const many = healthStatus({ ...fine, stuckActivities: [a(1), a(2), a(3), a(4)] }, NOW).problems;
  assert.equal(many.length, 1);
  assert.match(many[0]!, /^4 pipeline activities failing .*batch-b3 \(attempt 9\).*; …$/);
  assert.doesNotMatch(many[0]!, /batch-b4/);
});

