import { execFile } from 'node:child_process';
import fs, { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { VigilError } from '../../lib/errors.js';
import { withLock } from '../lock.js';
import { gitdirOf, repoExists, type RepoStore } from '../store.js';

/** Path of the lock that serializes packers of one repo (packRepo and gcRepo; writers never take it). */
export function packLockPathOf(store: RepoStore, repo: string): string {
  return path.join(gitdirOf(store, repo), 'vigil-pack.lock');
}

const FANOUT = /^[0-9a-f]{2}$/;

/** Loose objects in a repo: the files in its `objects/xx` folders (temp files included). */
export async function countLooseObjects(store: RepoStore, repo: string): Promise<number> {
  const objects = path.join(gitdirOf(store, repo), 'objects');
  let dirs: string[];
  try {
    dirs = (await fsp.readdir(objects)).filter((d) => FANOUT.test(d));
  } catch {
    return 0;
  }
  let n = 0;
  for (const d of dirs) n += (await fsp.readdir(path.join(objects, d)).catch(() => [])).length;
  return n;
}

/** Packs in a repo: their indexes (git ignores a pack without one, e.g. one a crash left). */
export async function countPacks(store: RepoStore, repo: string): Promise<number> {
  const dir = path.join(gitdirOf(store, repo), 'objects', 'pack');
  return (await fsp.readdir(dir).catch(() => [] as string[])).filter((f) => f.endsWith('.idx')).length;
}

/** What one packRepo call did. */
export interface PackResult {
  repo: string;
  looseBefore: number;
  looseAfter: number;
  packsBefore: number;
  packsAfter: number;
  ms: number;
}

/**
 * Packs a repo while it is in use: `git repack --geometric=2 -d` puts every loose object
 * (reachable or not) into a new pack and rolls small packs up into bigger ones, so a repo keeps
 * a few packs (about log2 of its object count) however often it is packed, and each run costs
 * about the objects it packs, not the repo's size.
 *
 * It needs no writer lock: it only deletes loose objects that are now in a pack and packs whose
 * every object is now in another, so nothing a commit in progress or a reader needs goes away (a
 * reader that finds a loose object gone looks in the packs, see readObject). Packers of one repo
 * (this and gcRepo) take turns on the repo's pack lock. git runs at the lowest CPU priority with
 * one pack thread, so packing yields to ingest and inference; packs are fsync'd by git before the
 * loose objects go. Aborting (`signal`) stops git, which leaves the repo as it was (git writes a
 * pack under a temporary name and deletes nothing before the pack is in place).
 * @throws VigilError E_TOOL_MISSING when git is not installed, E_STORAGE when git fails.
 */
export async function packRepo(store: RepoStore, repo: string, opts: { signal?: AbortSignal } = {}): Promise<PackResult> {
  if (!repoExists(store, repo)) throw new VigilError('E_NOT_FOUND', `no repo ${repo}`);
  const gitdir = gitdirOf(store, repo);
  return withLock(packLockPathOf(store, repo), async () => {
    const t0 = performance.now();
    const [looseBefore, packsBefore] = [await countLooseObjects(store, repo), await countPacks(store, repo)];
    await runGit(gitdir, repo, [
      '-c', 'gc.auto=0', '-c', 'repack.writeBitmaps=false', '-c', 'pack.threads=1', '-c', 'core.fsync=pack,pack-metadata',
      'repack', '-d', '-q', '--geometric=2',
    ], { signal: opts.signal, lowPriority: true });
    forgetVanishedPacks(store.cache);
    const [looseAfter, packsAfter] = [await countLooseObjects(store, repo), await countPacks(store, repo)];
    return { repo, looseBefore, looseAfter, packsBefore, packsAfter, ms: Math.round(performance.now() - t0) };
  }, 600_000);
}

/**
 * Runs a packing git command on a repo (up to 10 minutes), at the lowest CPU priority when asked.
 * @throws VigilError E_TOOL_MISSING when git is not installed, E_UNAVAILABLE when `signal` stopped
 *   it, E_STORAGE when git fails (with git's first line of complaint).
 */
export function runGit(gitdir: string, repo: string, args: string[], opts: { signal?: AbortSignal; lowPriority?: boolean } = {}): Promise<void> {
  const { signal } = opts;
  return new Promise((resolve, reject) => {
    const child = execFile('git', ['--git-dir', gitdir, ...args], { timeout: 600_000, signal }, (err, _out, stderr) => {
      if (!err) return resolve();
      if (signal?.aborted) return reject(new VigilError('E_UNAVAILABLE', `packing ${repo} was stopped`));
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return reject(new VigilError('E_TOOL_MISSING', 'git is not installed: it is needed to pack repos'));
      reject(new VigilError('E_STORAGE', `git ${args.find((a) => !a.startsWith('-') && !a.includes('='))} failed on ${repo}: ${(String(stderr).trim() || (err as Error).message).split('\n')[0]}`));
    });
    if (opts.lowPriority && child.pid) {
      try {
        os.setPriority(child.pid, 19);
      } catch {
        // Already gone, or not allowed: it runs at normal priority.
      }
    }
  });
}

/**
 * Drops isomorphic-git's cached pack indexes (and pack contents) of packs that no longer exist
 * (rolled up by packRepo, or replaced by gcRepo), so a long-running process does not keep them in
 * memory. The cache is keyed by pack index path under a symbol isomorphic-git does not export.
 * @returns how many were dropped.
 */
export function forgetVanishedPacks(cache: object): number {
  const key = Object.getOwnPropertySymbols(cache).find((s) => s.description === 'PackfileCache');
  const packs = key ? (cache as Record<symbol, unknown>)[key] : undefined;
  if (!(packs instanceof Map)) return 0;
  let n = 0;
  for (const file of [...packs.keys()]) {
    if (typeof file === 'string' && !fs.existsSync(file)) {
      packs.delete(file);
      n++;
    }
  }
  return n;
}
