import { promises as fsp } from 'node:fs';
import { VigilError } from '../../lib/errors.js';
import type { RepoStore } from '../store.js';
import { batchIndexFile } from './commit.js';
import { readCommitInfo, type CommitInfo } from './log.js';

/**
 * Every commit a batch caused, in every repo (Pachyderm's global commit), oldest first.
 * Reads the batch index, then re-reads each commit so the provenance shown is the commit's own.
 * @throws VigilError E_NOT_FOUND when the batch never committed anything.
 */
export async function batchCommits(store: RepoStore, batchId: string): Promise<CommitInfo[]> {
  let text: string;
  try {
    text = await fsp.readFile(batchIndexFile(store, batchId), 'utf8');
  } catch {
    throw new VigilError('E_NOT_FOUND', `no commits recorded for batch ${batchId}`);
  }
  const out: CommitInfo[] = [];
  const seen = new Set<string>();
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const row = JSON.parse(line) as { repo: string; commit: string };
    const key = `${row.repo}@${row.commit}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const info = await readCommitInfo(store, row.repo, row.commit);
    if (info.provenance?.batchId !== batchId) {
      throw new VigilError('E_CORRUPT', `batch index says ${key} belongs to ${batchId} but its provenance disagrees`);
    }
    out.push(info);
  }
  return out;
}
