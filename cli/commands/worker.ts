import type { Command } from 'commander';

/** Registers `vigil worker` (owned by the lead; placeholder until the Temporal glue lands). */
export function registerWorker(program: Command): void {
  program.command('worker').description('run only a worker against TEMPORAL_ADDRESS').action(() => {
    throw new Error('not yet implemented');
  });
}
