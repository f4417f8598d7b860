import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { LocalObjectStore } from '../objectStore.js';
import { gitdirOf, listRepoNames, type RepoStore } from '../store.js';

/** Temp files at least this old are leftovers: a live writer keeps one for milliseconds to seconds. */
export const TEMP_FILE_MAX_AGE_MS = 60 * 60 * 1000;

/** What {@link sweepTempFiles} removed. */
export interface SweepResult {
  removed: number;
  bytes: number;
}

/** Staged frame bytes (`<sha256>.<pid>.<hex>` in the object store's tmp/). */
const STAGED = /^[0-9a-f]{64}\.\d+\.[0-9a-f]+$/;
/** A loose git object being written (`tmp_obj_<pid>_…` in objects/<aa>/, as git names its own). */
const LOOSE_TEMP = /^tmp_obj_/;
/**
 * A pack or index being written (`tmp_pack_<pid>_…` in objects/pack/, as git names its own; see
 * writerThreadMain.ts), or being rewritten by the journal's recovery (writeFileDurably's
 * `<name>.tmp-<pid>-<hex>`).
 */
const PACK_TEMP = /^(tmp_pack_|pack-[0-9a-f]{40}\.(pack|idx)\.tmp-\d+-[0-9a-f]+$)/;
/** A ref being written (`ref-<pid>-<n>.tmp` in the git folder). */
const REF_TEMP = /^ref-\d+-\d+\.tmp$/;

async function namesIn(dir: string): Promise<string[]> {
  try {
    return await fsp.readdir(dir);
  } catch {
    return [];
  }
}

/** Removes the files of `dir` whose names match and that are older than `before` (ms since epoch). */
async function sweepFolder(dir: string, pattern: { test(name: string): boolean }, before: number, out: SweepResult): Promise<void> {
  for (const name of await namesIn(dir)) {
    if (!pattern.test(name)) continue;
    const file = path.join(dir, name);
    try {
      const st = await fsp.lstat(file);
      if (!st.isFile() || st.mtimeMs >= before) continue;
      await fsp.rm(file);
      out.removed++;
      out.bytes += st.size;
    } catch {
      /* gone meanwhile (its writer finished it), or not ours to remove: left alone */
    }
  }
}

/**
 * Removes the temp files that writers leave when they die mid-write (a crash, SIGKILL, power
 * loss): staged frame bytes in the (local) object store's `tmp/` folder, and in each repo the loose
 * objects (`tmp_obj_*`), packs (`tmp_pack_*`) and refs (`ref-*.tmp`) not yet renamed into place,
 * and packs whose index never took its name (see writePackInThread). Nothing reads them;
 * whatever was acknowledged was renamed first, or is in the frames journal, whose recovery
 * rewrites it. Only files older than `olderThanMs` are removed, so a running writer's (in any
 * process, or on another host sharing the data folder) are never touched, and only these names.
 */
export async function sweepTempFiles(store: RepoStore, opts: { olderThanMs?: number; now?: number } = {}): Promise<SweepResult> {
  const before = (opts.now ?? Date.now()) - (opts.olderThanMs ?? TEMP_FILE_MAX_AGE_MS);
  const out: SweepResult = { removed: 0, bytes: 0 };
  if (store.objects instanceof LocalObjectStore) await sweepFolder(path.join(store.objects.root, 'tmp'), STAGED, before, out);
  for (const repo of await listRepoNames(store)) {
    const gitdir = gitdirOf(store, repo);
    await sweepFolder(gitdir, REF_TEMP, before, out);
    const packDir = path.join(gitdir, 'objects', 'pack');
    // Temp files, and a pack whose index never took its name (a writer killed before its commit
    // was journaled): nothing names its objects.
    const names = new Set(await namesIn(packDir));
    const unindexed = (n: string) => /^pack-[0-9a-f]{40}\.pack$/.test(n) && !names.has(n.replace(/\.pack$/, '.idx'));
    await sweepFolder(packDir, { test: (n) => PACK_TEMP.test(n) || unindexed(n) }, before, out);
    for (const fan of await namesIn(path.join(gitdir, 'objects'))) {
      if (/^[0-9a-f]{2}$/.test(fan)) await sweepFolder(path.join(gitdir, 'objects', fan), LOOSE_TEMP, before, out);
    }
  }
  return out;
}
