import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { VigilError } from '../lib/errors.js';
// @ts-expect-error plain JS module without types
import { ensureTemporal } from '../scripts/temporal.mjs';

/** A running embedded Temporal dev server. */
export interface DevServer {
  address: string;
  uiUrl: string;
  process: ChildProcess;
  /** Stops the server (SIGTERM, then SIGKILL after 10 s). */
  stop: () => Promise<void>;
}

function portOpen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port }, () => {
      s.end();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

/**
 * Starts the pinned Temporal CLI's dev server with its state in a SQLite file under the data
 * folder (so a restart resumes unfinished workflows) and its Web UI on localhost.
 * @throws VigilError E_UNAVAILABLE when the port is taken or the server does not come up.
 */
export async function startDevServer(opts: { dataDir: string; port: number; uiPort: number; log?: (line: string) => void }): Promise<DevServer> {
  const bin = ensureTemporal({ quiet: false }) as string;
  const dir = path.join(opts.dataDir, 'temporal');
  mkdirSync(dir, { recursive: true });
  const dbFile = path.join(dir, 'temporal.db');
  const pidFile = path.join(dir, 'server.pid');
  await stopLeftover(pidFile, dbFile);
  if (await portOpen('127.0.0.1', opts.port)) {
    throw new VigilError('E_UNAVAILABLE', `port ${opts.port} is already in use; is another vigil running? (set VIGIL_TEMPORAL_PORT or TEMPORAL_ADDRESS)`);
  }
  const child = spawn(bin, [
    'server', 'start-dev', '--ip', '127.0.0.1', '--port', String(opts.port), '--ui-port', String(opts.uiPort),
    '--db-filename', dbFile, '--namespace', 'default', '--log-level', 'warn',
    // SQLite's write-ahead log instead of its default rollback journal (a journal file created and
    // deleted per transaction): about a fifth less server CPU per activity, measured. synchronous=full
    // keeps every commit fsync'd, so a power loss still loses no workflow start or completion.
    '--sqlite-pragma', 'journal_mode=wal', '--sqlite-pragma', 'synchronous=full',
    // Its own process group: a Ctrl-C at the terminal reaches vigil only, which then stops the
    // worker first and the server last, so finished activities are reported before it goes.
  ], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  if (child.pid !== undefined) writeFileSync(pidFile, String(child.pid));
  const lines: string[] = [];
  const onData = (b: Buffer) => {
    for (const l of b.toString().split('\n').filter(Boolean)) {
      lines.push(l);
      if (lines.length > 50) lines.shift();
      opts.log?.(l);
    }
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  // If vigil itself dies, the server must not outlive it by much: the next start stops it (pid file).
  const deadline = Date.now() + 60_000;
  while (!(await portOpen('127.0.0.1', opts.port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new VigilError('E_UNAVAILABLE', `Temporal dev server did not start: ${lines.slice(-3).join(' | ') || 'no output'}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  // The port opens before the frontend is ready: wait until it answers (or the server dies).
  for (;;) {
    try {
      const probe = await Connection.connect({ address: `127.0.0.1:${opts.port}`, connectTimeout: 5000 });
      await probe.close();
      break;
    } catch (err) {
      if (child.exitCode !== null || Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new VigilError('E_UNAVAILABLE', `Temporal dev server did not become healthy: ${(err as Error).message}; ${lines.slice(-3).join(' | ') || 'no output'}`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  return {
    address: `127.0.0.1:${opts.port}`,
    uiUrl: `http://127.0.0.1:${opts.uiPort}`,
    process: child,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(t);
      }
      rmSync(pidFile, { force: true });
    },
  };
}

/**
 * Stops a dev server that a previous vigil left running on this data folder (vigil was killed
 * with SIGKILL, so it could not stop its server, which runs in its own process group). Only a
 * process whose command line names this data folder's database is touched.
 */
async function stopLeftover(pidFile: string, dbFile: string): Promise<void> {
  let pid: number;
  try {
    pid = Number(readFileSync(pidFile, 'utf8').trim());
  } catch {
    return;
  }
  const ours = () => {
    try {
      return Number.isInteger(pid) && pid > 0 && readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(dbFile);
    } catch {
      return false;
    }
  };
  if (ours()) {
    process.kill(pid, 'SIGTERM');
    for (let i = 0; i < 100 && ours(); i++) await new Promise((r) => setTimeout(r, 100));
    if (ours()) process.kill(pid, 'SIGKILL');
    for (let i = 0; i < 50 && ours(); i++) await new Promise((r) => setTimeout(r, 100));
  }
  rmSync(pidFile, { force: true });
}
