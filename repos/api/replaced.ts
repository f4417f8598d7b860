import { repoPath } from '../layout.js';
import { gitArgs, repoLayout, type RepoStore } from '../store.js';
import { readCommitObject, readCommitTree, readTreeEntries } from './objects.js';
import type { TreeFile } from './read.js';
import { resolveRef } from './resolve.js';

/** A file version that a later commit replaced or removed. */
export interface ReplacedFile extends TreeFile {
  /** The last commit that still has this version (the parent of the commit that replaced it). */
  commit: string;
}

type Args = ReturnType<typeof gitArgs>;

/** Files of tree `a` that tree `b` (null: none) does not have with the same content; equal subtrees are skipped. */
async function goneFrom(args: Args, a: string, b: string | null, prefix: string): Promise<TreeFile[]> {
  if (a === b) return [];
  const after = new Map((b ? await readTreeEntries(args, b) : []).map((e) => [e.path, e]));
  const out: TreeFile[] = [];
  for (const e of await readTreeEntries(args, a)) {
    const now = after.get(e.path);
    if (now?.oid === e.oid) continue;
    if (e.type === 'tree') out.push(...(await goneFrom(args, e.oid, now?.type === 'tree' ? now.oid : null, `${prefix}${e.path}/`)));
    else out.push({ path: prefix + e.path, oid: e.oid });
  }
  return out;
}

/**
 * Every file version of a branch's history that a later commit replaced or removed, newest
 * first (first parents only), with the last commit that has it. Paths are the repo's (see
 * repos/layout.ts). Each commit costs the folders it changed, not the whole tree.
 */
export async function* replacedFiles(store: RepoStore, repo: string, ref = 'main'): AsyncGenerator<ReplacedFile> {
  const args = gitArgs(store, repo);
  const layout = repoLayout(store, repo);
  let oid = await resolveRef(store, repo, ref);
  while (oid) {
    const commit = await readCommitObject(args, oid);
    const parent = commit.parents[0];
    if (!parent) return;
    for (const f of await goneFrom(args, await readCommitTree(args, parent), commit.tree, '')) yield { ...f, path: repoPath(layout, f.path), commit: parent };
    oid = parent;
  }
}
