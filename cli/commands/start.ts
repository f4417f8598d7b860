import type { Command } from 'commander';
import { loadConfig } from '../../lib/config.js';

/** Registers `vigil start`: the whole system on embedded defaults. */
export function registerStart(program: Command): void {
  program
    .command('start')
    .description('start the whole system: embedded Temporal (SQLite state, Web UI), one worker and the HTTP API')
    .option('--port <port>', 'HTTP API port (default: VIGIL_PORT or 8080)')
    .option('--data <dir>', 'data folder (default: VIGIL_DATA or ./data)')
    .addHelpText('after', '\nSet TEMPORAL_ADDRESS to use a Temporal cluster instead of the embedded server.\nCtrl-C stops everything; the next start resumes unfinished batches.')
    .action(async (opts: { port?: string; data?: string }) => {
      const env = { ...process.env };
      if (opts.port) env.VIGIL_PORT = opts.port;
      if (opts.data) env.VIGIL_DATA = opts.data;
      const { runSystem } = await import('../../temporal/runSystem.js');
      await runSystem(loadConfig(env));
    });
}
