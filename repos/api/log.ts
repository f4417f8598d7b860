import type { Provenance } from '../../lib/schemas.js';
import { commitSummary, parseProvenance } from '../provenance.js';
import { gitArgs, type RepoStore } from '../store.js';
import { readCommitObject } from './objects.js';
import { resolveRef } from './resolve.js';

/** One commit as Vigil shows it. */
export interface CommitInfo {
  repo: string;
  commit: string;
  parents: string[];
  tree: string;
  time: string;
  summary: string;
  provenance: Provenance | null;
}

/** Reads one commit with its provenance (checked against its id, loose or packed). */
export async function readCommitInfo(store: RepoStore, repo: string, oid: string): Promise<CommitInfo> {
  const commit = await readCommitObject(gitArgs(store, repo), oid);
  return {
    repo,
    commit: oid,
    parents: commit.parents,
    tree: commit.tree,
    time: new Date(commit.committedAt * 1000).toISOString(),
    summary: commitSummary(commit.message),
    provenance: parseProvenance(commit.message),
  };
}

/** The history of a branch (newest first), up to `depth` commits. */
export async function log(store: RepoStore, repo: string, ref = 'main', depth?: number): Promise<CommitInfo[]> {
  const head = await resolveRef(store, repo, ref);
  if (!head) return [];
  const out: CommitInfo[] = [];
  let next: string | undefined = head;
  while (next && (depth === undefined || out.length < depth)) {
    const info = await readCommitInfo(store, repo, next);
    out.push(info);
    next = info.parents[0];
  }
  return out;
}
