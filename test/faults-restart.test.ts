/**
 * Fault suite: the whole system stopped and started again mid-run, as a user does it. `vigil start`
 * runs as a subprocess in its own process group (embedded Temporal dev server with its state in
 * SQLite under the data folder, one worker, the collector, the HTTP API) on free ports; frames go in
 * through the real API; Ctrl-C (SIGINT to the group, as a terminal sends it) lands mid-batch; the
 * second `vigil start` must finish every batch with nothing lost or doubled.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { DeviceRegistry } from '../ingest/devices.js';
import { listFiles, openStore, readJson } from '../repos/index.js';
import { AlertDocSchema } from '../stages/alerts.js';
import { readAttempts } from '../stages/ledger.js';
import {
  acceptedPerAlert, catEmailRules, checkRepos, describePending, freePort, postFrame, runningActivities, shortenActivityTimeout,
  spawnVigil, waitFor, withTimeout, type RunningActivity, type VigilProcess,
} from './helpers/faults.js';
import { startSendGrid, type SendGridServer } from './helpers/providers.js';
import { FIXTURES, tmpDir } from './helpers/tmp.js';

const QUEUE = 'faults-restart';
const T0 = Date.UTC(2026, 10, 23, 7, 0, 0);
const FILES = ['chelsea.png', 'astronaut.png', 'camera.png', 'messi5.jpg', 'coffee.png', 'rocket.jpg', 'home.jpg', 'motorcycle_left.png', 'truncated.jpg'];

let sendgrid: SendGridServer;
const procs: VigilProcess[] = [];
const connections: Connection[] = [];

before(async () => {
  sendgrid = await startSendGrid();
});
after(async () => {
  for (const c of connections) await c.close().catch(() => undefined);
  await Promise.all(procs.map((p) => p.stop('SIGKILL', { group: true })));
  await sendgrid?.close();
});

test('Ctrl-C of `vigil start` mid-batch, then `vigil start` again: every frame processed once, no alert sent twice', async (t) => {
  const started = Date.now();
  const dir = tmpDir();
  const store = openStore(dir);
  const { key } = await new DeviceRegistry(dir).add({ user: 'alice', device: 'cam1', site: 'hq', tz: 'Europe/Paris' });
  const [apiPort, temporalPort, uiPort] = [await freePort(), await freePort(), await freePort()];
  const env = {
    VIGIL_DATA: dir, VIGIL_PORT: String(apiPort), VIGIL_TEMPORAL_PORT: String(temporalPort), VIGIL_TEMPORAL_UI_PORT: String(uiPort),
    TEMPORAL_ADDRESS: '', TEMPORAL_TASK_QUEUE: QUEUE, VIGIL_BATCH_MAX_FRAMES: '5', VIGIL_BATCH_MAX_WAIT_MS: '1000', VIGIL_CHUNK_SIZE: '4',
    VIGIL_THREADS: '1', VIGIL_RULES: catEmailRules(dir), SENDGRID_API_KEY: sendgrid.apiKey, SENDGRID_BASE_URL: sendgrid.url,
    ALERT_EMAIL_FROM: 'vigil@example.com', ALERT_TIMEOUT_MS: '2000',
  };
  const startSystem = async () => {
    const p = spawnVigil(['start'], env, { readyLine: /^vigil: ready/, detached: true });
    procs.push(p);
    await withTimeout('vigil start ready', p.ready, 120_000);
    return p;
  };
  const post = async (file: string, atMs: number) => {
    const r = await postFrame(apiPort, key, readFileSync(path.join(FIXTURES, file)), new Date(atMs).toISOString(), file.endsWith('.png') ? 'image/png' : 'image/jpeg');
    assert.equal(r.status, 202, `${file}: ${JSON.stringify(r.json)}`);
    return r.json.path as string;
  };

  let system = await startSystem();
  const connection = await Connection.connect({ address: `127.0.0.1:${temporalPort}` });
  connections.push(connection);
  const client = new Client({ connection });
  const paths: string[] = [];
  for (const [i, f] of FILES.entries()) paths.push(await post(f, T0 + i * 1000));

  // Ctrl-C while validate or detect runs (their heartbeat timeout brings them back in 30 s) and
  // while part of the frames is still unprocessed.
  await waitFor(
    'a batch mid-way',
    async () => (await runningActivities(client, QUEUE)).some((a) => a.activityType === 'detectStage' || a.activityType === 'validateStage') && (await listFiles(store, 'standardized')).length > 0,
    { timeoutMs: 90_000, intervalMs: 100 },
  );
  const firstIdentity = `${system.pid}@`;
  const stop1 = await system.stop('SIGINT', { group: true, ms: 30_000 });
  t.diagnostic(`Ctrl-C at +${((Date.now() - started) / 1000).toFixed(1)} s; vigil start exited ${JSON.stringify(stop1)}: ${system.lines.slice(-3).join(' / ')}`);
  assert.deepEqual(stop1, { code: 0, signal: null }, `Ctrl-C stops vigil start cleanly: ${system.lines.slice(-5).join(' / ')}`);
  assert.ok(system.lines.includes('vigil: stopped.'));
  const doneBefore = (await listFiles(store, 'standardized')).length + (await listFiles(store, 'invalid')).length;
  t.diagnostic(`${doneBefore} of ${paths.length} frames validated before the Ctrl-C`);
  assert.ok(doneBefore < paths.length, 'the Ctrl-C came mid-run');

  // Second start: unfinished batches resume; new frames (another cat, two hours later: a second
  // alert) are accepted and processed too.
  system = await startSystem();
  for (const [i, f] of ['chelsea.png', 'home.jpg', 'rocket.jpg'].entries()) paths.push(await post(f, T0 + 2 * 3_600_000 + i * 1000));
  const stranded = new Map<string, RunningActivity>();
  const batchIds = await waitFor(
    'every frame processed and every batch completed',
    async () => {
      for (const a of await runningActivities(client, QUEUE)) {
        if (!a.worker.startsWith(firstIdentity) || a.giveUpAfterS <= 60 || stranded.has(`${a.workflowId}/${a.activityId}`)) continue;
        stranded.set(`${a.workflowId}/${a.activityId}`, a);
        await shortenActivityTimeout(client, a, 20);
      }
      const done = (await listFiles(store, 'standardized')).length + (await listFiles(store, 'invalid')).length;
      if (done < paths.length) return null;
      const ids: string[] = [];
      for await (const wf of client.workflow.list({ query: `WorkflowType = 'batchWorkflow'` })) {
        if (wf.status.name !== 'COMPLETED') return null;
        ids.push(wf.workflowId.replace(/^batch-/, ''));
      }
      return ids;
    },
    { timeoutMs: 150_000, intervalMs: 1000 },
  ).catch(async (err: Error) => {
    throw new Error(`${err.message}; pending: ${(await describePending(client, QUEUE)).join(' | ')}; output: ${system.lines.slice(-8).join(' / ')}`);
  });
  t.diagnostic(`all ${paths.length} frames processed in ${batchIds.length} batches, +${((Date.now() - started) / 1000).toFixed(1)} s`);
  await t.test('nothing waits minutes for the worker that was stopped', {
    todo: 'product bug: activities without a heartbeat timeout (rules, threats, alerts, records) wait out their whole start-to-close timeout (5 min) after a stop',
  }, () => {
    assert.deepEqual([...stranded.values()].map((a) => `${a.activityType} in ${a.workflowId}`), []);
  });
  const stop2 = await system.stop('SIGINT', { group: true, ms: 30_000 });
  assert.deepEqual(stop2, { code: 0, signal: null });

  const check = await checkRepos(store, paths, batchIds);
  assert.deepEqual(check.problems, []);
  // Two cats two hours apart: two alerts, each e-mailed exactly once.
  const alerts = await Promise.all((await listFiles(store, 'alerts')).filter((f) => !f.path.startsWith('cooldowns/')).map(async (f) => AlertDocSchema.parse(await readJson(store, 'alerts', f.path))));
  const pending = alerts.filter((a) => a.status === 'pending');
  assert.equal(pending.length, 2);
  const sent = acceptedPerAlert(sendgrid.received);
  assert.deepEqual([...sent.entries()].sort(), pending.map((a) => [a.alert.alertId, 1]).sort(), 'each alert e-mailed exactly once');
  for (const a of pending) assert.deepEqual((await readAttempts(store, a.alert.alertId)).map((x) => x.outcome), ['delivered']);
});
