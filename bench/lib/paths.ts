/**
 * Folders the benchmarks use.
 */
import os from 'node:os';
import path from 'node:path';
import { PROJECT_DIR } from '../../lib/config.js';

/** The bench folder (bench/). */
export const BENCH_DIR = path.resolve(import.meta.dirname, '..');

/** Where run results go (git-ignored). */
export const OUT_DIR = path.join(BENCH_DIR, 'out');

/** The committed summary of the latest figures. */
export const RESULTS_MD = path.join(BENCH_DIR, 'RESULTS.md');

/** The shared real-photo fixtures (next to the project). */
export const FIXTURES_DIR = process.env.VIGIL_FIXTURES || path.resolve(PROJECT_DIR, 'test/fixtures/images');

/** The model config in use. */
export const MODEL_CONFIG = process.env.VIGIL_MODEL || path.join(PROJECT_DIR, 'models', 'yolov8n.json');

/** The CLI entry point (spawned for out-of-process workers). */
export const VIGIL_BIN = path.join(PROJECT_DIR, 'bin', 'vigil.js');

/** Per-user cache for generated benchmark data: `${VIGIL_CACHE:-~/.cache/vigil}/bench`. */
export function benchCacheDir(): string {
  return path.join(process.env.VIGIL_CACHE || path.join(os.homedir(), '.cache', 'vigil'), 'bench');
}
