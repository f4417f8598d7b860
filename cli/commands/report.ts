import path from 'node:path';
import type { Command } from 'commander';
import { VigilError } from '../../lib/errors.js';
import { argumentsChecked, printJson } from '../output.js';
import { checkedOption, config, intOption } from './common.js';

type Format = 'table' | 'json' | 'csv';

function format(value: string): Format {
  if (value !== 'table' && value !== 'json' && value !== 'csv') throw new VigilError('E_BAD_INPUT', 'expected table, json or csv');
  return value;
}

/** Opens the warehouse of the data folder (lazily loads DuckDB). */
async function withWarehouse<T>(fn: (wh: import('../../warehouse/index.js').Warehouse) => Promise<T>): Promise<T> {
  const { openWarehouse } = await import('../../warehouse/index.js');
  const wh = await openWarehouse(path.join(config().VIGIL_DATA, 'warehouse'));
  try {
    return await fn(wh);
  } finally {
    wh.close();
  }
}

async function print(rows: Record<string, unknown>[], fmt: Format, whole: unknown, columns?: string[]): Promise<void> {
  const { formatTable, toCsv } = await import('../../warehouse/index.js');
  if (fmt === 'json') printJson(whole);
  else process.stdout.write(fmt === 'csv' ? toCsv(rows, columns) : formatTable(rows, columns));
}

/**
 * A report of zeros for a user the device registry has never known (a typo?) says so on stderr;
 * the report itself stays as it is (records can outlive a registry, e.g. restored from backup).
 */
async function noteUnknownUser(user: string): Promise<void> {
  const { DeviceRegistry } = await import('../../ingest/devices.js');
  const devices = await new DeviceRegistry(config().VIGIL_DATA).list().catch(() => null);
  if (devices && !devices.some((d) => d.user === user)) console.error(`vigil: note: no device of user ${user} has ever been registered (vigil device list)`);
}

/** Registers `vigil sql` and `vigil report daily|users`. */
export function registerReport(program: Command): void {
  program
    .command('sql <query>')
    .description('read-only SQL over the records warehouse (DuckDB views: frames, invalid_frames, detections, threats, non_matches, alerts, deliveries, rule_versions)')
    .option('--format <f>', 'table, json or csv', checkedOption(format), 'table' as Format)
    .option('--json', 'same as --format json')
    .option('--max-rows <n>', 'at most this many rows', intOption(1, 1_000_000), 10_000)
    .action(async (query: string, opts: { format: Format; json?: boolean; maxRows: number }) => {
      const { runReadOnlySql } = await import('../../warehouse/index.js');
      await withWarehouse(async (wh) => {
        const r = await runReadOnlySql(wh, query, { maxRows: opts.maxRows });
        await print(r.rows, opts.json ? 'json' : opts.format, r, r.columns);
        if (r.truncated) console.error(`vigil: output truncated at ${opts.maxRows} rows`);
      });
    });

  const report = program.command('report').description('compliance reports from the records warehouse');
  report
    .command('daily')
    .description('the Daily Threat Report: per user, threats by class, device and hour, alerts sent and failed, invalid frames')
    .requiredOption('--date <YYYY-MM-DD>', 'the day')
    .option('--user <user>', 'only this user')
    .option('--tz <zone>', 'the day and hours in this zone (default: UTC day, device-local hours)')
    .option('--format <f>', 'table, json or csv', checkedOption(format), 'table' as Format)
    .option('--json', 'same as --format json')
    .action(async (opts: { date: string; user?: string; tz?: string; format: Format; json?: boolean }) => {
      const { dailyReport, dailyReportRows } = await import('../../warehouse/index.js');
      await withWarehouse(async (wh) => {
        // Its E_BAD_INPUT is about the date, user or zone given (a failing query is E_STORAGE).
        const r = await argumentsChecked(['E_BAD_INPUT'], dailyReport(wh, { date: opts.date, ...(opts.user ? { user: opts.user } : {}), ...(opts.tz ? { tz: opts.tz } : {}) }));
        // Columns named, so a day without records still prints its header.
        await print(dailyReportRows(r), opts.json ? 'json' : opts.format, r, ['user_id', 'section', 'key', 'value']);
        if (opts.user && r.users.every((u) => u.frames.processed === 0)) await noteUnknownUser(opts.user);
      });
    });
  report
    .command('users')
    .description('threat count per user between two days (the numbers behind the admin bar chart)')
    .requiredOption('--from <YYYY-MM-DD>', 'first day')
    .requiredOption('--to <YYYY-MM-DD>', 'last day')
    .option('--format <f>', 'table, json or csv', checkedOption(format), 'table' as Format)
    .option('--json', 'same as --format json')
    .action(async (opts: { from: string; to: string; format: Format; json?: boolean }) => {
      const { usersReport, UserTotalsSchema } = await import('../../warehouse/index.js');
      await withWarehouse(async (wh) => {
        const r = await argumentsChecked(['E_BAD_INPUT'], usersReport(wh, { from: opts.from, to: opts.to }));
        await print(r.users as unknown as Record<string, unknown>[], opts.json ? 'json' : opts.format, r, Object.keys(UserTotalsSchema.shape));
      });
    });
  report
    .command('frame <frameId>')
    .description('every record of one frame in every table (for an auditor)')
    .option('--json', 'machine-readable output')
    .action(async (frameId: string, opts: { json?: boolean }) => {
      const { findFrameRecords, formatTable } = await import('../../warehouse/index.js');
      await withWarehouse(async (wh) => {
        const r = await argumentsChecked(['E_BAD_INPUT'], findFrameRecords(wh, frameId));
        if (opts.json) return printJson(r);
        for (const [table, rows] of Object.entries(r)) {
          if (!Array.isArray(rows) || rows.length === 0) continue;
          console.log(`${table}:`);
          process.stdout.write(formatTable(rows as Record<string, unknown>[]));
        }
      });
    });
}
