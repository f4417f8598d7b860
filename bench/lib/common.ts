/**
 * Shared pieces of the benchmarks: the benchmark contract, options, timing and statistics helpers,
 * load-average sampling and machine facts. Benchmarks measure; they never assert like tests do.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, promises as fsp, readdirSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { loadModelConfig } from '../../detector/index.js';
import { PROJECT_DIR } from '../../lib/config.js';

/** Options every benchmark receives from the runner. */
export interface BenchOptions {
  /** `--quick`: smaller, faster variant (about 2 minutes for the whole suite). */
  quick: boolean;
  /** onnxruntime intra-op threads for every detector (bare loop and in-process worker). */
  threads: number;
  /** Per-user cache folder for generated data (`${VIGIL_CACHE:-~/.cache/vigil}/bench`). */
  cacheDir: string;
  /** Prints one progress line. */
  log: (line: string) => void;
  /** Results of the benchmarks that already ran in this invocation (scale-out compares with the pipeline). */
  earlier: ReadonlyMap<string, BenchResult>;
}

/** One target from the issue, checked against a measured value. */
export interface TargetCheck {
  /** What is measured, e.g. `pipeline/detector ratio`. */
  name: string;
  /** The target as written, e.g. `>= 0.85`. */
  target: string;
  /** The measured value (null when it could not be measured). */
  value: number | null;
  unit: string;
  /** True when met, false when missed, null when not measured. */
  met: boolean | null;
}

/** What a benchmark hands back to the runner. */
export interface BenchOutcome {
  /** The one-line summary, printed as `bench <name>: <summary>`. */
  summary: string;
  /** Every figure, JSON-serialisable. */
  figures: Record<string, unknown>;
  targets: TargetCheck[];
  /** Conditions of the measurement and observations (what ran, configuration, caveats). */
  notes: string[];
  /** Markdown lines (tables) with the key figures, for bench/RESULTS.md. */
  markdown?: string[];
}

/** A benchmark's full result as recorded by the runner. */
export interface BenchResult extends BenchOutcome {
  name: string;
  title: string;
  startedAt: string;
  durationMs: number;
  /** 1/5/15-minute load averages before and after the benchmark. */
  load: { before: number[]; after: number[] };
  error?: string;
}

/** A benchmark: a name for `--only`, a title, and its run function. */
export interface Benchmark {
  name: string;
  title: string;
  run(opts: BenchOptions): Promise<BenchOutcome>;
}

/** Milliseconds since an arbitrary origin (monotonic). */
export const now = (): number => performance.now();

/** Wall-clock milliseconds (Date.now), for comparing with timestamps other processes wrote. */
export const wall = (): number => Date.now();

/** Rounds to `digits` decimals. */
export function round(v: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

/** The p-th percentile (0-100) of values, nearest-rank; null for no values. */
export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1]!;
}

/** Summary statistics of a list of durations (ms). */
export function stats(values: readonly number[]): { n: number; min: number | null; p50: number | null; p95: number | null; p99: number | null; max: number | null; mean: number | null } {
  const n = values.length;
  const r = (v: number | null) => (v === null ? null : round(v, 1));
  return {
    n,
    min: r(n ? Math.min(...values) : null),
    p50: r(percentile(values, 50)),
    p95: r(percentile(values, 95)),
    p99: r(percentile(values, 99)),
    max: r(n ? Math.max(...values) : null),
    mean: r(n ? values.reduce((a, b) => a + b, 0) / n : null),
  };
}

/** 1/5/15-minute load averages, rounded. */
export function loadAvg(): number[] {
  return os.loadavg().map((v) => round(v, 2));
}

/** A target check: `>=` or `<` comparisons of a measured value. */
export function target(name: string, op: '>=' | '<', limit: number, value: number | null, unit: string): TargetCheck {
  const met = value === null ? null : op === '>=' ? value >= limit : value < limit;
  return { name, target: `${op} ${limit} ${unit}`.trim(), value: value === null ? null : round(value, 2), unit, met };
}

/**
 * A fresh temporary folder; `cleanup()` has it removed when the bench process exits, not at once.
 * A run leaves tens of thousands of files, and on ext4 without a journal (this machine's disk,
 * see fileSystemOf) the inode allocator skips every inode freed in the last 60-300 s, looking
 * each one up: right after 20,000 files were removed, creating a file took 0.6 ms instead of
 * 0.04-0.14 ms, and the next run's ingest slowed with it. Removing the folders at exit
 * keeps one run's clean-up out of the next run's figures.
 */
export function tempDir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), `vigil-bench-${prefix}-`));
  return {
    dir,
    cleanup: () => {
      if (leftForExit.size === 0) process.once('exit', () => leftForExit.forEach((d) => rmSync(d, { recursive: true, force: true })));
      leftForExit.add(dir);
    },
  };
}
const leftForExit = new Set<string>();

/**
 * The file system a folder is on, from /proc/mounts (Linux; null elsewhere): its type and device,
 * and for ext4 whether it has a journal (a journaled ext4 device has a /proc/fs/jbd2 entry).
 */
export function fileSystemOf(dir: string): string | null {
  let mounts: string[][];
  try {
    mounts = readFileSync('/proc/mounts', 'utf8').trim().split('\n').map((l) => l.split(' '));
  } catch {
    return null;
  }
  const abs = path.resolve(dir);
  const m = mounts
    .filter(([, at]) => at !== undefined && (abs === at || abs.startsWith(at === '/' ? '/' : `${at}/`)))
    .sort((a, b) => b[1]!.length - a[1]!.length)[0];
  if (!m) return null;
  const [device = '?', at = '?', type = '?'] = m;
  if (type !== 'ext4') return `${type} (${device} at ${at})`;
  const name = path.basename(device);
  let journal: boolean;
  try {
    journal = readdirSync('/proc/fs/jbd2').some((e) => e.startsWith(`${name}-`));
  } catch {
    journal = false;
  }
  return `ext4 (${device} at ${at}, ${journal ? 'with a journal' : 'no journal'})`;
}

/** A TCP port free right now on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Sleeps. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Facts about the machine and the model, recorded with every result. */
export interface MachineInfo {
  cores: number;
  availableParallelism: number;
  cpuModel: string;
  memoryGiB: number;
  loadAvg: number[];
  node: string;
  platform: string;
  model: { name: string; sha256: string; config: string };
  intraOpThreads: number;
  /** The file system the runs' data folders are on (see fileSystemOf); absent in older records. */
  dataFileSystem?: string | null;
}

/** Machine facts and the model in use (from `VIGIL_MODEL` or models/yolov8n.json). */
export async function machineInfo(threads: number): Promise<MachineInfo> {
  const configPath = process.env.VIGIL_MODEL || path.join(PROJECT_DIR, 'models', 'yolov8n.json');
  const model = await loadModelConfig(configPath);
  return {
    cores: os.cpus().length,
    availableParallelism: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
    memoryGiB: round(os.totalmem() / 2 ** 30, 1),
    loadAvg: loadAvg(),
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    model: { name: model.name, sha256: model.sha256, config: path.relative(PROJECT_DIR, configPath) },
    intraOpThreads: threads,
    dataFileSystem: fileSystemOf(os.tmpdir()),
  };
}

/** Formats a number with thousands separators. */
export function fmt(v: number | null | undefined, digits = 1): string {
  if (v === null || v === undefined || Number.isNaN(v)) return 'n/a';
  return v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}

/** Formats bytes as B / KiB / MiB / GiB. */
export function bytes(v: number | null | undefined): string {
  if (v === null || v === undefined) return 'n/a';
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let x = v;
  let u = 0;
  while (Math.abs(x) >= 1024 && u < units.length - 1) {
    x /= 1024;
    u++;
  }
  return `${round(x, u === 0 ? 0 : 1)} ${units[u]}`;
}

/** Channel credentials the alert stage reads from the environment; removed so alerts go to the outbox. */
export const CHANNEL_ENV = [
  'SENDGRID_API_KEY', 'SENDGRID_BASE_URL', 'ALERT_EMAIL_FROM', 'SMS_API_BASE_URL', 'SMS_ACCOUNT_SID', 'SMS_AUTH_TOKEN', 'SMS_FROM', 'PAGERDUTY_EVENTS_URL',
] as const;

/** Removes channel credentials from this process's environment (benchmarks never send real alerts). */
export function outboxOnly(): void {
  for (const k of CHANNEL_ENV) delete process.env[k];
}

let clockTicks: number | null = null;

/** CPU time (user + system, ms) a process has used so far, from /proc (Linux); null elsewhere or when it is gone. */
export function procCpuMs(pid: number): number | null {
  try {
    clockTicks ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // After "pid (comm) ": state is field 0, utime field 11, stime field 12.
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / clockTicks;
  } catch {
    return null;
  }
}

/** CPU time of this process (all threads: main, libuv pool, onnxruntime, sharp), ms. */
export function selfCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** Apparent bytes and file count of a folder (recursive). */
export async function apparentSize(dir: string): Promise<{ bytes: number; files: number }> {
  let total = 0;
  let files = 0;
  let entries;
  try {
    entries = await fsp.readdir(dir, { withFileTypes: true });
  } catch {
    return { bytes: 0, files: 0 };
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      const sub = await apparentSize(p);
      total += sub.bytes;
      files += sub.files;
    } else if (e.isFile()) {
      total += (await fsp.stat(p)).size;
      files++;
    }
  }
  return { bytes: total, files };
}
