import { VigilError } from '../../lib/errors.js';
import { assertRepoPath, gitArgs, type RepoStore } from '../store.js';
import { lookupBlobs } from './commit.js';
import { readBlobBytes } from './objects.js';
import { resolveRef } from './resolve.js';

/**
 * Reads many files of a repo at one ref. The ref is resolved once and the paths are looked up
 * through the shared tree cache (lookupBlobs), so every folder's tree is read at most once however
 * many of the paths are in it (a device's folder holds one entry per frame it ever sent).
 * @returns the bytes of each path, or null for a path (or a ref with no commits) that does not exist.
 */
export async function readFiles(store: RepoStore, repo: string, paths: readonly string[], ref = 'main'): Promise<Map<string, Buffer | null>> {
  for (const p of paths) assertRepoPath(p);
  const out = new Map<string, Buffer | null>(paths.map((p) => [p, null]));
  const commit = await resolveRef(store, repo, ref);
  if (!commit || paths.length === 0) return out;
  const args = gitArgs(store, repo);
  for (const [p, oid] of await lookupBlobs(store, repo, commit, paths)) {
    if (oid) out.set(p, await readBlobBytes(args, oid));
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
