/**
 * Fault suite: alert providers misbehaving for a while (500s, 429s, timeouts, 400s, a slow
 * provider). Real Temporal, real worker and model, the real SendGrid client against the local
 * SendGrid stand-in. Every attempt must be in the delivery ledger and in the warehouse, retries
 * must follow the design (5xx/429/connection refused retried up to VIGIL_ALERT_MAX_ATTEMPTS, other
 * 4xx failed at once, a timeout on e-mail recorded `unknown` and never resent, since SendGrid has no
 * idempotency key), and nothing may be sent twice.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import type { Device } from '../ingest/devices.js';
import { listFiles, readJson, type RepoStore } from '../repos/index.js';
import { AlertDocSchema } from '../stages/alerts.js';
import { readAttempts } from '../stages/ledger.js';
import { warehouseRoot } from '../stages/records.js';
import { batchWorkflowId, makeBatchStarter } from '../temporal/starter.js';
import { createVigilWorker, type VigilWorker } from '../temporal/worker.js';
import { openWarehouse } from '../warehouse/index.js';
import type { BatchSummary } from '../workflows/index.js';
import { acceptedPerAlert, catEmailRules, withTimeout } from './helpers/faults.js';
import { ingestFrames, setupDevice, startTemporal, testConfig } from './helpers/pipeline.js';
import { startSendGrid, type SendGridServer } from './helpers/providers.js';
import { tmpDir } from './helpers/tmp.js';

const QUEUE = 'faults-alerts';
const MAX_ATTEMPTS = 4;
const TIMEOUT_MS = 500;
const T0 = Date.UTC(2026, 10, 21, 0, 0, 0);
const HOUR = 3_600_000;

let env: TestWorkflowEnvironment;
let sendgrid: SendGridServer;
let slow: SlowProxy;
let store: RepoStore;
let device: Device;
let config: ReturnType<typeof testConfig>;
let worker: VigilWorker;
let running: Promise<void>;
let closeWorker: () => Promise<void>;
const CHANNEL_VARS = ['SENDGRID_API_KEY', 'SENDGRID_BASE_URL', 'ALERT_EMAIL_FROM', 'ALERT_TIMEOUT_MS'] as const;
const savedEnv = Object.fromEntries(CHANNEL_VARS.map((k) => [k, process.env[k]]));

/** A proxy in front of the SendGrid stand-in that forwards each request and holds the answer back for `delayMs` (a provider that accepts, slowly). */
interface SlowProxy {
  url: string;
  delayMs: number;
  close(): Promise<void>;
}

async function startSlowProxy(target: string): Promise<SlowProxy> {
  const proxy: SlowProxy = { url: '', delayMs: 0, close: async () => undefined };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const up = http.request(`${target}${req.url}`, { method: req.method, headers: req.headers }, (ur) => {
        const body: Buffer[] = [];
        ur.on('data', (c: Buffer) => body.push(c));
        ur.on('end', () => {
          setTimeout(() => {
            if (res.destroyed) return;
            res.writeHead(ur.statusCode ?? 502, ur.headers);
            res.end(Buffer.concat(body));
          }, proxy.delayMs);
        });
      });
      up.on('error', () => res.destroy());
      up.end(Buffer.concat(chunks));
    });
    res.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  proxy.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  proxy.close = () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return proxy;
}

// Made at load time: a folder made inside before() is removed by the after() hook it registers too early.
const dir = tmpDir();

before(async () => {
  // The retries below are expected: keep the SDK's per-failure WARN lines out of the test output.
  try {
    Runtime.install({ logger: new DefaultLogger('ERROR') });
  } catch {
    // already installed in this process
  }
  env = await startTemporal();
  sendgrid = await startSendGrid();
  slow = await startSlowProxy(sendgrid.url);
  ({ store, device } = await setupDevice(dir));
  // The worker reads channel settings from its environment at each delivery; `base` picks the
  // stand-in directly or through the slow proxy.
  Object.assign(process.env, { SENDGRID_API_KEY: sendgrid.apiKey, SENDGRID_BASE_URL: sendgrid.url, ALERT_EMAIL_FROM: 'vigil@example.com', ALERT_TIMEOUT_MS: String(TIMEOUT_MS) });
  config = { ...testConfig(dir, env.address, QUEUE), VIGIL_RULES: catEmailRules(dir), VIGIL_ALERT_MAX_ATTEMPTS: MAX_ATTEMPTS, VIGIL_CHUNK_SIZE: 4 };
  ({ worker, close: closeWorker } = await createVigilWorker(config, env.nativeConnection));
  running = worker.run();
});
after(async () => {
  if (worker) {
    worker.shutdown();
    await running.catch(() => undefined);
    await closeWorker();
  }
  for (const k of CHANNEL_VARS) {
    if (savedEnv[k] === undefined) delete process.env[k];
    else process.env[k] = savedEnv[k];
  }
  await slow?.close();
  await sendgrid?.close();
  await env?.teardown();
});

let hour = 0;
/** Runs one batch of one cat frame (hours after the previous one: no cooldown) and returns its summary and its one alert id. */
async function catBatch(): Promise<{ summary: BatchSummary; alertId: string; path: string }> {
  const before = new Set((await listFiles(store, 'alerts').catch(() => [])).map((f) => f.path));
  const batch = await ingestFrames(store, [{ device, file: 'chelsea.png', atMs: T0 + hour++ * 3 * HOUR }]);
  await makeBatchStarter(env.client, config)(batch);
  const summary: BatchSummary = await withTimeout('the batch', env.client.workflow.result(batchWorkflowId(batch.batchId)), 90_000);
  const added = (await listFiles(store, 'alerts')).filter((f) => !before.has(f.path) && !f.path.startsWith('cooldowns/'));
  assert.equal(added.length, 1, 'one alert for the cat');
  const doc = AlertDocSchema.parse(await readJson(store, 'alerts', added[0]!.path));
  return { summary, alertId: doc.alert.alertId, path: added[0]!.path };
}

/** The ledger's (attempt, status, outcome) rows of an alert, and the warehouse's, which must be the same. */
async function attemptsOf(alertId: string): Promise<Array<[number, number | null, string]>> {
  const ledger = (await readAttempts(store, alertId)).map((a): [number, number | null, string] => [a.attempt, a.statusCode, a.outcome]);
  for (const a of await readAttempts(store, alertId)) assert.ok(!JSON.stringify(a).includes(sendgrid.apiKey), 'no API key in the ledger');
  const wh = await openWarehouse(warehouseRoot(store));
  try {
    const rows = (await wh.query('SELECT attempt, status_code, outcome FROM deliveries WHERE alert_id = $1 ORDER BY attempt', [alertId])) as { attempt: number; status_code: number | null; outcome: string }[];
    assert.deepEqual(rows.map((r): [number, number | null, string] => [r.attempt, r.status_code, r.outcome]), ledger, 'the warehouse has every attempt of the ledger');
    const status = (await wh.query('SELECT status FROM alerts WHERE alert_id = $1', [alertId])) as { status: string }[];
    assert.equal(status.length, 1, 'the alert is recorded once');
  } finally {
    wh.close();
  }
  return ledger;
}

async function alertStatus(alertId: string): Promise<string> {
  const wh = await openWarehouse(warehouseRoot(store));
  try {
    return ((await wh.query('SELECT status FROM alerts WHERE alert_id = $1', [alertId])) as { status: string }[])[0]!.status;
  } finally {
    wh.close();
  }
}

const requestsFor = (alertId: string) => sendgrid.received.filter((r) => JSON.stringify(r.json ?? '').includes(alertId));

test('500, 500, then accepted: retried with backoff, delivered once, every attempt recorded', { timeout: 5 * 60_000 }, async () => {
  sendgrid.reset();
  sendgrid.failNext(2, 500);
  const { summary, alertId } = await catBatch();
  assert.equal(summary.delivered, 1);
  assert.equal(summary.failedDeliveries, 0);
  assert.equal(requestsFor(alertId).length, 3);
  assert.deepEqual([...acceptedPerAlert(sendgrid.received)], [[alertId, 1]], 'exactly one 2xx');
  assert.deepEqual(await attemptsOf(alertId), [[1, 500, 'retry'], [2, 500, 'retry'], [3, 202, 'delivered']]);
  assert.equal(await alertStatus(alertId), 'delivered');
});

test('a provider that never answers: e-mail has no idempotency key, so the timeout is recorded unknown and never resent', { timeout: 5 * 60_000 }, async () => {
  sendgrid.reset();
  sendgrid.hangNext(1);
  const { summary, alertId } = await catBatch();
  assert.equal(summary.delivered, 0);
  assert.equal(summary.unknownDeliveries, 1);
  assert.deepEqual(requestsFor(alertId).map((r) => r.status), [null], 'one request, no retry');
  assert.deepEqual(await attemptsOf(alertId), [[1, null, 'unknown']]);
  assert.equal(await alertStatus(alertId), 'unknown');
  const [first] = await readAttempts(store, alertId);
  assert.match(first!.responseSummary, /timeout/);
  assert.ok(first!.latencyMs >= TIMEOUT_MS * 0.9 && first!.latencyMs < TIMEOUT_MS + 5_000, `timed out after ${first!.latencyMs} ms (ALERT_TIMEOUT_MS ${TIMEOUT_MS})`);
});

test('a 400 is not retried: one request, recorded failed, the batch still completes', { timeout: 5 * 60_000 }, async () => {
  sendgrid.reset();
  sendgrid.failNext(1, 400);
  const { summary, alertId } = await catBatch();
  assert.equal(summary.delivered, 0);
  assert.equal(summary.failedDeliveries, 1);
  assert.equal(requestsFor(alertId).length, 1, 'exactly one request');
  assert.deepEqual(await attemptsOf(alertId), [[1, 400, 'failed']]);
  assert.equal(await alertStatus(alertId), 'failed');
});

test('an outage longer than the attempts (500, 502, 429, 503): recorded failed after VIGIL_ALERT_MAX_ATTEMPTS, never delivered', { timeout: 5 * 60_000 }, async () => {
  sendgrid.reset();
  sendgrid.failNext(1, 500);
  sendgrid.failNext(1, 502);
  sendgrid.failNext(1, 429);
  sendgrid.failNext(1, 503);
  const { summary, alertId } = await catBatch();
  assert.equal(summary.delivered, 0);
  assert.equal(summary.failedDeliveries, 1);
  assert.deepEqual(requestsFor(alertId).map((r) => r.status), [500, 502, 429, 503], `${MAX_ATTEMPTS} requests, no more`);
  assert.deepEqual(await attemptsOf(alertId), [[1, 500, 'retry'], [2, 502, 'retry'], [3, 429, 'retry'], [4, 503, 'failed']]);
  assert.equal(await alertStatus(alertId), 'failed');
});

test('a 500 then a 400: the rejection ends the retries', { timeout: 5 * 60_000 }, async () => {
  sendgrid.reset();
  sendgrid.failNext(1, 500);
  sendgrid.failNext(1, 400);
  const { summary, alertId } = await catBatch();
  assert.equal(summary.failedDeliveries, 1);
  assert.equal(requestsFor(alertId).length, 2);
  assert.deepEqual(await attemptsOf(alertId), [[1, 500, 'retry'], [2, 400, 'failed']]);
});

test('a provider that accepts but answers after the timeout', { timeout: 5 * 60_000 }, async (t) => {
  sendgrid.reset();
  process.env.SENDGRID_BASE_URL = slow.url;
  slow.delayMs = TIMEOUT_MS * 3;
  let res: Awaited<ReturnType<typeof catBatch>>;
  try {
    res = await catBatch();
  } finally {
    process.env.SENDGRID_BASE_URL = sendgrid.url;
    slow.delayMs = 0;
  }
  const { alertId } = res;
  const ledger = await attemptsOf(alertId);
  t.diagnostic(`SendGrid accepted ${acceptedPerAlert(sendgrid.received).get(alertId) ?? 0} request(s); ledger ${JSON.stringify(ledger)}`);
  // E-mail has no idempotency key: a timeout after the request went out is recorded as unknown
  // (the provider may have accepted it) and never retried, so the user cannot get it twice.
  assert.deepEqual(ledger, [[1, null, 'unknown']], 'one attempt, recorded as unknown');
  assert.equal(res.summary.unknownDeliveries, 1);
  assert.equal(await alertStatus(alertId), 'unknown');
  await t.test('the user gets one e-mail', () => {
    assert.equal(acceptedPerAlert(sendgrid.received).get(alertId), 1);
  });
});

test('one chunk, two alerts, one 500: one delivery activity for the chunk; its retry resends only the failed e-mail', { timeout: 5 * 60_000 }, async () => {
  sendgrid.reset();
  sendgrid.failNext(1, 500);
  const before = new Set((await listFiles(store, 'alerts').catch(() => [])).map((f) => f.path));
  const batch = await ingestFrames(store, [0, 1].map((i) => ({ device, file: 'chelsea.png', atMs: T0 + (hour++ + i) * 3 * HOUR })));
  hour++;
  await makeBatchStarter(env.client, config)(batch);
  const workflowId = batchWorkflowId(batch.batchId);
  const summary: BatchSummary = await withTimeout('the batch', env.client.workflow.result(workflowId), 90_000);
  const docs = await Promise.all((await listFiles(store, 'alerts')).filter((f) => !before.has(f.path) && !f.path.startsWith('cooldowns/')).map(async (f) => AlertDocSchema.parse(await readJson(store, 'alerts', f.path))));
  const ids = docs.map((d) => d.alert.alertId).sort();
  assert.equal(ids.length, 2, 'two alerts (three hours apart: no cooldown)');
  assert.equal(summary.delivered, 2);
  assert.equal(summary.failedDeliveries, 0);
  assert.deepEqual([...acceptedPerAlert(sendgrid.received)].sort(), ids.map((id) => [id, 1]), 'exactly one 2xx per alert');
  const ledgers = await Promise.all(ids.map(attemptsOf));
  assert.deepEqual(ledgers.map((l) => l.map(([, status]) => status)).sort((a, b) => a.length - b.length), [[202], [500, 202]], 'the retry sent only the e-mail that had failed');
  const scheduled: string[] = [];
  for (const e of (await env.client.workflow.getHandle(workflowId).fetchHistory()).events ?? []) {
    const name = e.activityTaskScheduledEventAttributes?.activityType?.name;
    if (name) scheduled.push(name);
  }
  assert.deepEqual(scheduled.filter((n) => n.startsWith('deliver')), ['deliverAlerts'], 'one delivery activity for the chunk');
});
