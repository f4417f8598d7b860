import { repoPath } from '../layout.js';
import { gitArgs, repoLayout, type RepoStore } from '../store.js';
import { readCommitObject, readCommitTree, readTreeEntries, type TreeEntry } from './objects.js';
import type { TreeFile } from './read.js';
import { resolveRef } from './resolve.js';

/** A file version that a later commit replaced or removed. */
export interface ReplacedFile extends TreeFile {
  /** The last commit that still has this version (the parent of the commit that replaced it). */
  commit: string;
}

/** How a history walk reads trees: the repo, the trees read lately (a parent's tree is its child's next time), what to leave out. */
interface Walk {
  args: ReturnType<typeof gitArgs>;
  trees: Map<string, TreeEntry[]>;
  skip: (storedPath: string) => boolean;
}

const TREES_KEPT = 256;

async function entries(w: Walk, oid: string): Promise<TreeEntry[]> {
  let e = w.trees.get(oid);
  if (!e) {
    e = await readTreeEntries(w.args, oid);
    if (w.trees.size >= TREES_KEPT) w.trees.delete(w.trees.keys().next().value!);
    w.trees.set(oid, e);
  }
  return e;
}

/** Files of tree `a` that tree `b` (null: none) does not have with the same content; equal subtrees are skipped. */
async function goneFrom(w: Walk, a: string, b: string | null, prefix: string): Promise<TreeFile[]> {
  if (a === b) return [];
  const after = new Map((b ? await entries(w, b) : []).map((e) => [e.path, e]));
  const out: TreeFile[] = [];
  for (const e of await entries(w, a)) {
    const now = after.get(e.path);
    if (now?.oid === e.oid) continue;
    const p = prefix + e.path;
    if (w.skip(e.type === 'tree' ? `${p}/` : p)) continue;
    if (e.type === 'tree') out.push(...(await goneFrom(w, e.oid, now?.type === 'tree' ? now.oid : null, `${p}/`)));
    else out.push({ path: p, oid: e.oid });
  }
  return out;
}

/**
 * Every file version of a branch's history that a later commit replaced or removed, newest
 * first (first parents only), with the last commit that has it. Paths are the repo's (see
 * repos/layout.ts). Each commit costs the folders it changed, not the whole tree; `skipFolder`
 * leaves out top-level folders (e.g. `cooldowns`), unread.
 */
export async function* replacedFiles(store: RepoStore, repo: string, ref = 'main', opts: { skipFolder?: string } = {}): AsyncGenerator<ReplacedFile> {
  const args = gitArgs(store, repo);
  const layout = repoLayout(store, repo);
  const skipped = opts.skipFolder ? `${opts.skipFolder}/` : null;
  const w: Walk = { args, trees: new Map(), skip: (p) => skipped !== null && p === skipped };
  let oid = await resolveRef(store, repo, ref);
  while (oid) {
    const commit = await readCommitObject(args, oid);
    const parent = commit.parents[0];
    if (!parent) return;
    for (const f of await goneFrom(w, await readCommitTree(args, parent), commit.tree, '')) yield { ...f, path: repoPath(layout, f.path), commit: parent };
    oid = parent;
  }
}
