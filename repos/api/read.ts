import { VigilError } from '../../lib/errors.js';
import { repoPath } from '../layout.js';
import { gitArgs, repoLayout, type RepoStore } from '../store.js';
import { readCommitTree, readTreeEntries } from './objects.js';
import { readFiles } from './readMany.js';
import { resolveRef } from './resolve.js';

/**
 * Reads one file of a repo at a ref (branch or commit).
 * @returns the bytes, or null when the file (or any commit) does not exist.
 */
export async function readFile(store: RepoStore, repo: string, filepath: string, ref = 'main'): Promise<Buffer | null> {
  return (await readFiles(store, repo, [filepath], ref)).get(filepath) ?? null;
}

/** Reads and JSON-parses one file; null when absent. @throws VigilError E_CORRUPT on bad JSON. */
export async function readJson<T = unknown>(store: RepoStore, repo: string, filepath: string, ref = 'main'): Promise<T | null> {
  const bytes = await readFile(store, repo, filepath, ref);
  if (!bytes) return null;
  try {
    return JSON.parse(bytes.toString('utf8')) as T;
  } catch {
    throw new VigilError('E_CORRUPT', `${repo}@${ref}:${filepath} is not valid JSON`);
  }
}

/** A file in a repo tree. */
export interface TreeFile {
  path: string;
  /** git blob id. */
  oid: string;
}

/** Lists every file of a tree, sorted by path (the repo's paths, see repos/layout.ts). */
export async function listTree(store: RepoStore, repo: string, treeOid: string): Promise<TreeFile[]> {
  const layout = repoLayout(store, repo);
  const out = (await listStored(gitArgs(store, repo), treeOid, '')).map((f) => ({ path: repoPath(layout, f.path), oid: f.oid }));
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** Every file of a tree as git stores it, depth first. */
async function listStored(args: ReturnType<typeof gitArgs>, treeOid: string, prefix: string): Promise<TreeFile[]> {
  const out: TreeFile[] = [];
  for (const e of await readTreeEntries(args, treeOid)) {
    if (e.type === 'tree') out.push(...(await listStored(args, e.oid, `${prefix}${e.path}/`)));
    else out.push({ path: prefix + e.path, oid: e.oid });
  }
  return out;
}

/** Lists every file of a repo at a ref (empty for a repo with no commits). */
export async function listFiles(store: RepoStore, repo: string, ref = 'main'): Promise<TreeFile[]> {
  const oid = await resolveRef(store, repo, ref);
  if (!oid) return [];
  return listTree(store, repo, await readCommitTree(gitArgs(store, repo), oid));
}
