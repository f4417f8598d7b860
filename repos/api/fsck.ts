import git from 'isomorphic-git';
import { isVigilError } from '../../lib/errors.js';
import { recoverJournal } from '../journal.js';
import { isSha256 } from '../../lib/ids.js';
import { repoPath } from '../layout.js';
import { gitArgs, listRepoNames, repoExists, repoLayout, type RepoStore } from '../store.js';
import { parseProvenance } from '../provenance.js';
import { readBlobBytes, readCommitObject, readTreeEntries } from './objects.js';

/** One problem found by fsck, naming its culprit. */
export interface FsckProblem {
  /** `repo@commit:path`, `object <sha256>`, … */
  where: string;
  problem: string;
}

/** Summary of a full check. */
export interface FsckReport {
  repos: number;
  commits: number;
  blobs: number;
  objects: number;
  provenanceLinks: number;
  problems: FsckProblem[];
}

/** Finds every `{ sha256, size }` object reference inside a JSON document. */
export function findObjectRefs(doc: unknown, out: string[] = []): string[] {
  if (Array.isArray(doc)) for (const d of doc) findObjectRefs(d, out);
  else if (doc && typeof doc === 'object') {
    const o = doc as Record<string, unknown>;
    if (isSha256(o.sha256) && typeof o.size === 'number' && typeof o.mediaType === 'string') out.push(o.sha256);
    for (const v of Object.values(o)) findObjectRefs(v, out);
  }
  return out;
}

/**
 * Checks everything: re-reads every commit, tree and blob of every branch of every repo (each
 * git object re-hashed against its id, loose or packed), follows every provenance link to the commit it names, checks that every
 * object a document points to exists, and re-hashes every object in the object store.
 */
export async function fsck(store: RepoStore): Promise<FsckReport> {
  const report: FsckReport = { repos: 0, commits: 0, blobs: 0, objects: 0, provenanceLinks: 0, problems: [] };
  const referenced = new Set<string>();
  const linkCache = new Map<string, string>();
  const problem = (where: string, p: unknown) =>
    report.problems.push({ where, problem: p instanceof Error ? p.message : String(p) });

  for (const repo of await listRepoNames(store)) {
    // A journal left by a crash is replayed first: until then the repo may lack files it holds.
    await recoverJournal(store, repo).catch((e: unknown) => problem(`${repo} journal`, e));
    report.repos++;
    const args = gitArgs(store, repo);
    const seenTrees = new Set<string>();
    const seenBlobs = new Set<string>();
    const layout = repoLayout(store, repo);
    // Every object is read through objects.ts, which re-hashes it, loose or packed (isomorphic-git
    // checks loose objects only). Problems name files by the paths the stages use (`where` is
    // `repo@commit:`, `dir` the folder as git stores it, e.g. with its day and hour folders).
    const walkTree = async (oid: string, where: string, dir: string): Promise<void> => {
      if (seenTrees.has(oid)) return;
      seenTrees.add(oid);
      let tree: Awaited<ReturnType<typeof readTreeEntries>>;
      try {
        tree = await readTreeEntries(args, oid);
      } catch (err) {
        problem(`${where}${dir || '(root)'}`, err);
        return;
      }
      for (const e of tree) {
        const stored = `${dir}${e.path}`;
        if (e.type === 'tree') await walkTree(e.oid, where, `${stored}/`);
        else if (!seenBlobs.has(e.oid)) {
          seenBlobs.add(e.oid);
          report.blobs++;
          const at = `${where}${repoPath(layout, stored)}`;
          try {
            const blob = await readBlobBytes(args, e.oid);
            if (at.endsWith('.json')) for (const r of findObjectRefs(JSON.parse(blob.toString('utf8')))) referenced.add(r);
          } catch (err) {
            problem(at, err);
          }
        }
      }
    };
    let branches: string[] = [];
    try {
      branches = await git.listBranches({ ...args });
    } catch (err) {
      problem(repo, err);
    }
    const queue: string[] = [];
    for (const b of branches) {
      try {
        queue.push(await git.resolveRef({ ...args, ref: `refs/heads/${b}` }));
      } catch (err) {
        problem(`${repo}@${b}`, err);
      }
    }
    const seenCommits = new Set<string>();
    while (queue.length) {
      const oid = queue.pop()!;
      if (seenCommits.has(oid)) continue;
      seenCommits.add(oid);
      report.commits++;
      const where = `${repo}@${oid}`;
      try {
        const commit = await readCommitObject(args, oid);
        queue.push(...commit.parents);
        const prov = parseProvenance(commit.message);
        if (!prov) problem(where, 'commit has no valid provenance');
        for (const input of prov?.inputs ?? []) {
          report.provenanceLinks++;
          const key = `${input.repo}@${input.commit}`;
          if (!linkCache.has(key)) linkCache.set(key, await commitState(store, input.repo, input.commit));
          const state = linkCache.get(key)!;
          if (state !== 'ok') problem(where, `provenance names ${key}, which ${state === 'missing' ? 'does not exist' : `is damaged: ${state}`}`);
        }
        await walkTree(commit.tree, `${where}:`, '');
      } catch (err) {
        problem(where, err);
      }
    }
  }

  const verified = new Set<string>();
  for await (const sha of store.objects.list()) {
    report.objects++;
    verified.add(sha);
    try {
      await store.objects.get(sha);
    } catch (err) {
      problem(`object ${sha}`, err);
    }
  }
  for (const sha of referenced) {
    if (!verified.has(sha) && !(await store.objects.has(sha))) problem(`object ${sha}`, 'referenced by a document but missing from the object store');
  }
  return report;
}

/** Whether a commit a provenance link names reads back: `ok`, `missing`, or what is wrong with it. */
async function commitState(store: RepoStore, repo: string, oid: string): Promise<string> {
  if (!repoExists(store, repo)) return 'missing';
  try {
    await readCommitObject(gitArgs(store, repo), oid);
    return 'ok';
  } catch (err) {
    return isVigilError(err) && err.code === 'E_CORRUPT' ? err.message : 'missing';
  }
}
