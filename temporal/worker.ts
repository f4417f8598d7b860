import path from 'node:path';
import { DefaultLogger, NativeConnection, Runtime, Worker, type LogLevel } from '@temporalio/worker';
import { createActivities } from '../activities/index.js';
import { DetectorPool } from '../detector/index.js';
import type { Config } from '../lib/config.js';
import { openStore, type RepoStore } from '../repos/index.js';
import { defaultValidateConfig, loadValidateConfig } from '../validate/index.js';

/** Path of the workflow bundle entry (deterministic workflow code only). */
export const WORKFLOWS_PATH = path.resolve(import.meta.dirname, '../workflows/index.ts');

/**
 * Creates a worker for the batch DAG: one detector per worker process, loaded on first use
 * with explicit intra-op threads.
 */
export async function createVigilWorker(
  config: Config,
  connection: NativeConnection,
  opts: { store?: RepoStore; maxConcurrentActivities?: number } = {},
): Promise<{ worker: Worker; close: () => Promise<void> }> {
  // A store passed in was prepared by whoever opened it (vigil start).
  const store = opts.store ?? openStore(config.VIGIL_DATA);
  if (!opts.store) await store.objects.prepare();
  const validateConfig = config.VIGIL_VALIDATE_CONFIG ? await loadValidateConfig(config.VIGIL_VALIDATE_CONFIG) : defaultValidateConfig;
  let detector: Promise<DetectorPool> | null = null;
  const getDetector = () => (detector ??= DetectorPool.load(config.VIGIL_MODEL, { threads: config.VIGIL_THREADS, sessions: config.VIGIL_INFERENCE_SESSIONS, threaded: true, nice: config.VIGIL_INFERENCE_NICE }));
  await getDetector();
  const worker = await Worker.create({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    workflowsPath: WORKFLOWS_PATH,
    activities: createActivities({
      store, validateConfig, detector: getDetector, rulesDir: config.VIGIL_RULES, modelConfig: config.VIGIL_MODEL,
      cooldownMs: config.VIGIL_ALERT_COOLDOWN_MS, maxDeliveryAttempts: config.VIGIL_ALERT_MAX_ATTEMPTS,
    }),
    maxConcurrentActivityTaskExecutions: opts.maxConcurrentActivities ?? config.VIGIL_WORKER_ACTIVITIES,
    shutdownGraceTime: config.VIGIL_SHUTDOWN_GRACE_MS,
  });
  return {
    worker,
    close: async () => {
      if (detector) await (await detector).release();
    },
  };
}

/**
 * Installs the Temporal runtime for a vigil process: a quieter logger (VIGIL_LOG_LEVEL, default
 * WARN), so that `vigil start` prints its own lines rather than the SDK's INFO chatter, and no
 * signal handling of its own: `vigil start` and `vigil worker` handle SIGINT/SIGTERM themselves
 * and stop the worker in their order (the SDK's hook would start the worker's shutdown at the
 * same moment, beside theirs). Call before connecting.
 */
export function installTemporalRuntime(level = (process.env.VIGIL_LOG_LEVEL ?? 'WARN').toUpperCase()): void {
  try {
    Runtime.install({ logger: new DefaultLogger(level as LogLevel), shutdownSignals: [] });
  } catch {
    // already installed in this process
  }
}
