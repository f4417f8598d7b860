/**
 * Vigil benchmarks: `npm run bench -- [--quick] [--only a,b] [--json file] [--threads N] [--no-md]`.
 *
 * Runs each selected benchmark in turn (never two at once: the machine's cores are the resource
 * measured), prints its figures and a one-line `bench <name>: …` summary, writes every result to
 * `bench/out/results-<timestamp>.json` (and `--json <file>`), and rewrites `bench/RESULTS.md` with
 * the latest figures, the machine and the exact command.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { commitGrowth } from './commit-growth.js';
import { ingestApi } from './ingest-api.js';
import { loadAvg, machineInfo, now, round, sleep, type Benchmark, type BenchResult } from './lib/common.js';
import { benchCacheDir, OUT_DIR, RESULTS_MD } from './lib/paths.js';
import { writeResultsMd, type RunRecord } from './lib/report.js';
import { pipelineVsDetector } from './pipeline-vs-detector.js';
import { reportsAtScale } from './reports-at-scale.js';
import { rulesReplay } from './rules-replay.js';
import { scaleOut } from './scale-out.js';
import { storage } from './storage.js';

/** Every benchmark, in the order they run. */
export const BENCHMARKS: readonly Benchmark[] = [pipelineVsDetector, ingestApi, rulesReplay, reportsAtScale, storage, scaleOut, commitGrowth];

const USAGE = `usage: npm run bench -- [options]

  --quick            smoke run: smaller variant of every benchmark (about 2 minutes in all; the first run also generates
                     cached data). Its figures are not judged against the targets (one 32-frame batch cannot overlap
                     validation with inference, nor spread over two workers) and bench/RESULTS.md is not rewritten
  --only a,b         run only these benchmarks: ${BENCHMARKS.map((b) => b.name).join(', ')}
  --json <file>      also write the results JSON to <file>
  --threads <n>      onnxruntime intra-op threads (default: VIGIL_THREADS or all cores)
  --no-md            do not rewrite bench/RESULTS.md
  --md               rewrite it even with --quick
  --max-load <x>     before each benchmark, wait (up to 5 minutes) until the 1-minute load average is <= x
  --help             this text
`;

interface Args {
  quick: boolean;
  only: string[] | null;
  json: string | null;
  threads: number;
  /** null until set: --no-md, --md, else true except with --quick. */
  md: boolean | null;
  maxLoad: number | null;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { quick: false, only: null, json: null, threads: Number(process.env.VIGIL_THREADS) || os.availableParallelism(), md: null, maxLoad: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (): string => {
      const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i];
      if (v === undefined || v === '') throw new Error(`${a.split('=')[0]} needs a value`);
      return v;
    };
    const flag = a.split('=')[0];
    if (flag === '--quick') args.quick = true;
    else if (flag === '--md') args.md = true;
    else if (flag === '--only') args.only = value().split(',').map((s) => s.trim()).filter(Boolean);
    else if (flag === '--json') args.json = value();
    else if (flag === '--threads') args.threads = Number(value());
    else if (flag === '--no-md') args.md = false;
    else if (flag === '--max-load') args.maxLoad = Number(value());
    else if (flag === '--help' || flag === '-h') {
      process.stdout.write(USAGE);
      process.exit(0);
    } else throw new Error(`unknown option ${a}`);
  }
  // RESULTS.md holds the latest full figures: a smoke run leaves it alone unless --md asks.
  args.md ??= !args.quick;
  if (!Number.isInteger(args.threads) || args.threads < 1) throw new Error('--threads must be a positive integer');
  if (args.maxLoad !== null && !(args.maxLoad > 0)) throw new Error('--max-load must be a positive number');
  const names = new Set(BENCHMARKS.map((b) => b.name));
  for (const n of args.only ?? []) if (!names.has(n)) throw new Error(`unknown benchmark ${n} (known: ${[...names].join(', ')})`);
  return args;
}

/** Waits (up to 5 minutes) until the 1-minute load average is at most `max`: other work on the machine skews every figure. */
async function waitForLoad(max: number): Promise<void> {
  const deadline = now() + 5 * 60_000;
  let said = false;
  while ((loadAvg()[0] ?? 0) > max && now() < deadline) {
    if (!said) console.log(`  waiting for the load average (${loadAvg().join(' ')}) to drop to ${max}…`);
    said = true;
    await sleep(5000);
  }
  if ((loadAvg()[0] ?? 0) > max) console.log(`  load still ${loadAvg().join(' ')} after 5 minutes; measuring anyway`);
}

async function main(): Promise<number> {
  let args: Args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`bench: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
  const selected = BENCHMARKS.filter((b) => !args.only || args.only.includes(b.name));
  const machine = await machineInfo(args.threads);
  const startedAt = new Date().toISOString();
  console.log(`vigil bench: ${selected.map((b) => b.name).join(', ')}${args.quick ? ' (quick)' : ''}`);
  console.log(`machine: ${machine.cores} cores ${machine.cpuModel}, ${machine.memoryGiB} GiB, load ${machine.loadAvg.join(' ')}, node ${machine.node}, model ${machine.model.name} ${machine.model.sha256.slice(0, 12)}…, ${args.threads} intra-op thread(s)`);

  const results: BenchResult[] = [];
  const earlier = new Map<string, BenchResult>();
  const t0 = now();
  for (const b of selected) {
    console.log(`\n== ${b.name}: ${b.title}`);
    if (args.maxLoad !== null) await waitForLoad(args.maxLoad);
    const loadBefore = loadAvg();
    const began = new Date().toISOString();
    const t = now();
    let result: BenchResult;
    try {
      const out = await b.run({ quick: args.quick, threads: args.threads, cacheDir: benchCacheDir(), log: (l) => console.log(l), earlier });
      result = { name: b.name, title: b.title, startedAt: began, durationMs: round(now() - t, 0), load: { before: loadBefore, after: loadAvg() }, ...out };
    } catch (err) {
      const e = err as Error;
      console.error(`  failed: ${e.stack ?? e.message}`);
      result = {
        name: b.name, title: b.title, startedAt: began, durationMs: round(now() - t, 0), load: { before: loadBefore, after: loadAvg() },
        summary: `FAILED: ${e.message.split('\n')[0]}`, figures: {}, targets: [], notes: [], error: e.stack ?? e.message,
      };
    }
    for (const tc of result.targets) console.log(`  target ${tc.name} ${tc.target}: ${tc.value ?? 'n/a'} ${args.quick ? '(quick: not judged)' : tc.met === null ? '(not measured)' : tc.met ? 'MET' : 'MISSED'}`);
    console.log(`  load ${result.load.before.join(' ')} -> ${result.load.after.join(' ')}; ${round(result.durationMs / 1000, 1)} s`);
    console.log(`bench ${b.name}: ${result.summary}`);
    results.push(result);
    earlier.set(b.name, result);
  }

  const record: RunRecord = { command, quick: args.quick, startedAt, durationMs: round(now() - t0, 0), machine, results };
  mkdirSync(OUT_DIR, { recursive: true });
  const file = path.join(OUT_DIR, `results-${startedAt.replace(/[:.]/g, '-')}.json`);
  const json = JSON.stringify(record, null, 2) + '\n';
  writeFileSync(file, json);
  if (args.json) writeFileSync(path.resolve(args.json), json);
  console.log(`\nresults: ${path.relative(process.cwd(), file)}${args.json ? ` and ${args.json}` : ''}`);
  if (args.md) {
    writeResultsMd(RESULTS_MD, record);
    console.log(`updated ${path.relative(process.cwd(), RESULTS_MD)}`);
  }
  console.log(`total ${round(record.durationMs / 1000, 1)} s`);
  return results.some((r) => r.error) ? 1 : 0;
}

process.exitCode = await main();
