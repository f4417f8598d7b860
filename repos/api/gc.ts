import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { recoverJournal } from '../journal.js';
import { withLock } from '../lock.js';
import { gitdirOf, listRepoNames, lockPathOf, type RepoStore } from '../store.js';
import { forgetVanishedPacks, packLockPathOf, runGit } from './pack.js';

/** Bytes allocated on disk by a folder (recursive; counts whole blocks, which is what loose objects cost). */
export async function diskUsage(dir: string): Promise<number> {
  let total = 0;
  let entries;
  try {
    entries = await fsp.readdir(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) total += await diskUsage(p);
    else if (e.isFile()) total += (await fsp.stat(p)).blocks * 512;
  }
  return total;
}

/** Size of one repo before and after packing. */
export interface GcResult {
  repo: string;
  bytesBefore: number;
  bytesAfter: number;
}

/**
 * Packs a repo's loose objects (isomorphic-git writes one zlib file per object; git's packer adds
 * delta compression, which is what keeps metadata under 1 KB per frame per stage). Runs the
 * system `git gc` while holding the repo's writer lock, so no commit races it.
 * @throws VigilError E_TOOL_MISSING when git is not installed, E_STORAGE when git fails.
 */
export async function gcRepo(store: RepoStore, repo: string): Promise<GcResult> {
  const gitdir = gitdirOf(store, repo);
  // The repo's journal first (replayed if a crash left one, flushed and dropped): what gc packs is then durable on its own.
  await recoverJournal(store, repo);
  // Packers take turns (see packRepo); the writer lock keeps commits out while unreachable objects are pruned.
  return withLock(packLockPathOf(store, repo), () => withLock(lockPathOf(store, repo), async () => {
    const bytesBefore = await diskUsage(gitdir);
    await runGit(gitdir, repo, ['-c', 'gc.auto=0', '-c', 'repack.writeBitmaps=false', '-c', 'gc.writeCommitGraph=false', 'gc', '--quiet', '--prune=now']);
    forgetVanishedPacks(store.cache);
    return { repo, bytesBefore, bytesAfter: await diskUsage(gitdir) };
  }, 600_000), 600_000);
}

/** Packs every repo. */
export async function gcAll(store: RepoStore): Promise<GcResult[]> {
  const out: GcResult[] = [];
  for (const repo of await listRepoNames(store)) out.push(await gcRepo(store, repo));
  return out;
}
