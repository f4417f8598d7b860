import { promises as fsp } from 'node:fs';
import path from 'node:path';
import git from 'isomorphic-git';
import { VigilError } from '../../lib/errors.js';
import type { Provenance } from '../../lib/schemas.js';
import { withLock } from '../lock.js';
import { formatCommitMessage } from '../provenance.js';
import { assertRepoPath, ensureRepo, gitArgs, lockPathOf, type RepoStore } from '../store.js';
import { storageError } from '../objectStore.js';

/** One change to a repo's tree: write a file, or delete one. */
export type Change = { path: string; content: Buffer | string } | { path: string; delete: true };

/** Result of a commit attempt. */
export interface CommitResult {
  /** The branch head after the call (the new commit, or the old head when nothing changed). */
  commit: string | null;
  /** True when a new commit was written. */
  created: boolean;
  /** Paths whose content actually changed. */
  changed: string[];
}

type GitArgs = ReturnType<typeof gitArgs>;
type Entry = { mode: string; path: string; oid: string; type: 'blob' | 'tree' | 'commit' };

async function applyToTree(args: GitArgs, treeOid: string | null, changes: Change[], prefix: string, changed: string[]): Promise<string | null> {
  const entries = new Map<string, Entry>();
  if (treeOid) for (const e of (await git.readTree({ ...args, oid: treeOid })).tree) entries.set(e.path, e as Entry);
  const sub = new Map<string, Change[]>();
  for (const c of changes) {
    const slash = c.path.indexOf('/');
    if (slash >= 0) {
      const dir = c.path.slice(0, slash);
      const rest = { ...c, path: c.path.slice(slash + 1) } as Change;
      sub.set(dir, [...(sub.get(dir) ?? []), rest]);
      continue;
    }
    const old = entries.get(c.path);
    if ('delete' in c) {
      if (old) {
        entries.delete(c.path);
        changed.push(prefix + c.path);
      }
      continue;
    }
    const blob = typeof c.content === 'string' ? Buffer.from(c.content) : c.content;
    const oid = await git.writeBlob({ fs: args.fs, gitdir: args.gitdir, blob: new Uint8Array(blob) });
    if (old?.oid !== oid) {
      entries.set(c.path, { mode: '100644', path: c.path, oid, type: 'blob' });
      changed.push(prefix + c.path);
    }
  }
  for (const [dir, subChanges] of sub) {
    const old = entries.get(dir);
    const oid = await applyToTree(args, old?.type === 'tree' ? old.oid : null, subChanges, `${prefix}${dir}/`, changed);
    if (oid) entries.set(dir, { mode: '040000', path: dir, oid, type: 'tree' });
    else entries.delete(dir);
  }
  if (entries.size === 0) return null;
  return git.writeTree({ fs: args.fs, gitdir: args.gitdir, tree: [...entries.values()] });
}

/**
 * Commits a set of changes to a branch, with provenance in the commit message. Safe for many
 * concurrent writers (threads, processes): the repo lock is held while the new tree is built on
 * top of the current head, so no writer's changes are lost. A call that changes nothing writes
 * no commit. Every commit is also indexed under its batch id (see batchCommits).
 */
export async function commitChanges(
  store: RepoStore,
  opts: { repo: string; branch?: string; changes: Change[]; provenance: Provenance; summary: string },
): Promise<CommitResult> {
  const branch = opts.branch ?? 'main';
  for (const c of opts.changes) assertRepoPath(c.path);
  await ensureRepo(store, opts.repo);
  const args = gitArgs(store, opts.repo);
  try {
    return await withLock(lockPathOf(store, opts.repo), async () => {
      const head = await branchHead(args, opts.repo, branch);
      const baseTree = head ? (await git.readCommit({ ...args, oid: head })).commit.tree : null;
      const changed: string[] = [];
      const tree = (await applyToTree(args, baseTree, opts.changes, '', changed)) ?? (await git.writeTree({ fs: args.fs, gitdir: args.gitdir, tree: [] }));
      if (tree === baseTree || changed.length === 0) return { commit: head, created: false, changed: [] };
      const now = Math.floor(Date.now() / 1000);
      const who = { name: 'vigil', email: 'vigil@localhost', timestamp: now, timezoneOffset: 0 };
      const commit = await git.writeCommit({
        fs: args.fs,
        gitdir: args.gitdir,
        commit: {
          tree,
          parent: head ? [head] : [],
          author: who,
          committer: who,
          message: formatCommitMessage(opts.summary, opts.provenance),
        },
      });
      // Index first: if that fails (e.g. a full disk), the branch does not move and the caller sees
      // the error, so no commit is ever visible without its batch index line.
      await indexBatchCommit(store, opts.provenance.batchId, { repo: opts.repo, branch, commit, stage: opts.provenance.stage, changed: changed.length });
      await writeRefAtomic(args.gitdir, branch, commit);
      return { commit, created: true, changed };
    });
  } catch (err) {
    throw storageError(err, `commit to ${opts.repo} failed`);
  }
}

/**
 * The commit a branch names, or null when the branch does not exist yet. isomorphic-git reports
 * an empty or torn ref file as "not found" too, which would start a new history on top of a
 * damaged one, so the loose ref file is checked here first.
 * @throws VigilError E_CORRUPT when the branch's ref file exists but names no commit.
 */
async function branchHead(args: GitArgs, repo: string, branch: string): Promise<string | null> {
  const file = path.join(args.gitdir, 'refs', 'heads', ...branch.split('/'));
  const text = await fsp.readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw err;
  });
  if (text !== null && !/^[0-9a-f]{40}\n?$/.test(text)) {
    throw new VigilError('E_CORRUPT', `${repo}: refs/heads/${branch} names no commit (${JSON.stringify(text.slice(0, 50))}); see vigil repo fsck`);
  }
  try {
    return await git.resolveRef({ ...args, ref: `refs/heads/${branch}` });
  } catch (err) {
    if ((err as { code?: string }).code === 'NotFoundError') return null; // no loose ref, none packed
    throw err;
  }
}

/**
 * Moves a branch by writing its loose ref to a temporary file and renaming it into place, so a
 * reader in another process never sees a half-written ref.
 */
async function writeRefAtomic(gitdir: string, branch: string, commit: string): Promise<void> {
  const file = path.join(gitdir, 'refs', 'heads', ...branch.split('/'));
  await fsp.mkdir(path.dirname(file), { recursive: true });
  // The temp file lives outside refs/, so a writer killed before the rename leaves no fake branch.
  const tmp = path.join(gitdir, `ref-${process.pid}-${Date.now()}.tmp`);
  await fsp.writeFile(tmp, `${commit}\n`);
  await fsp.rename(tmp, file);
}

/** Safe file name for a batch id in the batch index. */
export function batchIndexFile(store: RepoStore, batchId: string): string {
  const safe = batchId.replace(/[^A-Za-z0-9_.-]/g, '_');
  return path.join(store.dataDir, 'index', 'batches', `${safe}.jsonl`);
}

async function indexBatchCommit(store: RepoStore, batchId: string, row: Record<string, unknown>): Promise<void> {
  const file = batchIndexFile(store, batchId);
  await fsp.mkdir(path.dirname(file), { recursive: true });
  await fsp.appendFile(file, JSON.stringify({ batchId, ...row, at: new Date().toISOString() }) + '\n');
}
