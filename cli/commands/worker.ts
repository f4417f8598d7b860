import type { Command } from 'commander';
import { loadConfig } from '../../lib/config.js';

/** Registers `vigil worker`: only a worker, against TEMPORAL_ADDRESS. */
export function registerWorker(program: Command): void {
  program
    .command('worker')
    .description('run only a worker (validate, detect) against a Temporal server; scale out by running more')
    .option('--address <host:port>', 'Temporal frontend (default: TEMPORAL_ADDRESS, else the embedded server on 127.0.0.1:7233)')
    .option('--namespace <ns>', 'Temporal namespace (default: TEMPORAL_NAMESPACE or "default")')
    .option('--task-queue <name>', 'task queue (default: TEMPORAL_TASK_QUEUE or "vigil")')
    .addHelpText('after', '\nTLS for a cluster: TEMPORAL_TLS_CERT, TEMPORAL_TLS_KEY, TEMPORAL_TLS_CA, TEMPORAL_TLS_SERVER_NAME.\nData: VIGIL_DATA (shared storage with the API host).')
    .action(async (opts: { address?: string; namespace?: string; taskQueue?: string }) => {
      const env = { ...process.env };
      if (opts.address) env.TEMPORAL_ADDRESS = opts.address;
      if (opts.namespace) env.TEMPORAL_NAMESPACE = opts.namespace;
      if (opts.taskQueue) env.TEMPORAL_TASK_QUEUE = opts.taskQueue;
      const { runWorker } = await import('../../temporal/runWorker.js');
      await runWorker(loadConfig(env));
    });
}
