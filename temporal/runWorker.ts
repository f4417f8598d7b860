import { loadChannelSettings } from '../alerts/index.js';
import type { Config } from '../lib/config.js';
import { privateDataDir } from '../lib/privateDir.js';
import { laneQueues } from '../lib/taskQueues.js';
import { connectWorker } from './connection.js';
import { SUPERVISED_ENV, WORKER_READY } from './workerProcess.js';
import { createVigilWorker, installTemporalRuntime } from './worker.js';

/**
 * `vigil worker`: runs only a worker against TEMPORAL_ADDRESS (a Temporal cluster, or another
 * host's embedded server) until SIGINT/SIGTERM. Many hosts can run it against one cluster.
 */
export async function runWorker(config: Config, log: (msg: string) => void = console.log): Promise<void> {
  // Run by `vigil start` (temporal/workerProcess.ts): this worker stops when it goes away (its IPC
  // channel closes), from the start: before the worker exists, by leaving at once.
  const supervised = process.env[SUPERVISED_ENV] === '1' && typeof process.send === 'function';
  let stop = (): void => process.exit(0);
  if (supervised) {
    process.once('disconnect', () => stop());
    if (!process.connected) return;
  }
  // Broken alert channel settings stop the worker now, not each batch that raises an alert.
  loadChannelSettings();
  // The same data folder as the API host's (shared storage): private when this worker makes it.
  const shared = privateDataDir(config.VIGIL_DATA);
  if (shared) log(`vigil worker: warning: ${shared}`);
  installTemporalRuntime();
  const address = config.TEMPORAL_ADDRESS ?? `127.0.0.1:${config.VIGIL_TEMPORAL_PORT}`;
  const connection = await connectWorker(config, address);
  const { worker, close } = await createVigilWorker(config, connection);
  stop = () => worker.shutdown();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  if (supervised) {
    // vigil start is told when this worker polls. Gone meanwhile: the disconnect stops the worker.
    if (process.connected) process.send!(WORKER_READY, (err: Error | null) => err && stop());
    else stop();
    // The channel must not keep this process alive once the worker has stopped.
    process.channel?.unref();
  } else log(`vigil worker: task queue ${config.TEMPORAL_TASK_QUEUE} (lanes ${laneQueues(config.TEMPORAL_TASK_QUEUE).join(', ')}) on ${address} (namespace ${config.TEMPORAL_NAMESPACE}), data ${config.VIGIL_DATA}`);
  try {
    await worker.run();
  } finally {
    await close();
    await connection.close();
  }
}
