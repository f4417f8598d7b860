/**
 * The `vigil` command line: builds the commander program and maps every failure to one line on
 * stderr (`vigil: <message>`) and an exit code: 2 for usage errors, 1 for everything else.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Command, CommanderError } from 'commander';
import { PROJECT_DIR } from '../lib/config.js';
import { registerBatch } from './commands/batch.js';
import { registerDetect } from './commands/detect.js';
import { registerDevice } from './commands/device.js';
import { registerIngest } from './commands/ingest.js';
import { registerRepo } from './commands/repo.js';
import { registerReplay } from './commands/replay.js';
import { registerReprocess } from './commands/reprocess.js';
import { registerReport } from './commands/report.js';
import { registerRules } from './commands/rules.js';
import { registerTrace } from './commands/trace.js';
import { registerStart } from './commands/start.js';
import { registerWorker } from './commands/worker.js';
import { registerWarehouse } from './commands/warehouse.js';
import { errorMessage, UsageError } from './output.js';

/** Exit code of usage errors (unknown command or option, missing or invalid argument). */
export const EXIT_USAGE = 2;

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(path.join(PROJECT_DIR, 'package.json'), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/** Builds the `vigil` program with every command registered. */
export function buildProgram(): Command {
  const program = new Command('vigil')
    .description('Security-camera frames to alerts, every step versioned and traceable.')
    .version(packageVersion(), '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show help')
    .showSuggestionAfterError(true)
    // Inherited by every command registered below: no process.exit inside commander, and its
    // error messages are printed by run() in our one-line format.
    .exitOverride()
    .configureOutput({ outputError: () => {} });
  registerStart(program);
  registerWorker(program);
  registerDevice(program);
  registerIngest(program);
  registerRepo(program);
  registerBatch(program);
  registerDetect(program);
  registerRules(program);
  registerReport(program);
  registerTrace(program);
  registerReplay(program);
  registerReprocess(program);
  registerWarehouse(program);
  return program;
}

/**
 * Runs the CLI on `argv` (process.argv form) and returns the exit code. Never throws; prints
 * errors as one line on stderr.
 */
export async function run(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help, --version and bare `vigil` / `vigil repo` (help shown) land here too.
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.exitCode === 0) return 0;
      if (err.code === 'commander.help' || err.code === 'commander.executeSubCommandAsync') return EXIT_USAGE;
      process.stderr.write(`vigil: ${err.message.replace(/^error: /, '').replace(/\s*\n\s*/g, ' ').trim()}\n`);
      return EXIT_USAGE;
    }
    process.stderr.write(`vigil: ${errorMessage(err)}\n`);
    return err instanceof UsageError ? EXIT_USAGE : 1;
  }
}

// A closed pipe (`vigil repo log frames | head`) ends the command quietly instead of with a stack trace.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0);
  process.stderr.write(`vigil: cannot write the output: ${errorMessage(err)}\n`);
  process.exit(1);
});

process.exitCode = await run(process.argv);
