/**
 * The worker processes of `vigil start` (temporal/workerProcess.ts), on a real embedded Temporal
 * dev server: a worker process polls at its nice value, one killed is started again and the new
 * one processes batches, a stop ends it for good (so does its own exit once a stop has begun),
 * one that cannot start says so, and one whose parent dies stops too.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import os from 'node:os';
import { after, test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { isVigilError } from '../lib/errors.js';
import { startDevServer, type DevServer } from '../temporal/devServer.js';
import { batchWorkflowId, makeBatchStarter } from '../temporal/starter.js';
import { configEnv, WorkerProcess, workersState } from '../temporal/workerProcess.js';
import { countPollers } from '../temporal/pollers.js';
import { readdirSync, readFileSync } from 'node:fs';
import type { BatchSummary } from '../workflows/index.js';
import { freePort, waitFor, withTimeout } from './helpers/faults.js';
import { ingestFixtures, setupDevice, testConfig } from './helpers/pipeline.js';
import { tmpDir } from './helpers/tmp.js';

const QUEUE = 'worker-process';
const cleanups: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function devServer(dir: string): Promise<DevServer> {
  const dev = await startDevServer({ dataDir: dir, port: await freePort(), uiPort: await freePort() });
  cleanups.push(() => dev.stop());
  return dev;
}

test('a worker process polls at its nice value; killed, it is started again and the new one runs batches; stopped, it stays stopped', async (t) => {
  const dir = tmpDir();
  const { store, device } = await setupDevice(dir);
  const dev = await devServer(dir);
  const config = { ...testConfig(dir, dev.address, QUEUE), VIGIL_THREADS: 1 };
  const logs: string[] = [];
  const wp = new WorkerProcess({ config, nice: 10, name: 'worker 1', log: (m) => logs.push(m) });
  cleanups.push(() => wp.stop());
  await withTimeout('worker ready', wp.start(), 120_000);
  assert.equal(wp.state(), 'RUNNING');
  assert.equal(workersState([wp]), 'RUNNING');
  const first = wp.pid!;
  assert.ok(first > 0 && first !== process.pid);
  if (process.platform === 'linux') assert.equal(os.getPriority(first), 10, 'the worker process runs at nice 10');

  process.kill(first, 'SIGKILL');
  const restarting = await waitFor('restarting', () => (wp.state().startsWith('RESTARTING') ? wp.state() : null), { timeoutMs: 10_000, intervalMs: 20 });
  assert.match(restarting, /^RESTARTING \(worker 1 killed by SIGKILL; started again in 1 s\)$/);
  assert.match(workersState([wp]), /^RESTARTING/);
  assert.deepEqual(logs, ['vigil: worker 1 killed by SIGKILL; started again in 1 s']);
  await waitFor('running again', () => wp.state() === 'RUNNING', { timeoutMs: 120_000, intervalMs: 100 });
  const second = wp.pid!;
  assert.notEqual(second, first);
  assert.equal(wp.restarts, 1);
  assert.deepEqual(logs, ['vigil: worker 1 killed by SIGKILL; started again in 1 s', 'vigil: worker 1 running again (restart 1)']);

  // The new process does the work: a batch started now completes, its activities run by it.
  const connection = await Connection.connect({ address: dev.address });
  cleanups.push(() => connection.close());
  const client = new Client({ connection });
  assert.ok((await countPollers(client, QUEUE)) >= 1, 'the server sees the worker process poll');
  assert.equal(await countPollers(client, `${QUEUE}-nobody`), 0);
  const batch = await ingestFixtures(store, device, ['chelsea.png', 'home.jpg']);
  await makeBatchStarter(client, config)(batch);
  const summary = (await withTimeout('batch', client.workflow.result(batchWorkflowId(batch.batchId)), 180_000)) as BatchSummary;
  assert.equal(summary.frames, 2);
  const history = await client.workflow.getHandle(batchWorkflowId(batch.batchId)).fetchHistory();
  const identities = new Set((history.events ?? []).map((e) => e.activityTaskStartedEventAttributes?.identity).filter(Boolean));
  assert.ok(identities.size > 0, 'activities ran');
  for (const id of identities) assert.ok(id!.startsWith(`${second}@`), `activity run by the new worker process (${id})`);
  if (process.platform === 'linux') {
    // Inference ran in it: its threads are 10 below the rest of the worker (nice 10 + 10, capped at 19).
    const nices = readdirSync(`/proc/${second}/task`).map((tid) => Number(readFileSync(`/proc/${second}/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ')[16]));
    assert.ok(nices.includes(19), `inference threads at nice 19: ${nices.join(',')}`);
    assert.ok(nices.includes(10), 'the rest at nice 10');
    assert.ok(nices.every((n) => n === 10 || n === 19), nices.join(','));
  }

  const t0 = Date.now();
  await wp.stop();
  t.diagnostic(`stopped in ${Date.now() - t0} ms`);
  assert.ok(Date.now() - t0 < 20_000, 'an idle worker stops at once, not after its grace time');
  assert.equal(wp.state(), 'STOPPED');
  assert.equal(wp.pid, null);
  assert.ok(!alive(second));
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(wp.pid, null, 'not started again after a stop');
  assert.equal(logs.length, 2);

  // A terminal's Ctrl-C reaches the worker as well as vigil start, which marks its workers as
  // stopping first: the worker's own exit is then no crash, and nothing is started again.
  await withTimeout('worker ready again', wp.start(), 120_000);
  const third = wp.pid!;
  wp.beginStop();
  assert.equal(wp.state(), 'STOPPING');
  process.kill(third, 'SIGINT');
  await waitFor('the worker gone after its Ctrl-C', () => !alive(third), { timeoutMs: 60_000, intervalMs: 50 });
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(wp.state(), 'STOPPED');
  assert.equal(wp.pid, null);
  assert.equal(logs.length, 2, `no restart: ${logs.join(' / ')}`);
  await wp.stop();
});

test('configEnv: the child gets exactly the parent\'s settings, and the rest of its environment', () => {
  const config = testConfig('/data', '127.0.0.1:7233', QUEUE);
  const env = configEnv({ ...config, VIGIL_PORT: 9999 }, { PATH: '/bin', SENDGRID_API_KEY: 'SG.x', VIGIL_PORT: '8080', TEMPORAL_TLS_CERT: '/etc/cert.pem', VIGIL_WORKERS: '3' });
  assert.equal(env.PATH, '/bin');
  assert.equal(env.SENDGRID_API_KEY, 'SG.x', 'alert channel credentials are read by the worker from its environment');
  assert.equal(env.VIGIL_PORT, '9999', 'an option given on the command line wins over the environment');
  assert.equal(env.TEMPORAL_ADDRESS, '127.0.0.1:7233');
  assert.equal(env.VIGIL_DATA, '/data');
  assert.equal(env.TEMPORAL_TLS_CERT, undefined, 'a setting the parent left unset is not taken from the environment');
  assert.equal(env.VIGIL_WORKERS, '1', "the parent's value, not the environment's");
});

test('a worker process that exits before it is ready fails the start with E_UNAVAILABLE', async () => {
  const dir = tmpDir();
  const config = testConfig(dir, '127.0.0.1:9', QUEUE);
  // A setting the child refuses (its own message goes to stderr).
  const wp = new WorkerProcess({ config, nice: 0, name: 'worker 1', log: () => undefined, env: { VIGIL_THREADS: '0' } });
  await assert.rejects(wp.start(), (e: unknown) => isVigilError(e, 'E_UNAVAILABLE') && /worker 1 exited before it was ready \(exit code 1: vigil: environment variable VIGIL_THREADS: Too small/.test((e as Error).message));
  assert.equal(wp.state(), 'STOPPED');
  assert.equal(wp.pid, null);
  assert.throws(() => new WorkerProcess({ config: { ...config, TEMPORAL_ADDRESS: undefined }, nice: 0, name: 'w', log: () => undefined }), /TEMPORAL_ADDRESS/);
  // Several workers: the state names those not running.
  const two = [wp, new WorkerProcess({ config, nice: 0, name: 'worker 2', log: () => undefined })];
  assert.equal(workersState(two), '0 of 2 running; worker 1 STOPPED; worker 2 STOPPED');
  assert.equal(workersState([]), 'NONE');
});

test('a worker process stops when the process that started it dies, before or after it is ready (no worker left behind)', async (t) => {
  const dir = tmpDir();
  const dev = await devServer(dir);
  // A parent that starts a worker process, prints its pid (at once, or once it is ready), and is then killed with SIGKILL.
  for (const when of ['spawned', 'ready'] as const) {
    const script = `
      import { loadConfig } from './lib/config.ts';
      import { WorkerProcess } from './temporal/workerProcess.ts';
      const config = loadConfig({ VIGIL_DATA: ${JSON.stringify(dir)}, TEMPORAL_ADDRESS: ${JSON.stringify(dev.address)}, TEMPORAL_TASK_QUEUE: '${QUEUE}-orphan', VIGIL_THREADS: '1' });
      const wp = new WorkerProcess({ config, nice: 0, name: 'worker 1', log: console.log });
      const ready = wp.start();
      if (${JSON.stringify(when)} === 'ready') await ready;
      console.log('worker pid ' + wp.pid);
      setInterval(() => undefined, 1000);
    `;
    const parent = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: new URL('..', import.meta.url).pathname, stdio: ['ignore', 'pipe', 'inherit'] });
    cleanups.push(async () => parent.kill('SIGKILL'));
    let out = '';
    parent.stdout.on('data', (b: Buffer) => (out += b.toString()));
    const pid = await waitFor('worker pid', () => Number(/worker pid (\d+)/.exec(out)?.[1]) || null, { timeoutMs: 120_000, intervalMs: 20 });
    cleanups.push(async () => alive(pid) && process.kill(pid, 'SIGKILL'));
    assert.ok(alive(pid));
    parent.kill('SIGKILL');
    const t0 = Date.now();
    await waitFor(`the worker orphaned once ${when} gone`, () => !alive(pid), { timeoutMs: 30_000, intervalMs: 50 });
    t.diagnostic(`${when}: gone ${Date.now() - t0} ms after its parent`);
  }
});
