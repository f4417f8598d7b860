/**
 * The whole Vigil system assembled in this process the way `vigil start` does it
 * (temporal/runSystem.ts): the embedded Temporal dev server on free ports in a temporary data
 * folder, a worker (a child process as `vigil start` runs it, or in this process, or none), the collector, the background packer and the real HTTP API, plus a
 * registered device. The collector's batch starter is wrapped so the benchmark knows every batch
 * it started and when its workflow completed.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';
import { Collector, type BatchSpec } from '../../ingest/collector.js';
import { DeviceRegistry, type Device } from '../../ingest/devices.js';
import { FrameIngestor } from '../../ingest/frameIngestor.js';
import { loadConfig, type Config } from '../../lib/config.js';
import { AutoPacker, ensureRepo, openStore, STAGE_REPOS, type RepoStore } from '../../repos/index.js';
import { createApiServer } from '../../server/index.js';
import { connectClient, connectWorker } from '../../temporal/connection.js';
import { startDevServer, type DevServer } from '../../temporal/devServer.js';
import { batchWorkflowId, makeBatchStarter } from '../../temporal/starter.js';
import { createVigilWorker, installTemporalRuntime, type VigilWorker } from '../../temporal/worker.js';
import { WorkerProcess } from '../../temporal/workerProcess.js';
import type { BatchSummary } from '../../workflows/index.js';
import { freePort, outboxOnly, wall } from './common.js';
import { MODEL_CONFIG } from './paths.js';

/** The user every benchmark device belongs to (its rules make cats unsafe). */
export const BENCH_USER = 'bench';

/**
 * Writes a rules folder: rule 100 makes cats and dogs unsafe at score >= 0.5 (the cat fixture
 * scores 0.8-0.9), rule 200 people at >= 0.95; user `bench` has both and one e-mail contact and one
 * phone, which go to the outbox (no credentials), so every cat frame makes an alert delivered to
 * the outbox.
 */
export function writeBenchRules(dir: string): string {
  const rules = path.join(dir, 'rules');
  mkdirSync(path.join(rules, 'users'), { recursive: true });
  writeFileSync(
    path.join(rules, 'global.yaml'),
    'rules:\n  - { id: 100, name: animals, unsafe: [cat, dog], minScore: 0.5 }\n  - { id: 200, name: people, unsafe: [person], minScore: 0.95 }\n',
  );
  writeFileSync(
    path.join(rules, 'users', `${BENCH_USER}.yaml`),
    `user: ${BENCH_USER}\nrules: [100, 200]\ncontacts:\n  email: [security@example.com]\n  phone: ["+15555550100"]\n`,
  );
  return rules;
}

/** How to assemble the system. */
export interface SystemOptions {
  dataDir: string;
  rulesDir: string;
  threads: number;
  batchMaxFrames: number;
  chunkSize: number;
  batchMaxWaitMs?: number;
  /**
   * The worker: `process`, one child process at VIGIL_WORKER_NICE, as `vigil start` runs it
   * (temporal/workerProcess.ts); `inline`, one in this process (as `vigil start` did before
   * 2026-11-29); `none`, workers run elsewhere (e.g. spawned `vigil worker` processes).
   */
  worker: 'process' | 'inline' | 'none';
  /** Devices to register (user `bench`, site `hq`, zone UTC). Default ['cam1']. */
  devices?: string[];
  /** Start the collector's timer (default true). */
  collector?: boolean;
}

/** A batch the collector started, and when its workflow completed. */
export interface StartedBatch {
  batchId: string;
  workflowId: string;
  frames: number;
  frameIds: string[];
  startedAt: number;
  /** Wall-clock ms when the workflow closed, per the server (null while running or not yet checked). */
  completedAt: number | null;
  summary: BatchSummary | null;
  error: string | null;
}

/** A running system. */
export interface RunningSystem {
  config: Config;
  store: RepoStore;
  client: Client;
  address: string;
  apiUrl: string;
  /** pid of the embedded Temporal dev server. */
  temporalPid: number;
  /** pid of the worker process (worker: 'process'), else null. */
  workerPid: number | null;
  /** Device keys by device id. */
  keys: Map<string, string>;
  devices: Map<string, Device>;
  collector: Collector;
  batches: StartedBatch[];
  /** Resolves when batches covering `frames` frames were started and all of them completed. */
  waitForFrames(frames: number, timeoutMs: number): Promise<number>;
  /** Stops everything (worker, collector, API, Temporal). */
  stop(): Promise<void>;
}

/** The configuration used by the benchmarks (explicit values, nothing read from the environment). */
export function benchConfig(o: SystemOptions, extra: Record<string, string> = {}): Config {
  return loadConfig({
    VIGIL_DATA: o.dataDir,
    VIGIL_REPROCESS_CRON: 'off',
    VIGIL_HOST: '127.0.0.1',
    VIGIL_PORT: '0',
    VIGIL_BATCH_MAX_FRAMES: String(o.batchMaxFrames),
    VIGIL_BATCH_MAX_WAIT_MS: String(o.batchMaxWaitMs ?? 2000),
    VIGIL_CHUNK_SIZE: String(o.chunkSize),
    VIGIL_MODEL: MODEL_CONFIG,
    VIGIL_RULES: o.rulesDir,
    VIGIL_ALERT_COOLDOWN_MS: '0',
    VIGIL_THREADS: String(o.threads),
    TEMPORAL_TASK_QUEUE: 'vigil-bench',
    ...extra,
  });
}

/** Starts the system. Call `stop()` in a finally. */
export async function startSystem(o: SystemOptions): Promise<RunningSystem> {
  outboxOnly();
  installTemporalRuntime();
  const stops: Array<() => Promise<void> | void> = [];
  const stopAll = async () => {
    for (const s of stops.reverse()) await Promise.resolve(s()).catch(() => undefined);
  };
  try {
    const store = openStore(o.dataDir);
    for (const r of STAGE_REPOS) await ensureRepo(store, r);
    await store.objects.prepare();
    const dev: DevServer = await startDevServer({ dataDir: o.dataDir, port: await freePort(), uiPort: await freePort() });
    stops.push(() => dev.stop());
    const config = benchConfig(o, { TEMPORAL_ADDRESS: dev.address });
    const client = await connectClient(config, dev.address);
    stops.push(() => client.connection.close());

    let worker: VigilWorker | null = null;
    let workerProcess: WorkerProcess | null = null;
    if (o.worker === 'process') {
      const wp = new WorkerProcess({ config, nice: config.VIGIL_WORKER_NICE, name: 'worker', log: (m) => console.error(m) });
      stops.push(() => wp.stop());
      await wp.start();
      workerProcess = wp;
    }
    if (o.worker === 'inline') {
      const workerConn: NativeConnection = await connectWorker(config, dev.address);
      stops.push(() => workerConn.close());
      const created = await createVigilWorker(config, workerConn, { store });
      stops.push(created.close);
      worker = created.worker;
      const w = worker;
      const running = w.run();
      stops.push(async () => {
        w.shutdown();
        await running;
      });
    }

    const batches: StartedBatch[] = [];
    const starter = makeBatchStarter(client, config);
    const collector = new Collector(store, {
      maxFrames: config.VIGIL_BATCH_MAX_FRAMES,
      maxWaitMs: config.VIGIL_BATCH_MAX_WAIT_MS,
      start: async (b: BatchSpec) => {
        await starter(b);
        batches.push({
          batchId: b.batchId, workflowId: batchWorkflowId(b.batchId), frames: b.frames.length, frameIds: b.frames.map((f) => f.frameId),
          startedAt: wall(), completedAt: null, summary: null, error: null,
        });
      },
    });
    await collector.load();
    if (o.collector ?? true) collector.run(500);
    stops.push(() => collector.stop());

    const packer = new AutoPacker(store, { looseLimit: config.VIGIL_AUTOPACK_LOOSE, packLimit: config.VIGIL_AUTOPACK_PACKS, intervalMs: config.VIGIL_AUTOPACK_INTERVAL_MS });
    packer.start();
    stops.push(() => packer.stop());

    const registry = new DeviceRegistry(o.dataDir);
    const keys = new Map<string, string>();
    const devices = new Map<string, Device>();
    for (const id of o.devices ?? ['cam1']) {
      const { device, key } = await registry.add({ user: BENCH_USER, device: id, site: 'hq', tz: 'UTC' });
      keys.set(id, key);
      devices.set(id, device);
    }
    const ingestor = new FrameIngestor(store, { maxBytes: config.VIGIL_MAX_FRAME_BYTES, onCommitted: (f, c) => collector.add(f, c) });
    const server: Server = createApiServer({ store, registry, ingestor, maxBytes: config.VIGIL_MAX_FRAME_BYTES });
    await ingestor.warmUp();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    stops.push(() => new Promise<void>((r) => {
      server.close(() => r());
      server.closeIdleConnections();
      setTimeout(() => server.closeAllConnections(), 2000).unref();
    }));
    stops.push(() => ingestor.drain());
    const a = server.address();
    const apiUrl = `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;

    return {
      config, store, client, address: dev.address, apiUrl, temporalPid: dev.process.pid ?? 0, workerPid: workerProcess?.pid ?? null, keys, devices, collector, batches,
      async waitForFrames(frames: number, timeoutMs: number): Promise<number> {
        const deadline = wall() + timeoutMs;
        for (;;) {
          const started = batches.reduce((n, b) => n + b.frames, 0);
          if (started >= frames) break;
          if (wall() > deadline) throw new Error(`only ${started} of ${frames} frames were batched within ${timeoutMs} ms (collector: ${JSON.stringify(collector.stats())})`);
          await new Promise((r) => setTimeout(r, 50));
        }
        // Wait on each batch with a long poll (the server answers when the workflow closes), then
        // one describe for closeTime, the server's completion time. Polling describe every 100 ms
        // instead cost the Temporal server CPU that the pipeline under test needs.
        const remaining = Math.max(1, deadline - wall());
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`${batches.filter((b) => b.completedAt === null).length} batch workflow(s) did not complete within ${timeoutMs} ms`)), remaining);
        });
        try {
          await Promise.race([timeout, Promise.all(batches.filter((b) => b.completedAt === null).map(async (b) => {
            const handle = client.workflow.getHandle(b.workflowId);
            try {
              b.summary = (await handle.result()) as BatchSummary;
            } catch (err) {
              b.error = `workflow ${b.workflowId} failed: ${(err as Error).message}`;
            }
            const d = await handle.describe();
            b.completedAt = d.closeTime?.getTime() ?? wall();
          }))]);
        } finally {
          clearTimeout(timer);
        }
        const failed = batches.filter((b) => b.error);
        if (failed.length) throw new Error(`${failed.length} batch workflow(s) failed: ${failed[0]!.error}`);
        return Math.max(...batches.map((b) => b.completedAt ?? 0));
      },
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
