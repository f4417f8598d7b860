import path from 'node:path';
import { DefaultLogger, NativeConnection, Runtime, Worker, type LogLevel, type LogMetadata, type State } from '@temporalio/worker';
import { createActivities } from '../activities/index.js';
import { DetectorPool } from '../detector/index.js';
import type { Config } from '../lib/config.js';
import { LANES, laneQueue, type Lane } from '../lib/taskQueues.js';
import { openStore, type RepoStore } from '../repos/index.js';
import { defaultValidateConfig, loadValidateConfig } from '../validate/index.js';

/** Path of the workflow bundle entry (deterministic workflow code only). */
export const WORKFLOWS_PATH = path.resolve(import.meta.dirname, '../workflows/index.ts');

/**
 * The Temporal workers of one Vigil worker process, run and stopped together: the main one (the
 * workflows and every activity, on the main task queue) and one per lane (lib/taskQueues.ts), each
 * polling only its lane's queue for its stage's activities.
 */
export class VigilWorker {
  /** @param workers the main worker first, then the lanes' */
  constructor(readonly workers: Worker[]) {}

  /** Runs every worker until all have stopped; if one fails, the others are shut down and its error thrown. */
  async run(): Promise<void> {
    const runs = this.workers.map((w) => w.run());
    try {
      await Promise.all(runs);
    } catch (e) {
      this.shutdown();
      await Promise.allSettled(runs);
      throw e;
    }
  }

  /** Starts a graceful shutdown of every worker still running (run() resolves once all have stopped). */
  shutdown(): void {
    for (const w of this.workers) if (w.getState() === 'RUNNING') w.shutdown();
  }

  /** RUNNING while every worker runs; otherwise the state of the first one that does not. */
  getState(): State {
    return this.workers.map((w) => w.getState()).find((s) => s !== 'RUNNING') ?? 'RUNNING';
  }
}

/**
 * Creates a worker for the batch DAG: one detector per worker process, loaded on first use
 * with explicit intra-op threads; the heavy stages also poll their lanes' task queues.
 */
export async function createVigilWorker(
  config: Config,
  connection: NativeConnection,
  opts: { store?: RepoStore; maxConcurrentActivities?: number } = {},
): Promise<{ worker: VigilWorker; close: () => Promise<void> }> {
  // A store passed in was prepared by whoever opened it (vigil start).
  const store = opts.store ?? openStore(config.VIGIL_DATA);
  if (!opts.store) await store.objects.prepare();
  const validateConfig = config.VIGIL_VALIDATE_CONFIG ? await loadValidateConfig(config.VIGIL_VALIDATE_CONFIG) : defaultValidateConfig;
  let detector: Promise<DetectorPool> | null = null;
  const getDetector = () => (detector ??= DetectorPool.load(config.VIGIL_MODEL, { threads: config.VIGIL_THREADS, sessions: config.VIGIL_INFERENCE_SESSIONS, threaded: true, nice: config.VIGIL_INFERENCE_NICE }));
  await getDetector();
  const activities = createActivities({
    store, validateConfig, detector: getDetector, rulesDir: config.VIGIL_RULES, modelConfig: config.VIGIL_MODEL,
    cooldownMs: config.VIGIL_ALERT_COOLDOWN_MS, maxDeliveryAttempts: config.VIGIL_ALERT_MAX_ATTEMPTS,
    detectSlots: config.VIGIL_DETECT_ACTIVITIES,
  });
  const common = { connection, namespace: config.TEMPORAL_NAMESPACE, shutdownGraceTime: config.VIGIL_SHUTDOWN_GRACE_MS };
  const release = async () => {
    if (detector) await (await detector).release();
  };
  // Each lane's activity and slots (a Record, so a lane added to LANES needs its entry here).
  const lanes: Record<Lane, { activities: Partial<typeof activities>; slots: number }> = {
    validate: { activities: { validateStage: activities.validateStage }, slots: config.VIGIL_VALIDATE_ACTIVITIES },
    detect: { activities: { detectStage: activities.detectStage }, slots: config.VIGIL_DETECT_ACTIVITIES },
  };
  const workers = await Promise.all([
    Worker.create({
      ...common,
      taskQueue: config.TEMPORAL_TASK_QUEUE,
      workflowsPath: WORKFLOWS_PATH,
      activities,
      maxConcurrentActivityTaskExecutions: opts.maxConcurrentActivities ?? config.VIGIL_WORKER_ACTIVITIES,
    }),
    ...LANES.map((lane) => Worker.create({
      ...common,
      taskQueue: laneQueue(config.TEMPORAL_TASK_QUEUE, lane),
      activities: lanes[lane].activities,
      maxConcurrentActivityTaskExecutions: lanes[lane].slots,
    })),
  ]).catch(async (e: unknown) => {
    await release();
    throw e;
  });
  return { worker: new VigilWorker(workers), close: release };
}

/** The SDK's logger without its warning that a lane's worker (activities only) polls no workflow tasks, and activities' lines without the SDK's metadata dump. */
class VigilLogger extends DefaultLogger {
  override log(level: LogLevel, message: string, meta?: LogMetadata): void {
    if (message.startsWith('No workflows registered')) return;
    // An activity's own lines: its type and workflow are enough context (not the task token etc.).
    if (meta?.sdkComponent === 'activity') return super.log(level, `${message} (${String(meta.activityType)} of ${String(meta.workflowId)})`);
    super.log(level, message, meta);
  }
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
    Runtime.install({ logger: new VigilLogger(level as LogLevel), shutdownSignals: [] });
  } catch {
    // already installed in this process
  }
}
