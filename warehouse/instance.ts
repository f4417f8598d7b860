import os from 'node:os';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { VigilError } from '../lib/errors.js';

/** DuckDB resources for one instance. */
export interface DuckOptions {
  /** Worker threads (DuckDB's `threads`); default {@link defaultThreads}. */
  threads?: number;
  /** DuckDB's `memory_limit`, e.g. `1GB`; beyond it DuckDB spills to the temp folder. Default: DuckDB's (80 % of RAM). */
  memoryLimit?: string;
}

/**
 * Threads DuckDB uses by default: `VIGIL_DUCKDB_THREADS` when set, else the cores available, at
 * most 4 (the warehouse's queries are small scans; more threads mostly add contention with the
 * pipeline running on the same machine).
 * @throws VigilError E_CONFIG for a bad `VIGIL_DUCKDB_THREADS`.
 */
export function defaultThreads(): number {
  const env = process.env.VIGIL_DUCKDB_THREADS;
  if (env !== undefined && env !== '') {
    const n = Number(env);
    if (!Number.isInteger(n) || n < 1 || n > 256) throw new VigilError('E_CONFIG', `VIGIL_DUCKDB_THREADS must be an integer from 1 to 256, got ${JSON.stringify(env)}`);
    return n;
  }
  return Math.max(1, Math.min(os.availableParallelism(), 4));
}

/**
 * An in-memory DuckDB whose spill files go to the system temp folder (DuckDB's default is `.tmp`
 * in the current directory, which would litter wherever a command was run), with an explicit
 * thread count and optional memory limit.
 */
export function memoryDuckDB(opts: DuckOptions = {}): Promise<DuckDBInstance> {
  const config: Record<string, string> = {
    temp_directory: path.join(os.tmpdir(), `vigil-duckdb-${process.pid}`),
    threads: String(opts.threads ?? defaultThreads()),
  };
  if (opts.memoryLimit !== undefined) config.memory_limit = opts.memoryLimit;
  return DuckDBInstance.create(':memory:', config);
}

let shared: Promise<DuckDBInstance> | null = null;

/**
 * One in-memory DuckDB per process for writing Parquet files (appends), created on first use and
 * kept: creating an instance costs more than a small append itself, and the records stage appends
 * to several tables for every chunk. Callers connect, use uniquely named tables, and drop them.
 */
export function sharedWriterDuckDB(): Promise<DuckDBInstance> {
  shared ??= memoryDuckDB({ threads: 1, memoryLimit: '512MB' }).catch((err: unknown) => {
    shared = null;
    throw err;
  });
  return shared;
}
