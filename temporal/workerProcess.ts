import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { ConfigSchema, PROJECT_DIR, type Config } from '../lib/config.js';
import { VigilError } from '../lib/errors.js';

/*
 * The worker processes of `vigil start`. A worker in the API's own process ran its activities'
 * JavaScript (git writes of every stage, sharp's bookkeeping, DuckDB appends, Temporal's workflow
 * tasks) on the event loop that serves the API, so under load each frame's answer waited behind
 * them. In a child process at a lower CPU priority the API keeps its event loop, gets the cores
 * first, and the pipeline takes what is left; a worker that crashes (a native library, out of
 * memory) no longer takes the API down with it, and is started again.
 */

const VIGIL_BIN = path.join(PROJECT_DIR, 'bin', 'vigil.js');

/** What a supervised `vigil worker` sends its parent once it polls its task queues. */
export const WORKER_READY = 'vigil-worker-ready';

/**
 * Set (to `1`) in the environment of the workers `vigil start` runs: such a worker reports when it
 * is ready and stops when its parent goes away. A `vigil worker` that another tool runs with an
 * IPC channel (pm2, a fork) is left alone.
 */
export const SUPERVISED_ENV = 'VIGIL_SUPERVISED_WORKER';

/** A worker's last stderr line this recent when it exits is shown as the reason. */
const LAST_WORDS_MS = 10_000;
/** Terminal colour codes (Temporal's own log lines have them). */
const ANSI = /\x1b\[[0-9;]*m/g;

/** The first restart waits this long; each quick death doubles it, up to RESTART_MAX_MS. */
const RESTART_MIN_MS = 1000;
const RESTART_MAX_MS = 30_000;
/** A worker that ran this long before it died is restarted after RESTART_MIN_MS again. */
const HEALTHY_RUN_MS = 60_000;
/** After the worker's own grace time, a stop waits this much longer before SIGKILL. */
const KILL_MARGIN_MS = 15_000;

/**
 * The environment that gives a child process exactly these settings: `base` (the parent's
 * environment: alert channel credentials, PATH…) without any setting of its own, then every
 * setting with a value, as text. Options given on the command line (`--port`) are in `config`, not
 * in the environment, and a setting `config` leaves unset is not taken from `base` either.
 */
export function configEnv(config: Config, base: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(base)) if (v !== undefined && !(k in ConfigSchema.shape)) env[k] = v;
  for (const [k, v] of Object.entries(config)) if (v !== undefined && v !== null) env[k] = String(v);
  return env;
}

let niceFound: boolean | null = null;

/** True when the `nice` command runs here (Linux, macOS): it lowers every thread of the process it starts. */
function niceCommand(): boolean {
  niceFound ??= spawnSync('nice', ['-n', '0', process.execPath, '-e', ''], { stdio: 'ignore', timeout: 10_000 }).status === 0;
  return niceFound;
}

/** How to run one worker process. */
export interface WorkerProcessOptions {
  /** The settings it runs with; TEMPORAL_ADDRESS must name the server. */
  config: Config;
  /** Its nice value (0: the parent's priority). */
  nice: number;
  /** Its name in log lines, e.g. `worker 1`. */
  name: string;
  log: (msg: string) => void;
  /** Extra environment (tests). */
  env?: Record<string, string>;
}

/** Where a worker process is. */
export type WorkerProcessState = 'STARTING' | 'RUNNING' | 'RESTARTING' | 'STOPPING' | 'STOPPED';

/**
 * One `vigil worker` child process, supervised: started with the parent's settings against the
 * given Temporal server, at the given nice value; started again (after 1 s, doubling up to 30 s
 * while it keeps dying quickly) whenever it exits on its own; stopped with SIGTERM (its running
 * activities get VIGIL_SHUTDOWN_GRACE_MS to finish), then SIGKILL. A child whose parent dies stops
 * too (its IPC channel closes).
 */
export class WorkerProcess {
  private child: ChildProcess | null = null;
  private status: WorkerProcessState = 'STOPPED';
  private lastExit: string | null = null;
  private delayMs = RESTART_MIN_MS;
  private timer: NodeJS.Timeout | null = null;
  private exited: Promise<void> = Promise.resolve();
  /** Times it was started again after dying. */
  restarts = 0;

  constructor(private readonly opts: WorkerProcessOptions) {
    if (!opts.config.TEMPORAL_ADDRESS) throw new VigilError('E_CONFIG', 'a worker process needs TEMPORAL_ADDRESS');
  }

  /** Its name in log lines and health, e.g. `worker 1`. */
  get name(): string {
    return this.opts.name;
  }

  /** The child's pid while one runs. */
  get pid(): number | null {
    return this.child?.pid ?? null;
  }

  /** The state, with the last exit while it waits to be started again (for the health endpoint). */
  state(): string {
    // Until a restarted worker is ready again, the exit that made it restart stays in view.
    return (this.status === 'RESTARTING' || this.status === 'STARTING') && this.lastExit ? `${this.status} (${this.lastExit})` : this.status;
  }

  /**
   * Starts the process and resolves once it is ready (connected, model loaded, polling).
   * @throws VigilError E_UNAVAILABLE when it exits before that (its own message is on stderr).
   */
  start(): Promise<void> {
    return new Promise((resolve, reject) => this.spawnChild({ resolve, reject }));
  }

  private spawnChild(first: { resolve: () => void; reject: (e: Error) => void } | null): void {
    const { config, nice, name } = this.opts;
    const node = [process.execPath, VIGIL_BIN, 'worker'];
    const useNice = nice > 0 && niceCommand();
    const [cmd, ...args] = useNice ? ['nice', '-n', String(nice), ...node] : node;
    const child = spawn(cmd!, args, {
      env: { ...configEnv(config), [SUPERVISED_ENV]: '1', ...this.opts.env },
      // Its log lines go where the parent's go (stderr through here, its last line kept for the
      // state); the IPC channel says when it is ready.
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
    });
    let last = { line: '', at: 0 };
    child.stderr?.on('data', (b: Buffer) => {
      process.stderr.write(b);
      const lines = b.toString().replace(ANSI, '').split('\n').map((l) => l.trim()).filter(Boolean);
      if (lines.length) last = { line: lines.at(-1)!.slice(0, 300), at: Date.now() };
    });
    // What it said last, if it said it just before it exited (the reason, most likely).
    const lastWords = () => (last.line && Date.now() - last.at < LAST_WORDS_MS ? `: ${last.line}` : '');
    this.child = child;
    this.status = 'STARTING';
    const startedAt = Date.now();
    if (nice > 0 && !useNice && child.pid) {
      try {
        os.setPriority(child.pid, nice);
      } catch {
        /* not permitted: it runs at the parent's priority */
      }
    }
    child.on('message', (m: unknown) => {
      if (m !== WORKER_READY || this.child !== child) return;
      // Ready after a stop began: it stays stopping (its exit then is no crash).
      if (this.status === 'STARTING') this.status = 'RUNNING';
      if (this.lastExit && this.status === 'RUNNING') this.opts.log(`vigil: ${name} running again (restart ${this.restarts})`);
      this.lastExit = null;
      first?.resolve();
      first = null;
    });
    this.exited = new Promise((done) => {
      child.once('exit', (code, signal) => {
        done();
        if (this.child !== child) return;
        this.child = null;
        const how = signal ? `killed by ${signal}` : code === 0 ? 'stopped on its own (exit code 0)' : `exit code ${code}${lastWords()}`;
        if (this.status === 'STOPPING') {
          this.status = 'STOPPED';
          first?.reject(new VigilError('E_UNAVAILABLE', `${name} stopped before it was ready`));
          return;
        }
        if (first) {
          this.status = 'STOPPED';
          first.reject(new VigilError('E_UNAVAILABLE', `${name} exited before it was ready (${how}); its message is above`));
          return;
        }
        this.restartLater(how, Date.now() - startedAt);
      });
    });
    child.once('error', (err) => {
      // spawn itself failed (no such command, out of processes): no exit event follows.
      if (this.child !== child || child.pid) return;
      this.child = null;
      if (first || this.status === 'STOPPING') {
        this.status = 'STOPPED';
        first?.reject(new VigilError('E_UNAVAILABLE', `${name} could not be started: ${err.message}`));
        return;
      }
      this.restartLater(`could not be started (${err.message})`, 0);
    });
  }

  /** Starts the process again after the current delay (1 s after a long run), doubling the next. */
  private restartLater(how: string, ranMs: number): void {
    if (ranMs >= HEALTHY_RUN_MS) this.delayMs = RESTART_MIN_MS;
    this.lastExit = `${this.opts.name} ${how}; started again in ${Math.round(this.delayMs / 1000)} s`;
    this.status = 'RESTARTING';
    this.opts.log(`vigil: ${this.lastExit}`);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.restarts++;
      this.spawnChild(null);
    }, this.delayMs);
    this.delayMs = Math.min(this.delayMs * 2, RESTART_MAX_MS);
  }

  /**
   * Marks the process as being stopped, before stop() is called: an exit from now on is not
   * restarted. `vigil start` calls it as soon as it is asked to stop, since a Ctrl-C in a terminal
   * reaches the worker too, which may finish before `vigil start` gets to stop().
   */
  beginStop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.status = this.child ? 'STOPPING' : 'STOPPED';
  }

  /**
   * Stops the process: SIGTERM (the worker lets running activities finish for
   * VIGIL_SHUTDOWN_GRACE_MS), then SIGKILL if it is still there KILL_MARGIN_MS later. No restart follows.
   */
  async stop(): Promise<void> {
    this.beginStop();
    const child = this.child;
    if (!child) return;
    child.kill('SIGTERM');
    const waitMs = this.opts.config.VIGIL_SHUTDOWN_GRACE_MS + KILL_MARGIN_MS;
    const kill = setTimeout(() => {
      this.opts.log(`vigil: ${this.opts.name} did not stop within ${Math.round(waitMs / 1000)} s (hung?); killed`);
      child.kill('SIGKILL');
    }, waitMs);
    await this.exited;
    clearTimeout(kill);
  }

  /** Stops the process at once (SIGKILL), with no restart: for a second Ctrl-C. */
  kill(): void {
    this.beginStop();
    this.child?.kill('SIGKILL');
  }
}

/**
 * One state for a host's worker processes (GET /v1/health): `RUNNING` when all run, `NONE` when
 * there are none; with one, its state; with several, e.g. `1 of 2 running; worker 2 RESTARTING (…)`.
 */
export function workersState(workers: readonly WorkerProcess[]): string {
  if (workers.length === 0) return 'NONE';
  const states = workers.map((w) => w.state());
  if (states.every((s) => s === 'RUNNING')) return 'RUNNING';
  if (workers.length === 1) return states[0]!;
  const down = workers.flatMap((w, i) => (states[i] === 'RUNNING' ? [] : [`${w.name} ${states[i]}`]));
  return `${workers.length - down.length} of ${workers.length} running; ${down.join('; ')}`;
}
