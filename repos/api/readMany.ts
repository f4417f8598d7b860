import git from 'isomorphic-git';
import { VigilError } from '../../lib/errors.js';
import { assertRepoPath, gitArgs, type RepoStore } from '../store.js';
import { resolveRef } from './resolve.js';

type Entry = { path: string; oid: string; type: string };

/**
 * Reads many files of a repo at one ref. The ref and commit are resolved once and every folder's
 * tree is read once, however many of the paths are in it (reading files one by one walks the
 * whole path each time, and a device's folder holds one entry per frame it ever sent).
 * @returns the bytes of each path, or null for a path (or a ref with no commits) that does not exist.
 */
export async function readFiles(store: RepoStore, repo: string, paths: readonly string[], ref = 'main'): Promise<Map<string, Buffer | null>> {
  for (const p of paths) assertRepoPath(p);
  const out = new Map<string, Buffer | null>(paths.map((p) => [p, null]));
  const oid = await resolveRef(store, repo, ref);
  if (!oid || paths.length === 0) return out;
  const args = gitArgs(store, repo);
  const { commit } = await git.readCommit({ ...args, oid });
  const trees = new Map<string, Map<string, Entry> | null>();
  const treeOf = async (dir: string): Promise<Map<string, Entry> | null> => {
    if (trees.has(dir)) return trees.get(dir)!;
    let entries: Map<string, Entry> | null = null;
    if (dir === '') {
      entries = new Map((await git.readTree({ ...args, oid: commit.tree })).tree.map((e) => [e.path, e]));
    } else {
      const slash = dir.lastIndexOf('/');
      const parent = await treeOf(slash < 0 ? '' : dir.slice(0, slash));
      const e = parent?.get(dir.slice(slash + 1));
      if (e?.type === 'tree') entries = new Map((await git.readTree({ ...args, oid: e.oid })).tree.map((x) => [x.path, x]));
    }
    trees.set(dir, entries);
    return entries;
  };
  for (const p of paths) {
    const slash = p.lastIndexOf('/');
    const e = (await treeOf(slash < 0 ? '' : p.slice(0, slash)))?.get(p.slice(slash + 1));
    if (e?.type !== 'blob') continue;
    const { blob } = await git.readBlob({ ...args, oid: e.oid });
    out.set(p, Buffer.from(blob));
  }
  return out;
}

/**
 * {@link readFiles}, JSON-parsed.
 * @throws VigilError E_CORRUPT when a file is not valid JSON.
 */
export async function readJsons<T = unknown>(store: RepoStore, repo: string, paths: readonly string[], ref = 'main'): Promise<Map<string, T | null>> {
  const out = new Map<string, T | null>();
  for (const [p, bytes] of await readFiles(store, repo, paths, ref)) {
    if (!bytes) {
      out.set(p, null);
      continue;
    }
    try {
      out.set(p, JSON.parse(bytes.toString('utf8')) as T);
    } catch {
      throw new VigilError('E_CORRUPT', `${repo}@${ref}:${p} is not valid JSON`);
    }
  }
  return out;
}
