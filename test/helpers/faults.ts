/**
 * Helpers for the fault suite (test/faults*.test.ts): seeded randomness, bounded waits, `vigil`
 * subprocesses (worker, whole system), free ports, Temporal activity inspection, alert counting and
 * the end-of-run invariants every fault test checks on the repos.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { readdir, readFile, stat } from 'node:fs/promises';
import type { Client } from '@temporalio/client';
import git from 'isomorphic-git';
import { batchIndexFile, fsck, gitArgs, listFiles, readJson, repoExists, type RepoStore } from '../../repos/index.js';
import type { RecordedRequest } from './providers.js';
import { seededRandom } from '../../lib/seededRandom.js';

export const BIN = path.resolve(import.meta.dirname, '../../bin/vigil.js');

// -----------------------------------------------------------------------------------------------
// Randomness and waiting

export { seededRandom };

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Polls `cond` every `intervalMs` until it returns a truthy value, which is returned.
 * @throws Error naming `what` when `timeoutMs` passes first.
 */
export async function waitFor<T>(what: string, cond: () => Promise<T> | T, opts: { timeoutMs: number; intervalMs?: number }): Promise<NonNullable<T>> {
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    const v = await cond();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${opts.timeoutMs} ms waiting for ${what}`);
    await sleep(opts.intervalMs ?? 100);
  }
}

/** Resolves with `p`, or rejects naming `what` after `ms`. */
export async function withTimeout<T>(what: string, p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves when `child` has exited (at once if it already has); rejects after `ms`. */
export function exited(child: ChildProcess, ms = 60_000): Promise<unknown> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return withTimeout(`process ${child.pid} to exit`, new Promise((r) => child.once('exit', r)), ms);
}

/**
 * What `find` reports twice, `ms` apart: a file a live writer holds in a passing state (an empty
 * lock or ref for microseconds) is not reported; one a dead or failed writer left is.
 */
export async function seenTwice(find: () => Promise<string[]>, ms: number): Promise<string[]> {
  const first = await find();
  if (!first.length) return first;
  await sleep(ms);
  const still = new Set(await find());
  return first.filter((f) => still.has(f));
}

/** A TCP port free on 127.0.0.1 right now. */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as net.AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

// -----------------------------------------------------------------------------------------------
// Subprocesses

/** A `vigil` subprocess with its output kept (last lines) and its readiness and exit as promises. */
export interface VigilProcess {
  proc: ChildProcess;
  pid: number;
  /** The Temporal worker identity a `vigil worker` process polls with (the SDK default). */
  identity: string;
  /** Resolves when a line matching `readyLine` was printed; rejects when the process exits first. */
  ready: Promise<void>;
  readyAt: number | null;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** stdout and stderr lines, newest last (bounded). */
  lines: string[];
  /** Sends `signal` (to the whole process group with `group`) and waits for the exit, bounded: SIGKILL after `ms`. */
  stop(signal?: NodeJS.Signals, opts?: { group?: boolean; ms?: number }): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Runs `node bin/vigil.js <args>` with `env` added to this process's environment. `detached` puts it
 * in its own process group (so a group SIGINT is a terminal's Ctrl-C, reaching its children too).
 */
export function spawnVigil(args: string[], env: Record<string, string>, opts: { readyLine: RegExp; detached?: boolean; echo?: boolean }): VigilProcess {
  const proc = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: opts.detached ?? false });
  const lines: string[] = [];
  let onReady: () => void = () => undefined;
  let onEarlyExit: (e: Error) => void = () => undefined;
  const vp: VigilProcess = {
    proc,
    pid: proc.pid!,
    identity: `${proc.pid}@${os.hostname()}`,
    ready: new Promise<void>((resolve, reject) => {
      onReady = resolve;
      onEarlyExit = reject;
    }),
    readyAt: null,
    exited: new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal }))),
    lines,
    stop: async (signal = 'SIGTERM', o = {}) => {
      const send = (sig: NodeJS.Signals) => {
        try {
          if (o.group) process.kill(-proc.pid!, sig);
          else if (proc.exitCode === null && proc.signalCode === null) proc.kill(sig);
        } catch {
          // already gone
        }
      };
      // A group is signalled even when its leader is gone: its children (the Temporal server) may not be.
      send(signal);
      const t = setTimeout(() => send('SIGKILL'), o.ms ?? 20_000);
      const r = await vp.exited;
      clearTimeout(t);
      return r;
    },
  };
  vp.ready.catch(() => undefined);
  const onData = (b: Buffer) => {
    for (const l of b.toString().split('\n').filter(Boolean)) {
      lines.push(l);
      if (lines.length > 200) lines.shift();
      if (opts.echo) process.stderr.write(`[vigil ${proc.pid}] ${l}\n`);
      if (vp.readyAt === null && opts.readyLine.test(l)) {
        vp.readyAt = Date.now();
        onReady();
      }
    }
  };
  proc.stdout!.on('data', onData);
  proc.stderr!.on('data', onData);
  void vp.exited.then(({ code, signal }) => onEarlyExit(new Error(`vigil ${args.join(' ')} exited (${code ?? signal}) before it was ready: ${lines.slice(-5).join(' | ')}`)));
  return vp;
}

/** One JSON line of `vigil ingest --follow --json`. */
export interface FollowLine {
  file: string;
  status: number;
  duplicate: boolean;
  tag: string;
  frameId: string;
  path: string;
}

/**
 * Runs `vigil ingest <args> --follow --json` in the background with exactly `env`, its stdout (JSON
 * lines) and stderr kept apart; stop() sends SIGINT and resolves the exit code.
 */
export function followIngest(args: string[], env: NodeJS.ProcessEnv) {
  const child = spawn(process.execPath, [BIN, 'ingest', ...args, '--follow', '--json'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    lines: () => out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as FollowLine),
    err: () => err,
    /** Waits until `pred` holds; the timeout's error shows what the process printed. */
    waitFor: (pred: () => boolean, what: string, timeoutMs = 30_000): Promise<void> =>
      waitFor(what, pred, { timeoutMs, intervalMs: 50 }).then(
        () => undefined,
        (e: Error) => {
          throw new Error(`${e.message}; stdout: ${out}; stderr: ${err}`);
        },
      ),
    stop(): Promise<number | null> {
      child.kill('SIGINT');
      return exited;
    },
  };
}

/** `vigil worker` against `address`/`taskQueue` on the data folder `dataDir`, plus `env`. */
export function spawnWorker(dataDir: string, address: string, taskQueue: string, env: Record<string, string> = {}): VigilProcess {
  return spawnVigil(['worker'], { VIGIL_DATA: dataDir, TEMPORAL_ADDRESS: address, TEMPORAL_TASK_QUEUE: taskQueue, VIGIL_THREADS: '1', ...env }, { readyLine: /^vigil worker: task queue/ });
}

// -----------------------------------------------------------------------------------------------
// Temporal inspection

/** An activity the server believes is running on a given worker. */
export interface RunningActivity {
  workflowId: string;
  runId: string;
  activityId: string;
  activityType: string;
  worker: string;
  startedAt: number;
  /** Seconds the server waits before it gives up on this attempt: the heartbeat timeout if set, else start-to-close. */
  giveUpAfterS: number;
}

/** A protobuf Timestamp or Duration in seconds (0 when absent). */
export const seconds = (d: { seconds?: unknown; nanos?: number | null } | null | undefined) => (d ? Number(d.seconds ?? 0) + (d.nanos ?? 0) / 1e9 : 0);

/** Every activity in state STARTED of running workflows on `taskQueue`. */
export async function runningActivities(client: Client, taskQueue: string): Promise<RunningActivity[]> {
  const out: RunningActivity[] = [];
  for await (const wf of client.workflow.list({ query: `TaskQueue = '${taskQueue}' AND ExecutionStatus = 'Running'` })) {
    const d = await client.workflow.getHandle(wf.workflowId, wf.runId).describe();
    for (const a of d.raw.pendingActivities ?? []) {
      // PENDING_ACTIVITY_STATE_STARTED = 2
      if (Number(a.state) !== 2) continue;
      const o = a.activityOptions;
      const hb = seconds(o?.heartbeatTimeout);
      out.push({
        workflowId: wf.workflowId, runId: wf.runId, activityId: a.activityId ?? '', activityType: a.activityType?.name ?? '',
        worker: a.lastWorkerIdentity ?? '', startedAt: seconds(a.lastStartedTime) * 1000,
        giveUpAfterS: hb > 0 ? Math.min(hb, seconds(o?.startToCloseTimeout) || hb) : seconds(o?.startToCloseTimeout),
      });
    }
  }
  return out;
}

/** A pending activity of a running workflow, with its retry state. */
export interface PendingActivity {
  workflowId: string;
  activityType: string;
  state: number;
  attempt: number;
  worker: string;
  failure: string;
}

/** Every pending activity of running workflows on `taskQueue`. */
export async function pendingActivities(client: Client, taskQueue: string): Promise<PendingActivity[]> {
  const out: PendingActivity[] = [];
  for await (const wf of client.workflow.list({ query: `TaskQueue = '${taskQueue}' AND ExecutionStatus = 'Running'` })) {
    const d = await client.workflow.getHandle(wf.workflowId, wf.runId).describe();
    for (const a of d.raw.pendingActivities ?? []) {
      out.push({
        workflowId: wf.workflowId, activityType: a.activityType?.name ?? '', state: Number(a.state), attempt: a.attempt ?? 0,
        worker: a.lastWorkerIdentity ?? '', failure: a.lastFailure?.message ?? '',
      });
    }
  }
  return out;
}

/** One line per pending activity (state, attempt, worker, last failure): for failure messages. */
export async function describePending(client: Client, taskQueue: string): Promise<string[]> {
  return (await pendingActivities(client, taskQueue)).map((a) => `${a.workflowId}: ${a.activityType} state=${a.state} attempt=${a.attempt} worker=${a.worker} failure=${a.failure || '-'}`);
}

// -----------------------------------------------------------------------------------------------
// Rules and alerts

/** A rules folder where a cat (chelsea.png) fires rule 100 for `user`, delivered by e-mail only. */
export function catEmailRules(dir: string, user = 'alice'): string {
  const rules = path.join(dir, 'rules');
  mkdirSync(path.join(rules, 'users'), { recursive: true });
  writeFileSync(path.join(rules, 'global.yaml'), 'rules:\n  - { id: 100, name: animals, unsafe: [dog, cat, raccoon], minScore: 0.8 }\n');
  writeFileSync(path.join(rules, 'users', `${user}.yaml`), `user: ${user}\nrules: [100]\ncontacts:\n  email: [${user}@example.com]\n`);
  return rules;
}

/** The alert id a SendGrid request carries (`custom_args.alertId`, else the `X-Vigil-Alert-Id` mail header). */
export function alertIdOf(r: RecordedRequest): string | undefined {
  const b = r.json as { custom_args?: { alertId?: string }; headers?: Record<string, string>; personalizations?: { custom_args?: { alertId?: string } }[] } | undefined;
  return b?.custom_args?.alertId ?? b?.personalizations?.[0]?.custom_args?.alertId ?? b?.headers?.['X-Vigil-Alert-Id'];
}

/** Per alert id: how many requests the provider answered 2xx. */
export function acceptedPerAlert(received: RecordedRequest[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const r of received) {
    if (r.status === null || r.status < 200 || r.status >= 300) continue;
    const id = alertIdOf(r) ?? '(no alert id)';
    m.set(id, (m.get(id) ?? 0) + 1);
  }
  return m;
}

// -----------------------------------------------------------------------------------------------
// Invariants

/** What the repos hold after a run, and the problems found against the frames that were accepted. */
export interface RepoCheck {
  standardized: string[];
  invalid: string[];
  detections: string[];
  problems: string[];
}

/**
 * The end-of-run invariants: every accepted frame is in exactly one of standardized/invalid and in
 * nothing else; every standardized frame has exactly one detection and no other frame has one; each
 * output path was committed exactly once across the batches' commits (nothing redone); `fsck` clean.
 */
export async function checkRepos(store: RepoStore, framePaths: string[], batchIds: string[]): Promise<RepoCheck> {
  const problems: string[] = [];
  const std = (await listFiles(store, 'standardized')).map((f) => f.path);
  const inv = (await listFiles(store, 'invalid')).map((f) => f.path);
  const det = (await listFiles(store, 'detections')).map((f) => f.path);
  const stdSet = new Set(std);
  const invSet = new Set(inv);
  const all = new Set(framePaths);
  for (const p of framePaths) {
    const n = (stdSet.has(p) ? 1 : 0) + (invSet.has(p) ? 1 : 0);
    if (n !== 1) problems.push(`frame ${p} is in ${n} of standardized/invalid`);
  }
  for (const p of [...std, ...inv]) if (!all.has(p)) problems.push(`output ${p} has no accepted frame`);
  const detSet = new Set(det);
  for (const p of std) if (!detSet.has(p)) problems.push(`standardized frame ${p} has no detection`);
  for (const p of det) if (!stdSet.has(p)) problems.push(`detection ${p} has no standardized frame`);
  // Nothing redone: on main, each output path was written by exactly one of the batches' commits.
  // Nothing overwritten: every indexed commit is on main, or never got there and its changes are
  // on main anyway (indexed, then the writer died before moving the branch: harmless).
  const w = await batchWrites(store, batchIds);
  problems.push(...w.lost, ...w.restarted);
  for (const [repo, have] of [['standardized', std.length], ['invalid', inv.length], ['detections', det.length]] as const) {
    const n = w.written[repo] ?? 0;
    if (n > have) problems.push(`${repo}: commits on main write ${n} paths for ${have} documents: work redone`);
    if (n < have) problems.push(`${repo}: commits on main write ${n} paths for ${have} documents: a commit is missing from the index`);
  }
  for (const p of (await fsck(store)).problems) problems.push(`fsck: ${p.where}: ${p.problem}`);
  return { standardized: std, invalid: inv, detections: det, problems };
}

/** What the batch index says the batches wrote, checked against each repo's main. */
export interface BatchWrites {
  /** Per repo: paths written by the batches' commits that are on main. */
  written: Record<string, number>;
  /** Indexed commits that never reached main but whose changes are on main (the writer stopped between indexing and moving the branch). */
  phantom: string[];
  /** Indexed commits not on main whose changes are not on main either: overwritten or dropped. */
  lost: string[];
  /** Indexed root commits other than the repo's first: main's history restarted there. */
  restarted: string[];
}

/** Reads the batch index of `batchIds` and checks every commit in it against its repo's main. */
export async function batchWrites(store: RepoStore, batchIds: string[]): Promise<BatchWrites> {
  const out: BatchWrites = { written: {}, phantom: [], lost: [], restarted: [] };
  const history = new Map<string, { oids: Set<string>; roots: string[] }>();
  const onMain = new Map<string, Set<string>>();
  for (const id of batchIds) {
    const text = await readFile(batchIndexFile(store, id), 'utf8').catch(() => '');
    for (const l of text.split('\n').filter(Boolean)) {
      const row = JSON.parse(l) as { repo: string; changed: number; commit: string; stage: string };
      if (!history.has(row.repo)) history.set(row.repo, await repoHistory(store, row.repo));
      const h = history.get(row.repo)!;
      const c = await git.readCommit({ ...gitArgs(store, row.repo), oid: row.commit }).catch(() => null);
      const label = `${row.repo}: commit ${row.commit.slice(0, 10)} (batch ${id}, ${row.stage}, ${row.changed} paths)`;
      if (h.oids.has(row.commit)) {
        out.written[row.repo] = (out.written[row.repo] ?? 0) + row.changed;
        if (c && c.commit.parent.length === 0 && (await firstCommit(store, row.repo)) !== row.commit) out.restarted.push(`${label} has no parent: the history of main restarted there`);
        continue;
      }
      if (!onMain.has(row.repo)) onMain.set(row.repo, new Set((await listFiles(store, row.repo)).map((f) => f.path)));
      const changed = c ? await changedPaths(store, row.repo, row.commit, c.commit.parent[0]) : null;
      const missing = changed?.filter((x) => !onMain.get(row.repo)!.has(x)) ?? ['(commit unreadable)'];
      if (missing.length === 0) out.phantom.push(`${label} never reached main; its changes are there`);
      else out.lost.push(`${label} is not in the history of main and ${missing.length} of its changes are not on main (${missing[0]}): overwritten`);
    }
  }
  return out;
}

/** Paths a commit added or changed relative to its parent (a retry may write them with other content: only the paths count). */
async function changedPaths(store: RepoStore, repo: string, commit: string, parent: string | undefined): Promise<string[]> {
  const mine = await listFiles(store, repo, commit);
  const before = new Set(parent ? (await listFiles(store, repo, parent)).map((f) => `${f.path} ${f.oid}`) : []);
  return mine.filter((f) => !before.has(`${f.path} ${f.oid}`)).map((f) => f.path);
}

/** The first commit the batch index (of any batch) recorded for `repo`: its only legitimate root commit. */
async function firstCommit(store: RepoStore, repo: string): Promise<string | undefined> {
  const dir = path.dirname(batchIndexFile(store, 'x'));
  let first: { at: string; commit: string } | undefined;
  for (const f of await readdir(dir).catch(() => [] as string[])) {
    for (const l of (await readFile(path.join(dir, f), 'utf8')).split('\n').filter(Boolean)) {
      const row = JSON.parse(l) as { repo: string; commit: string; at: string };
      if (row.repo === repo && (!first || row.at < first.at)) first = row;
    }
  }
  return first?.commit;
}

/** Every commit reachable from a repo's main, and the root commits among them. */
export async function repoHistory(store: RepoStore, repo: string): Promise<{ oids: Set<string>; roots: string[] }> {
  const oids = new Set<string>();
  const roots: string[] = [];
  if (!repoExists(store, repo)) return { oids, roots };
  for (const c of await git.log({ ...gitArgs(store, repo), ref: 'refs/heads/main' })) {
    oids.add(c.oid);
    if (c.commit.parent.length === 0) roots.push(c.oid);
  }
  return { oids, roots };
}

/**
 * Repo lock files (`repos/<repo>.git/vigil.lock`) that name no holder (empty or unparsable) and are
 * older than `minAgeMs`: left by a writer that died, or failed, between creating the file and
 * writing its holder into it.
 */
export async function orphanLocks(dataDir: string, minAgeMs = 5_000): Promise<string[]> {
  const out: string[] = [];
  const reposDir = path.join(dataDir, 'repos');
  for (const name of await readdir(reposDir).catch(() => [] as string[])) {
    const file = path.join(reposDir, name, 'vigil.lock');
    const st = await stat(file).catch(() => null);
    if (!st || Date.now() - st.mtimeMs < minAgeMs) continue;
    const text = await readFile(file, 'utf8').catch(() => null);
    if (text === null) continue;
    try {
      JSON.parse(text);
    } catch {
      out.push(file);
    }
  }
  return out;
}

/**
 * Refs that name no commit: a `refs/heads/main` that is empty or truncated, or any other file
 * under `refs/heads` (a temporary ref a writer left behind, which git tools take for a branch).
 */
export async function emptyRefs(dataDir: string): Promise<string[]> {
  const out: string[] = [];
  const reposDir = path.join(dataDir, 'repos');
  for (const name of await readdir(reposDir).catch(() => [] as string[])) {
    const heads = path.join(reposDir, name, 'refs', 'heads');
    for (const f of await readdir(heads).catch(() => [] as string[])) {
      const text = await readFile(path.join(heads, f), 'utf8').catch(() => null);
      if (f !== 'main') out.push(`${name}/refs/heads/${f} (${JSON.stringify(text)})`);
      else if (text !== null && !/^[0-9a-f]{40}\n?$/.test(text)) out.push(`${name}/refs/heads/main (${JSON.stringify(text)})`);
    }
  }
  return out;
}

/**
 * Files in a repo that a live system is writing to, or -1 when the read failed (a reader racing a
 * writer must not fail a wait loop).
 */
export async function liveCount(store: RepoStore, repo: string): Promise<number> {
  return (await listFiles(store, repo).catch(() => null))?.length ?? -1;
}

/** Frame documents in the `frames` repo whose object is missing or does not verify. */
export async function danglingFrames(store: RepoStore): Promise<string[]> {
  const bad: string[] = [];
  for (const f of await listFiles(store, 'frames')) {
    const doc = await readJson<{ object?: { sha256: string; size: number } }>(store, 'frames', f.path);
    try {
      const bytes = await store.objects.get(doc!.object!.sha256);
      if (bytes.length !== doc!.object!.size) bad.push(`${f.path}: size ${bytes.length} != ${doc!.object!.size}`);
    } catch (err) {
      bad.push(`${f.path}: ${(err as Error).message}`);
    }
  }
  return bad;
}

// -----------------------------------------------------------------------------------------------
// HTTP

/** One POST of a frame to the ingest API (fresh connection); resolves with the status and parsed JSON. */
export function postFrame(port: number, key: string, bytes: Buffer, captureTime: string, mediaType = 'image/png', timeoutMs = 60_000): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1', port, method: 'POST', path: '/v1/frames', agent: false,
        headers: { Authorization: `Bearer ${key}`, 'Content-Type': mediaType, 'X-Capture-Time': captureTime, 'Content-Length': bytes.length },
      },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('end', () => {
          const text = Buffer.concat(parts).toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = text;
          }
          resolve({ status: res.statusCode ?? 0, json });
        });
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`POST /v1/frames got no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(bytes);
  });
}
