import git from 'isomorphic-git';
import { isVigilError, VigilError } from '../../lib/errors.js';
import { readObject } from './objects.js';
import { gitArgs, repoExists, type RepoStore } from '../store.js';

/**
 * Resolves a ref (branch name, full commit id or unambiguous prefix) to a commit id.
 * @returns null when the ref is a branch with no commits yet.
 * @throws VigilError E_NOT_FOUND for an unknown repo or ref.
 */
export async function resolveRef(store: RepoStore, repo: string, ref = 'main'): Promise<string | null> {
  if (!repoExists(store, repo)) throw new VigilError('E_NOT_FOUND', `no repo named ${repo}`);
  const args = gitArgs(store, repo);
  // A full id (what stage outputs and provenance name) needs no scan of every object id, which
  // expandOid does for one that is not loose (the frames repo's commits are in packs, see
  // commitChanges): reading the object looks it up loose, then in each pack's index.
  if (/^[0-9a-f]{40}$/.test(ref)) {
    try {
      await readObject(args, ref);
      return ref;
    } catch (err) {
      // Damaged: said now. Missing (or unreadable for another reason): maybe a branch of that name.
      if (isVigilError(err, 'E_CORRUPT')) throw err;
    }
  }
  if (/^[0-9a-f]{4,39}$/.test(ref)) {
    try {
      return await git.expandOid({ ...args, oid: ref });
    } catch {
      // not an object id: fall through to branch names
    }
  }
  if (!/^[A-Za-z0-9_][A-Za-z0-9._/-]{0,100}$/.test(ref) || ref.includes('..')) {
    throw new VigilError('E_BAD_ID', `invalid ref ${JSON.stringify(ref)}`);
  }
  try {
    return await git.resolveRef({ ...args, ref: `refs/heads/${ref}` });
  } catch {
    const branches = await git.listBranches({ ...args });
    // Created by another writer between the two reads (a repo's first commit): read it again.
    if (branches.includes(ref)) return git.resolveRef({ ...args, ref: `refs/heads/${ref}` });
    if (branches.length === 0 && ref === 'main') return null;
    throw new VigilError('E_NOT_FOUND', `${repo} has no branch or commit ${ref}`);
  }
}

/** Parses `repo@ref` (ref defaults to main). */
export function parseRepoRef(spec: string): { repo: string; ref: string } {
  const at = spec.indexOf('@');
  return at < 0 ? { repo: spec, ref: 'main' } : { repo: spec.slice(0, at), ref: spec.slice(at + 1) || 'main' };
}
