/**
 * `vigil batch inspect <batchId>`: every commit a batch caused, with the provenance chain of each.
 */
import type { Command } from 'commander';
import type { RepoCommit } from '../../lib/schemas.js';
import type { CommitInfo } from '../../repos/index.js';
import { printJson, printTable, shortId } from '../output.js';
import { openDataStore } from './common.js';
import { printProvenance, repoCommitLabel } from './repo.js';

/** Most chains listed per commit (a commit fed by many inputs could have very many). */
const MAX_CHAINS = 50;
/** Deepest provenance chain followed. */
const MAX_DEPTH = 32;

/** One commit of the batch with its direct inputs and its provenance chains (roots first). */
export interface BatchCommit extends CommitInfo {
  inputs: RepoCommit[];
  /** Each chain goes from a commit without inputs to this commit, e.g. frames@c1 -> standardized@c2. */
  chains: { repo: string; commit: string; missing?: true }[][];
}

/** The repos a batch writes, in the order its DAG writes them; any other repo comes after, by name. */
export const PIPELINE_ORDER = ['frames', 'rules', 'standardized', 'invalid', 'detections', 'threats', 'alerts'] as const;

function pipelineRank(repo: string): number {
  const i = (PIPELINE_ORDER as readonly string[]).indexOf(repo);
  return i < 0 ? PIPELINE_ORDER.length : i;
}

/** Orders a batch's commits: by pipeline stage (see PIPELINE_ORDER), then repo name, then as given (oldest first). */
export function inPipelineOrder<T extends { repo: string }>(commits: readonly T[]): T[] {
  return commits
    .map((c, i) => ({ c, i }))
    .sort((x, y) => pipelineRank(x.c.repo) - pipelineRank(y.c.repo) || (x.c.repo < y.c.repo ? -1 : x.c.repo > y.c.repo ? 1 : 0) || x.i - y.i)
    .map((x) => x.c);
}

/** Builds every provenance chain ending at `node`, following inputs (cycles and missing commits end a chain). */
async function chainsOf(
  node: RepoCommit,
  read: (rc: RepoCommit) => Promise<CommitInfo | null>,
  seen: Set<string> = new Set(),
): Promise<BatchCommit['chains']> {
  const key = `${node.repo}@${node.commit}`;
  const info = await read(node);
  if (!info) return [[{ repo: node.repo, commit: node.commit, missing: true }]];
  const inputs = info.provenance?.inputs ?? [];
  const self = { repo: node.repo, commit: node.commit };
  if (inputs.length === 0 || seen.has(key) || seen.size >= MAX_DEPTH) return [[self]];
  const out: BatchCommit['chains'] = [];
  const next = new Set(seen).add(key);
  for (const input of inputs) {
    for (const chain of await chainsOf(input, read, next)) {
      if (out.length >= MAX_CHAINS) return out;
      out.push([...chain, self]);
    }
  }
  return out;
}

/** Registers `vigil batch …`. */
export function registerBatch(program: Command): void {
  const batch = program.command('batch').description('look at what one batch (global commit) did');

  batch
    .command('inspect')
    .description('every commit a batch caused in every repo, in pipeline order, with its provenance chain')
    .argument('<batchId>', 'batch id (as shown by vigil repo log)')
    .option('--json', 'print machine-readable JSON')
    .action(async (batchId: string, opts: { json?: boolean }) => {
      const store = await openDataStore();
      const { batchCommits, readCommitInfo } = await import('../../repos/index.js');
      const commits = await batchCommits(store, batchId);
      const cache = new Map<string, Promise<CommitInfo | null>>();
      for (const c of commits) cache.set(`${c.repo}@${c.commit}`, Promise.resolve(c));
      const read = (rc: RepoCommit): Promise<CommitInfo | null> => {
        const key = `${rc.repo}@${rc.commit}`;
        let p = cache.get(key);
        if (!p) {
          p = readCommitInfo(store, rc.repo, rc.commit).catch(() => null);
          cache.set(key, p);
        }
        return p;
      };
      // batchCommits is oldest first; that order is kept within a repo.
      const ordered = inPipelineOrder(commits);
      const out: BatchCommit[] = [];
      for (const c of ordered) {
        out.push({ ...c, inputs: c.provenance?.inputs ?? [], chains: await chainsOf({ repo: c.repo, commit: c.commit }, read) });
      }
      if (opts.json) return printJson({ batchId, commits: out });
      process.stdout.write(`batch ${batchId}: ${out.length} commit${out.length === 1 ? '' : 's'}\n`);
      printTable(
        ['REPO', 'COMMIT', 'TIME', 'STAGE', 'INPUTS', 'SUMMARY'],
        out.map((c) => [c.repo, shortId(c.commit), c.time, c.provenance?.stage, c.inputs.map((i) => repoCommitLabel(i.repo, i.commit)).join(', '), c.summary]),
      );
      for (const c of out) {
        process.stdout.write(`\n${c.repo}@${c.commit}  ${c.summary}\n`);
        printProvenance(c.provenance);
        for (const chain of c.chains) {
          process.stdout.write(`  chain  ${chain.map((n) => repoCommitLabel(n.repo, n.commit) + (n.missing ? ' (missing)' : '')).join(' -> ')}\n`);
        }
      }
    });
}
