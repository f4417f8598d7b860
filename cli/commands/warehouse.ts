/**
 * `vigil warehouse compact|verify`: maintenance of the records warehouse.
 */
import path from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { VigilError } from '../../lib/errors.js';
import { formatBytes, printJson, printTable } from '../output.js';
import { config } from './common.js';

const warehouse = () => import('../../warehouse/index.js');

/** The warehouse folder of the data folder (VIGIL_DATA). */
function root(): string {
  return path.join(config().VIGIL_DATA, 'warehouse');
}

function hoursOption(value: string): number {
  if (!/^\d+(\.\d+)?$/.test(value)) throw new InvalidArgumentError('expected a number of hours, e.g. 1 or 0.5');
  return Number(value) * 3_600_000;
}

function timeOption(value: string): Date {
  const t = Date.parse(value);
  if (Number.isNaN(t) || !/^\d{4}-\d{2}-\d{2}/.test(value)) throw new InvalidArgumentError('expected an ISO 8601 date or instant, e.g. 2026-01-01 or 2026-01-01T06:00:00Z');
  return new Date(t);
}

/** Registers `vigil warehouse …`. */
export function registerWarehouse(program: Command): void {
  const wh = program.command('warehouse').description('maintain the records warehouse (compaction, integrity check)');

  wh.command('compact')
    .description('merge the small files of closed days (one file per table and day) and closed months (one per table and month), sorted for fast reports; crash-safe, rows reconciled')
    .option('--grace <hours>', 'a day counts as closed this many hours after it ended (UTC)', hoursOption, 3_600_000)
    .option('--now <time>', 'compact as if it were this time (which days and months are closed)', timeOption)
    .option('--daily-only', 'stop at one file per day (do not merge closed months)')
    .option('--sweep', 'also remove leftovers the manifest no longer lists (files already merged, outputs never committed)')
    .option('--json', 'print machine-readable JSON')
    .action(async (opts: { grace: number; now?: Date; dailyOnly?: boolean; sweep?: boolean; json?: boolean }) => {
      const { compactWarehouse } = await warehouse();
      const log = opts.json ? undefined : (line: string) => console.log(line);
      const r = await compactWarehouse(root(), { graceMs: opts.grace, now: opts.now, monthly: !opts.dailyOnly, sweep: opts.sweep, log });
      if (opts.json) return printJson(r);
      if (r.recovered.finished + r.recovered.undone > 0) console.log(`interrupted compactions: ${r.recovered.finished} finished, ${r.recovered.undone} undone`);
      if (r.swept > 0) console.log(`swept ${r.swept} leftover file(s)`);
      if (r.partitions.length === 0) {
        console.log(`nothing to compact (${r.filesAfter} live files)`);
        return;
      }
      printTable(
        ['TABLE', 'PERIOD', 'DAYS', 'FILES', 'ROWS', 'BEFORE', 'AFTER'],
        r.partitions.map((p) => [p.table, p.period, p.first === p.last ? p.first : `${p.first}..${p.last}`, p.files, p.rows, formatBytes(p.bytesBefore), formatBytes(p.bytesAfter)]),
      );
      console.log(`${r.partitions.length} partition(s), ${r.rows} rows reconciled; live files ${r.filesBefore} -> ${r.filesAfter} in ${(r.ms / 1000).toFixed(1)} s${r.dropped ? `; ${r.dropped} not committed (changed meanwhile)` : ''}`);
    });

  wh.command('verify')
    .description('re-hash every live file against the manifest, check Parquet footers, find files the manifest does not list; exit 1 naming each problem')
    .option('--no-hashes', 'only check existence, sizes and footers (fast)')
    .option('--rows', "also compare every file's Parquet row count with the manifest")
    .option('--json', 'print machine-readable JSON')
    .action(async (opts: { hashes: boolean; rows?: boolean; json?: boolean }) => {
      const { verifyWarehouse, ERROR_KINDS } = await warehouse();
      const r = await verifyWarehouse(root(), { hashes: opts.hashes, rows: opts.rows });
      if (opts.json) printJson(r);
      else {
        printTable(
          ['TABLE', 'FILES', 'COMPACTED', 'ROWS', 'BYTES'],
          Object.entries(r.tables).map(([t, v]) => [t, v.files, v.compacted, v.rows, formatBytes(v.bytes)]),
        );
        for (const p of r.problems) console.log(`${ERROR_KINDS.has(p.kind) ? 'error' : 'pending'} ${p.kind}: ${p.message}`);
        console.log(`${r.files} live files, ${r.rows} rows, ${formatBytes(r.bytes)}${r.hashed ? ', every sha256 checked' : ''}${r.rowsChecked ? ', row counts checked' : ''}: ${r.ok ? 'ok' : 'FAILED'}`);
      }
      if (!r.ok) {
        const first = r.problems.find((p) => ERROR_KINDS.has(p.kind))!;
        throw new VigilError('E_CORRUPT', `warehouse verify failed: ${r.problems.filter((p) => ERROR_KINDS.has(p.kind)).length} problem(s), first: ${first.message}`);
      }
    });
}
