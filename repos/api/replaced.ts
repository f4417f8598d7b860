import { repoPath } from '../layout.js';
import { gitArgs, repoLayout, type RepoStore } from '../store.js';
import { readCommitObject, readTreeEntries, type TreeEntry } from './objects.js';
import type { TreeFile } from './read.js';
import { resolveRef } from './resolve.js';

/** A file version that a later commit replaced or removed. */
export interface ReplacedFile extends TreeFile {
  /** The last commit that still has this version (the parent of the commit that replaced it). */
  commit: string;
}

/** How a history walk reads trees: the repo, the trees read lately (a parent's tree is its child's next time), the top-level folder left out. */
interface Walk {
  args: ReturnType<typeof gitArgs>;
  trees: Map<string, TreeEntry[]>;
  skipFolder: string | null;
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
    if (e.type === 'tree' && prefix === '' && e.path === w.skipFolder) continue;
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
  const w: Walk = { args, trees: new Map(), skipFolder: opts.skipFolder ?? null };
  const head = await resolveRef(store, repo, ref);
  // Each commit object is read once: as the parent of the one before, then as the next child.
  for (let commit = head ? await readCommitObject(args, head) : null; commit; ) {
    const parentId = commit.parents[0];
    if (!parentId) return;
    const parent = await readCommitObject(args, parentId);
    for (const f of await goneFrom(w, parent.tree, commit.tree, '')) yield { ...f, path: repoPath(layout, f.path), commit: parentId };
    commit = parent;
  }
}
