/**
 * Fault suite: worker crashes. Real Temporal dev server, `vigil worker` subprocesses killed with
 * SIGKILL, the real model, the SendGrid stand-in. Every end condition is asserted: the product bugs
 * this suite found (torn locks and refs, truncated objects, commits lost or missing from the batch
 * index, activities without a heartbeat timeout) are fixed, so their signatures fail the test, and
 * nothing is rescued by hand (no lock removed, no activity timeout shortened).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { DeviceRegistry } from '../ingest/devices.js';
import { fsck, listFiles, openStore, readJson } from '../repos/index.js';
import { AlertDocSchema } from '../stages/alerts.js';
import { readAttempts } from '../stages/ledger.js';
import { warehouseRoot } from '../stages/records.js';
import { batchWorkflowId, makeBatchStarter } from '../temporal/starter.js';
import { openWarehouse } from '../warehouse/index.js';
import type { BatchSummary } from '../workflows/index.js';
import {
  acceptedPerAlert, batchWrites, catEmailRules, checkRepos, describePending, emptyRefs, exited, orphanLocks, pendingActivities, runningActivities, seededRandom,
  seenTwice, sleep, spawnWorker as spawnVigilWorker, waitFor, withTimeout, type RunningActivity, type VigilProcess,
} from './helpers/faults.js';
import { ingestFixtures, ingestFrames, setupDevice, startTemporal, testConfig } from './helpers/pipeline.js';
import { startSendGrid, type SendGridServer } from './helpers/providers.js';
import { tmpDir } from './helpers/tmp.js';

const BIN = path.resolve(import.meta.dirname, '../bin/vigil.js');
let env: TestWorkflowEnvironment;
let sendgrid: SendGridServer;
/** Every worker subprocess of the random-kill test, killed in `after` whatever happened. */
const workers: VigilProcess[] = [];

before(async () => {
  env = await startTemporal();
  sendgrid = await startSendGrid();
});
after(async () => {
  await Promise.all(workers.map((w) => w.stop('SIGKILL')));
  await sendgrid?.close();
  await env?.teardown();
});

function spawnWorker(dataDir: string, taskQueue: string): ChildProcess {
  const child = spawn(process.execPath, [BIN, 'worker'], {
    env: { ...process.env, VIGIL_DATA: dataDir, TEMPORAL_ADDRESS: env.address, TEMPORAL_TASK_QUEUE: taskQueue, VIGIL_THREADS: '1' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  after(() => void child.kill('SIGKILL'));
  return child;
}

// The two tests run side by side: the first mostly waits out a heartbeat timeout.
describe('worker crashes', { concurrency: 2 }, () => {
  test('killing the worker (SIGKILL) mid-batch and starting it again finishes the batch, nothing lost or doubled', { timeout: 10 * 60_000 }, async (t) => {
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
    await exited(worker);
    worker = spawnWorker(dir, 'faults-kill');
    try {
      const summary: BatchSummary = await withTimeout('the batch', env.client.workflow.result(batchWorkflowId(batch.batchId)), 180_000);
      assert.equal(summary.frames, files.length);
    } finally {
      worker.kill('SIGTERM');
      // A worker that does not stop is killed (its error must not hide the test's own).
      await exited(worker).catch(() => void worker.kill('SIGKILL'));
    }
    const std = (await listFiles(store, 'standardized')).map((f) => f.path);
    const inv = (await listFiles(store, 'invalid')).map((f) => f.path);
    const det = (await listFiles(store, 'detections')).map((f) => f.path);
    const all = batch.frames.map((f) => f.path).sort();
    assert.deepEqual([...std, ...inv].sort(), all, 'every frame in exactly one of standardized/invalid');
    assert.deepEqual(det.sort(), std.sort(), 'one detection per standardized frame');
    assert.equal(inv.length, 1);
    // Nothing doubled: on main, each output path was written by exactly one of the batch's commits;
    // an indexed commit that never reached main is fine only if its changes are there anyway.
    const w = await batchWrites(store, [batch.batchId]);
    for (const p of w.phantom) t.diagnostic(p);
    assert.deepEqual(w.lost, [], 'no commit lost');
    const counts = { detections: det.length, standardized: std.length, invalid: inv.length };
    const written = (repo: string) => w.written[repo] ?? 0;
    for (const [repo, n] of Object.entries(counts)) assert.ok(written(repo) <= n, `${repo}: ${written(repo)} path writes for ${n} documents: work redone`);
    // The kill lands right after the standardized commit, i.e. often while the invalid commit is
    // written: the batch index is written before the branch moves, so it misses none.
    const gaps = Object.entries(counts).filter(([repo, n]) => written(repo) < n).map(([repo, n]) => `${repo}: ${written(repo)} indexed writes for ${n} documents`);
    assert.deepEqual(gaps, [], 'the batch index records every commit of the batch');
    assert.deepEqual((await fsck(store)).problems, []);
  });

  const FIXTURE_SET = ['chelsea.png', 'astronaut.png', 'camera.png', 'messi5.jpg', 'coffee.png', 'rocket.jpg', 'home.jpg', 'motorcycle_left.png', 'truncated.jpg'];
  /** Reproduce a run with VIGIL_FAULT_SEED=<seed>; VIGIL_FAULT_KEEP=<dir> keeps the data folder of a failed check there. */
  const SEED = Number(process.env.VIGIL_FAULT_SEED ?? 20261127);
  const KILLS = 20;
  const BATCHES = 4;

  test(`${KILLS} SIGKILLs of the worker at random points across ${BATCHES} batches: nothing lost, nothing doubled, no alert sent twice`, { timeout: 20 * 60_000 }, async (t) => {
    sendgrid.reset();
    const started = Date.now();
    const rnd = seededRandom(SEED);
    t.diagnostic(`seed ${SEED} (VIGIL_FAULT_SEED)`);
    const dir = tmpDir();
    const store = openStore(dir);
    const registry = new DeviceRegistry(dir);
    const rules = catEmailRules(dir);
    const queue = 'faults-random';
    // Four cameras of alice; each batch is 8 frames of one camera (four chunks of 2, so many
    // activities), with one cat (one e-mail alert per batch, hours apart: no cooldown) and one
    // truncated frame.
    const batches = [];
    for (let b = 0; b < BATCHES; b++) {
      const { device } = await registry.add({ user: 'alice', device: `cam${b + 1}`, site: 'hq', tz: 'Europe/Paris' });
      const files = FIXTURE_SET.filter((_, i) => i !== b + 1);
      batches.push(await ingestFrames(store, files.map((file, i) => ({ device, file, atMs: Date.UTC(2026, 10, 20, 6 + 3 * b) + i * 1000 }))));
    }
    const config = { ...testConfig(dir, env.address, queue), VIGIL_CHUNK_SIZE: 2 };
    const start = makeBatchStarter(env.client, config);
    const workerEnv = {
      VIGIL_RULES: rules, SENDGRID_API_KEY: sendgrid.apiKey, SENDGRID_BASE_URL: sendgrid.url, ALERT_EMAIL_FROM: 'vigil@example.com',
      ALERT_TIMEOUT_MS: '2000', VIGIL_ALERT_MAX_ATTEMPTS: String(config.VIGIL_ALERT_MAX_ATTEMPTS),
    };
    const newWorker = () => {
      const w = spawnVigilWorker(dir, env.address, queue, workerEnv);
      workers.push(w);
      return w;
    };

    const killed = new Set<string>();
    const badRefs: string[] = [];
    /** Kills that landed while the killed worker ran an activity. */
    let hits = 0;

    // One worker runs while the next two warm up (a worker takes seconds to start: tsx, the
    // workflow bundle, the model). Batch b starts at kill 2b; each kill lands 0.2-4 s after the
    // worker took over (for kill 2b: after batch b started).
    const log: string[] = [];
    let current = newWorker();
    const standbys: VigilProcess[] = [];
    for (let k = 0; k < KILLS; k++) {
      await withTimeout(`worker ${current.pid} ready`, current.ready, 90_000);
      while (standbys.length < Math.min(2, KILLS - k)) standbys.push(newWorker());
      if (k % 2 === 0 && k / 2 < BATCHES) await start(batches[k / 2]!);
      const delay = 200 + Math.round(rnd() * 3800);
      await sleep(delay);
      await current.stop('SIGKILL');
      killed.add(current.identity);
      const hit = (await runningActivities(env.client, queue)).filter((a) => a.worker === current.identity);
      if (hit.length) hits++;
      // A ref seen bad twice, a second apart, was left so by the killed writer (a live one fixes it in milliseconds).
      const refs = await seenTwice(() => emptyRefs(dir), 1000);
      badRefs.push(...refs);
      log.push(`kill ${k + 1} at +${((Date.now() - started) / 1000).toFixed(1)} s, ${delay} ms after takeover: ${hit.map((a) => `${a.activityType}(${a.workflowId.replace(/^batch-hq-\d+T\d+-/, '')})`).join(', ') || 'idle'}${refs.length ? `; left a bad ref: ${refs.join(', ')}` : ''}`);
      current = standbys.shift()!;
    }
    for (const l of log) t.diagnostic(l);
    const killsDone = Date.now();
    await withTimeout(`the last worker ${current.pid} ready`, current.ready, 90_000);

    // The last worker finishes the batches, on its own. An activity the server believes still runs
    // on a dead worker is retried when its heartbeat timeout (30 s) passes. Signs that a batch can
    // never finish end the wait at once, and fail the test below: a torn lock the next writer did
    // not break (it breaks one after 5 s), an activity the server would wait minutes for (one
    // without a heartbeat timeout), a repo object a killed writer left truncated (every read fails).
    const ids = batches.map((b) => batchWorkflowId(b.batchId));
    let stuck: string | undefined;
    await waitFor(
      'every batch to complete',
      async () => {
        const torn = await orphanLocks(dir, 90_000);
        if (torn.length) {
          stuck = `a torn repo lock left for over 90 s: ${torn.map((f) => path.relative(dir, f)).join(', ')}`;
          return true;
        }
        const stranded = (await runningActivities(env.client, queue)).filter((a) => killed.has(a.worker) && a.giveUpAfterS > 60);
        if (stranded.length) {
          stuck = `the server waits minutes for a dead worker's ${stranded.map((a: RunningActivity) => `${a.activityType} in ${a.workflowId} (${a.giveUpAfterS} s)`).join(', ')}`;
          return true;
        }
        const corrupt = (await pendingActivities(env.client, queue)).find((a) => a.attempt >= 3 && /compressed|DecompressionError|E_HASH_MISMATCH/i.test(a.failure));
        if (corrupt) {
          stuck = `an unreadable repo object: ${corrupt.activityType} in ${corrupt.workflowId}, attempt ${corrupt.attempt}: ${corrupt.failure}`;
          return true;
        }
        const states = await Promise.all(ids.map(async (id) => (await env.client.workflow.getHandle(id).describe()).status.name));
        assert.ok(states.every((s) => s === 'RUNNING' || s === 'COMPLETED'), `batch states: ${states.join(', ')}`);
        return states.every((s) => s === 'COMPLETED');
      },
      { timeoutMs: 180_000, intervalMs: 1000 },
    ).catch(async (err: Error) => {
      const exit = current.proc.exitCode ?? current.proc.signalCode;
      throw new Error(`${err.message}; last worker ${current.pid} ${exit === null ? 'running' : `exited ${exit}`}, output: ${current.lines.slice(-8).join(' / ')}; pending: ${(await describePending(env.client, queue)).join(' | ')}`);
    });
    t.diagnostic(`${stuck ? 'stopped waiting' : 'all batches done'} ${((Date.now() - killsDone) / 1000).toFixed(1)} s after the last kill (${((Date.now() - started) / 1000).toFixed(1)} s in all); ${hits} of ${KILLS} kills landed while an activity ran`);
    await current.stop('SIGTERM');
    const keep = () => {
      if (!process.env.VIGIL_FAULT_KEEP) return;
      const kept = path.join(process.env.VIGIL_FAULT_KEEP, `faults-random-${SEED}-${Date.now()}`);
      cpSync(dir, kept, { recursive: true });
      t.diagnostic(`data folder kept in ${kept}`);
    };
    if (stuck) keep();
    assert.equal(stuck, undefined, 'the batches finish by themselves');
    assert.deepEqual(badRefs, [], 'no ref is left empty or half-written by a killed worker');
    // Kills at random points must hit work: some must land while the killed worker runs an activity
    // (6, 7 and 11 of 20 did in three runs on the 2-core CI machine; standby workers poll too, so some find it idle).
    assert.ok(hits >= 3, `only ${hits} of ${KILLS} kills landed while an activity ran`);

    const summaries: BatchSummary[] = await Promise.all(ids.map((id) => env.client.workflow.result(id)));
    assert.equal(summaries.reduce((n, s) => n + s.frames, 0), BATCHES * 8);
    const framePaths = batches.flatMap((b) => b.frames.map((f) => f.path));
    const check = await checkRepos(store, framePaths, batches.map((b) => b.batchId));
    if (check.problems.length) keep();
    assert.deepEqual(check.problems, [], 'no commit lost or missing from the batch index, every accepted frame in exactly one of standardized/invalid, one detection per standardized frame, nothing redone, fsck clean');
    assert.equal(check.invalid.length, BATCHES, 'one truncated frame per batch');

    // Alerts: one per batch (the cat), none e-mailed twice, whatever the crashes. Each is delivered
    // once, unless a kill landed while SendGrid held its request: SendGrid has no idempotency key,
    // so that attempt is recorded `unknown` and not sent again (at most once, see deliverAlert).
    const alerts = await Promise.all((await listFiles(store, 'alerts')).filter((f) => !f.path.startsWith('cooldowns/')).map(async (f) => AlertDocSchema.parse(await readJson(store, 'alerts', f.path))));
    assert.equal(alerts.length, BATCHES);
    const sent = acceptedPerAlert(sendgrid.received);
    assert.deepEqual([...sent.keys()].filter((id) => !alerts.some((a) => a.alert.alertId === id)), [], 'SendGrid got only these alerts');
    let unknown = 0;
    for (const a of alerts) {
      const outcomes = (await readAttempts(store, a.alert.alertId)).map((x) => x.outcome);
      const n = sent.get(a.alert.alertId) ?? 0;
      if (outcomes.includes('unknown')) {
        unknown++;
        t.diagnostic(`alert ${a.alert.alertId}: a kill landed while SendGrid held the e-mail (accepted ${n} time(s)): recorded unknown, not sent again`);
        assert.deepEqual(outcomes, ['unknown'], `ledger of ${a.alert.alertId}`);
        assert.ok(n <= 1, `alert ${a.alert.alertId} accepted by SendGrid ${n} times`);
      } else {
        assert.deepEqual(outcomes, ['delivered'], `ledger of ${a.alert.alertId}`);
        assert.equal(n, 1, `alert ${a.alert.alertId} accepted by SendGrid exactly once`);
      }
    }
    // The warehouse holds each frame, each alert and each delivery once.
    const wh = await openWarehouse(warehouseRoot(store));
    try {
      const [row] = (await wh.query('SELECT count(*)::INTEGER AS n, count(DISTINCT tag)::INTEGER AS tags FROM frames')) as [{ n: number; tags: number }];
      assert.deepEqual(row, { n: BATCHES * 8, tags: BATCHES * 8 });
      const [al] = (await wh.query('SELECT count(*)::INTEGER AS n FROM alerts')) as [{ n: number }];
      assert.equal(al.n, BATCHES);
      const [dl] = (await wh.query("SELECT count(*)::INTEGER AS n FROM deliveries WHERE outcome = 'delivered'")) as [{ n: number }];
      assert.equal(dl.n, BATCHES - unknown);
    } finally {
      wh.close();
    }
  });
});
