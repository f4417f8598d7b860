// Builds the Temporal CLI (dev server with SQLite state and the Web UI) from Go modules at a
// pinned version, once, into a per-user cache keyed by version, and reuses it from every clone.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** The pinned Temporal CLI version (later tags carry a `replace` directive that `go install` refuses). */
export const TEMPORAL_CLI_VERSION = 'v1.5.1';

/** Per-user cache folder (VIGIL_CACHE, default ~/.cache/vigil). */
export function cacheDir() {
  return process.env.VIGIL_CACHE || path.join(os.homedir(), '.cache', 'vigil');
}

/** Where the pinned CLI lives (VIGIL_TEMPORAL_BIN overrides). */
export function temporalBinPath() {
  return process.env.VIGIL_TEMPORAL_BIN || path.join(cacheDir(), 'tools', `temporal-${TEMPORAL_CLI_VERSION}`, 'temporal');
}

/** Builds the CLI unless it is already cached; returns its path. Throws with one clear line on failure. */
export function ensureTemporal({ quiet = false } = {}) {
  const bin = temporalBinPath();
  if (existsSync(bin)) return bin;
  const go = spawnSync('go', ['version'], { encoding: 'utf8' });
  if (go.error || go.status !== 0) {
    throw new Error('Go is required to build the Temporal CLI (go install github.com/temporalio/cli/cmd/temporal@' + TEMPORAL_CLI_VERSION + '); install Go >= 1.23 or set VIGIL_TEMPORAL_BIN to an existing temporal binary');
  }
  const dir = path.dirname(bin);
  const staging = `${dir}.building-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  if (!quiet) console.log(`vigil setup: building Temporal CLI ${TEMPORAL_CLI_VERSION} from Go modules (once; several minutes)…`);
  const r = spawnSync('go', ['install', `github.com/temporalio/cli/cmd/temporal@${TEMPORAL_CLI_VERSION}`], {
    env: { ...process.env, GOBIN: staging, GOFLAGS: '-mod=mod' },
    stdio: quiet ? 'pipe' : 'inherit',
    encoding: 'utf8',
  });
  if (r.status !== 0) {
    const tail = (r.stderr || '').trim().split('\n').slice(-3).join(' | ');
    rmSync(staging, { recursive: true, force: true });
    throw new Error(`building the Temporal CLI failed (exit ${r.status}): ${tail}`);
  }
  mkdirSync(path.dirname(dir), { recursive: true });
  if (!existsSync(bin)) {
    try {
      renameSync(staging, dir);
    } catch {
      // another build finished first
    }
  }
  rmSync(staging, { recursive: true, force: true });
  if (!existsSync(bin)) throw new Error(`Temporal CLI build finished but ${bin} is missing`);
  return bin;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  try {
    console.log(ensureTemporal());
  } catch (err) {
    console.error(`vigil setup: ${err.message}`);
    process.exit(1);
  }
}
