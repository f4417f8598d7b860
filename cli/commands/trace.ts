import type { Command } from 'commander';
import { argumentsChecked, printJson, printTable } from '../output.js';
import { openDataStore } from './common.js';

/** Registers `vigil trace <alertId>`: an alert back to its source frame, every hop hash-verified. */
export function registerTrace(program: Command): void {
  program
    .command('trace <alertId>')
    .description('trace an alert back to its source frame, verifying every hop by hash (for auditors); the id may be its first 8+ hex digits, as alert messages show it')
    .option('--json', 'machine-readable output')
    .action(async (alertId: string, opts: { json?: boolean }) => {
      const { traceAlert } = await import('../../stages/trace.js');
      // The id is refused when it is not an alert id or prefix (E_BAD_ID) or several alerts share it (E_BAD_INPUT).
      const hops = await argumentsChecked(['E_BAD_ID', 'E_BAD_INPUT'], traceAlert(await openDataStore(), alertId));
      if (opts.json) return printJson(hops);
      printTable(['AT', 'WHAT', 'VERIFIED'], hops.map((h) => [h.at, h.what, h.verified]));
      console.log(`ok: ${hops.length} hops verified`);
    });
}
