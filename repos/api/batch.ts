import { promises as fsp } from 'node:fs';
import { VigilError } from '../../lib/errors.js';
import type { RepoStore } from '../store.js';
import { batchIndexFile } from './commit.js';
import { readCommitInfo, type CommitInfo } from './log.js';
import { resolveRef } from './resolve.js';

/**
 * Every commit a batch caused, in every repo (Pachyderm's global commit), oldest first.
 * Reads the batch index, then re-reads each commit so the provenance shown is the commit's own.
 * The index line is written just before the branch moves, so a writer that died in between leaves
 * a line for a commit that never reached its branch: such commits are left out (the retry that
 * followed made its own commit).
 * @throws VigilError E_NOT_FOUND when the batch never committed anything.
 */
export async function batchCommits(store: RepoStore, batchId: string): Promise<CommitInfo[]> {
  let text: string;
  try {
    text = await fsp.readFile(batchIndexFile(store, batchId), 'utf8');
  } catch {
    throw new VigilError('E_NOT_FOUND', `no commits recorded for batch ${batchId}`);
  }
  const rows: Array<{ repo: string; branch: string; commit: string }> = [];
  const seen = new Set<string>();
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const row = JSON.parse(line) as { repo: string; commit: string; branch?: string };
    const key = `${row.repo}@${row.commit}`;
    if (seen.has(key)) continue;
    seen.add(key);
    rows.push({ repo: row.repo, branch: row.branch ?? 'main', commit: row.commit });
  }
  const reached = new Set<string>();
  for (const [where, commits] of groupBy(rows)) {
    const [repo, branch] = where.split('\0') as [string, string];
    for (const c of await onBranch(store, repo, branch, commits)) reached.add(`${repo}@${c}`);
  }
  const out: CommitInfo[] = [];
  for (const row of rows) {
    const key = `${row.repo}@${row.commit}`;
    if (!reached.has(key)) continue;
    const info = await readCommitInfo(store, row.repo, row.commit);
    if (info.provenance?.batchId !== batchId) {
      throw new VigilError('E_CORRUPT', `batch index says ${key} belongs to ${batchId} but its provenance disagrees`);
    }
    out.push(info);
  }
  if (out.length === 0) throw new VigilError('E_NOT_FOUND', `no commits of batch ${batchId} are on their branches`);
  return out;
}

function groupBy(rows: Array<{ repo: string; branch: string; commit: string }>): Map<string, Set<string>> {
  const m = new Map<string, Set<string>>();
  for (const r of rows) {
    const k = `${r.repo}\0${r.branch}`;
    if (!m.has(k)) m.set(k, new Set());
    m.get(k)!.add(r.commit);
  }
  return m;
}

/** Which of `wanted` are in the first-parent history of `branch`: walks back from its head until all are found or the root is reached. */
async function onBranch(store: RepoStore, repo: string, branch: string, wanted: Set<string>): Promise<Set<string>> {
  const found = new Set<string>();
  let next: string | null | undefined = await resolveRef(store, repo, branch).catch(() => null);
  while (next && found.size < wanted.size) {
    if (wanted.has(next)) found.add(next);
    next = (await readCommitInfo(store, repo, next)).parents[0];
  }
  return found;
}
