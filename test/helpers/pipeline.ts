import { readFileSync } from 'node:fs';
import path from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { loadConfig, type Config } from '../../lib/config.js';
import { DeviceRegistry, type Device } from '../../ingest/devices.js';
import { FrameIngestor } from '../../ingest/frameIngestor.js';
import { Collector, type BatchSpec } from '../../ingest/collector.js';
import { openStore, type RepoStore } from '../../repos/index.js';
// @ts-expect-error plain JS module without types
import { temporalBinPath } from '../../scripts/temporal.mjs';
import type { VigilWorker } from '../../temporal/worker.js';
import { FIXTURES } from './tmp.js';

/** Starts the real Temporal dev server (the pinned CLI build) for a test file. */
export async function startTemporal(): Promise<TestWorkflowEnvironment> {
  try {
    Runtime.install({ logger: new DefaultLogger('WARN') });
  } catch {
    // already installed in this process
  }
  return TestWorkflowEnvironment.createLocal({
    server: { executable: { type: 'existing-path', path: temporalBinPath() as string }, ip: '127.0.0.1', extraArgs: ['--log-level', 'error'] },
  });
}

/** Settings for a test data folder and task queue. */
export function testConfig(dataDir: string, address: string, taskQueue: string): Config {
  return loadConfig({ VIGIL_DATA: dataDir, TEMPORAL_ADDRESS: address, TEMPORAL_TASK_QUEUE: taskQueue, VIGIL_THREADS: '2', VIGIL_CHUNK_SIZE: '4' });
}

/** Ingests fixture files for one device and returns the batch the collector cut (not started). */
export async function ingestFixtures(store: RepoStore, device: Device, files: string[], startMs = Date.UTC(2026, 10, 27, 21, 0, 0)): Promise<BatchSpec> {
  const batches: BatchSpec[] = [];
  const collector = new Collector(store, { maxFrames: 1000, maxWaitMs: 3_600_000, start: async (b) => void batches.push(b) });
  await collector.load();
  const ingestor = new FrameIngestor(store, { maxBytes: 20 * 1024 * 1024, onCommitted: (f, c) => collector.add(f, c) });
  await Promise.all(files.map((f, i) => ingestor.accept(device, readFileSync(path.join(FIXTURES, f)), new Date(startMs + i * 1000).toISOString())));
  await collector.tick(true);
  // This "API process" ends here: its collector saves its state (a later collector on the same
  // data folder, another "process", starts from it).
  await collector.stop();
  if (batches.length !== 1) throw new Error(`expected one batch, got ${batches.length}`);
  return batches[0]!;
}

/** One frame to ingest: which device, which fixture, when. */
export interface FrameSpec {
  device: Device;
  /** A fixture name, or an absolute path. */
  file: string;
  atMs: number;
}

/** Ingests frames from several devices and returns the one batch the collector cut (not started). */
export async function ingestFrames(store: RepoStore, frames: FrameSpec[]): Promise<BatchSpec> {
  const batches: BatchSpec[] = [];
  const collector = new Collector(store, { maxFrames: 1000, maxWaitMs: 3_600_000, start: async (b) => void batches.push(b) });
  await collector.load();
  const ingestor = new FrameIngestor(store, { maxBytes: 20 * 1024 * 1024, onCommitted: (f, c) => collector.add(f, c) });
  await Promise.all(frames.map((f) => ingestor.accept(f.device, readFileSync(path.isAbsolute(f.file) ? f.file : path.join(FIXTURES, f.file)), new Date(f.atMs).toISOString())));
  await collector.tick(true);
  // This "API process" ends here: its collector saves its state (a later collector on the same
  // data folder, another "process", starts from it).
  await collector.stop();
  if (batches.length !== 1) throw new Error(`expected one batch, got ${batches.length}`);
  return batches[0]!;
}

/** Registers a device in a fresh data folder. */
export async function setupDevice(dataDir: string, user = 'alice', device = 'cam1', tz = 'Europe/Paris') {
  const store = openStore(dataDir);
  const registry = new DeviceRegistry(dataDir);
  const { device: d } = await registry.add({ user, device, site: 'hq', tz });
  return { store, registry, device: d };
}

/** A Vigil worker running on a test's Temporal environment; `stop` shuts it down and releases the model. */
export async function runWorker(env: TestWorkflowEnvironment, config: Config, store?: RepoStore): Promise<{ worker: VigilWorker; stop: () => Promise<void> }> {
  const { createVigilWorker } = await import('../../temporal/worker.js');
  const { worker, close } = await createVigilWorker(config, env.nativeConnection, store ? { store } : {});
  const running = worker.run();
  return {
    worker,
    stop: async () => {
      worker.shutdown();
      await running;
      await close();
    },
  };
}
