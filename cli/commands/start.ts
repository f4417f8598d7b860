import type { Command } from 'commander';

/** Registers `vigil start` (owned by the lead; placeholder until the Temporal glue lands). */
export function registerStart(program: Command): void {
  program.command('start').description('start Temporal (embedded), a worker and the HTTP API').action(() => {
    throw new Error('not yet implemented');
  });
}
