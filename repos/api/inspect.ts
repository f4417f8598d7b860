import { VigilError } from '../../lib/errors.js';
import type { RepoStore } from '../store.js';
import { readCommitInfo, type CommitInfo } from './log.js';
import { listTree, type TreeFile } from './read.js';
import { resolveRef } from './resolve.js';

/** A commit with its full file list. */
export interface InspectResult extends CommitInfo {
  files: TreeFile[];
}

/** Shows a commit of a repo: its provenance and every file in its tree. */
export async function inspect(store: RepoStore, repo: string, ref = 'main'): Promise<InspectResult> {
  const oid = await resolveRef(store, repo, ref);
  if (!oid) throw new VigilError('E_NOT_FOUND', `${repo} has no commits yet`);
  const info = await readCommitInfo(store, repo, oid);
  return { ...info, files: await listTree(store, repo, info.tree) };
}
