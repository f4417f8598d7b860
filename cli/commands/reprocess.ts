import type { Command } from 'commander';
import { printJson } from '../output.js';
import { config, intOption } from './common.js';

/** Registers `vigil reprocess`: one reprocessing run now (what the nightly schedule starts). */
export function registerReprocess(program: Command): void {
  program
    .command('reprocess')
    .description('re-run the frames of the last days through the DAG under the rules and model in force now (new alerts are recorded, not sent); needs a running vigil start or worker')
    .option('--days <n>', 'capture-time window, ending an hour ago', intOption(1, 366), 1)
    .option('--address <host:port>', 'Temporal frontend (default: TEMPORAL_ADDRESS, else 127.0.0.1:VIGIL_TEMPORAL_PORT)')
    .option('--json', 'machine-readable output')
    .action(async (opts: { days: number; address?: string; json?: boolean }) => {
      const { connectClient } = await import('../../temporal/connection.js');
      const c = config();
      const client = await connectClient(c, opts.address ?? c.TEMPORAL_ADDRESS ?? `127.0.0.1:${c.VIGIL_TEMPORAL_PORT}`, 10_000);
      try {
        const workflowId = `reprocess-manual-${new Date().toISOString().replace(/[-:.]/g, '')}`;
        const handle = await client.workflow.start('reprocessWorkflow', {
          taskQueue: c.TEMPORAL_TASK_QUEUE, workflowId, args: [{ days: opts.days, chunkSize: c.VIGIL_CHUNK_SIZE }],
        });
        if (!opts.json) console.log(`started ${workflowId}; waiting for it (Ctrl-C leaves it running)…`);
        const summary = (await handle.result()) as { window: { from: string; to: string }; batches: number; frames: number; detected: number; unsafe: number; alerts: number };
        if (opts.json) return printJson({ workflowId, ...summary });
        console.log(`reprocessed ${summary.frames} frame(s) captured ${summary.window.from} .. ${summary.window.to} in ${summary.batches} batch(es): ${summary.detected} detected again, ${summary.unsafe} unsafe, ${summary.alerts} alert(s) on record`);
      } finally {
        await client.connection.close();
      }
    });
}
