import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { deflateSync } from 'node:zlib';
import git from 'isomorphic-git';
import { VigilError } from '../../lib/errors.js';
import type { Provenance } from '../../lib/schemas.js';
import { withLock } from '../lock.js';
import { formatCommitMessage } from '../provenance.js';
import { repoPath, storedPath } from '../layout.js';
import { assertRepoPath, ensureRepo, gitArgs, lockPathOf, repoExists, repoLayout, type RepoStore } from '../store.js';
import { storageError } from '../objectStore.js';
import { closeQuietly, fdatasyncFd, fsyncPath as syncDir, rmQuietly, writeAllSync } from '../../lib/fsync.js';
import { readCommitTree, readTreeEntries } from './objects.js';
import { journalOf, WRITE_BACK_MIN_BYTES, type JournalRecord } from '../journal.js';
import { writePackInThread } from '../writerThread.js';
import type { PackObject } from '../packFile.js';

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
  /** The head the call built on (null for a branch's first commit): when it differs from what the
   * caller last saw, another writer committed in between. */
  parent: string | null;
}

type GitArgs = ReturnType<typeof gitArgs>;
type Entry = { mode: string; path: string; oid: string; type: 'blob' | 'tree' | 'commit' };
/** A parsed tree: entry name -> entry. Shared through the cache: never mutate one. */
type Tree = ReadonlyMap<string, Entry>;

/**
 * Parsed trees by git object id, across every repo of the process. A tree's id is the hash of its
 * content, so an entry can never be stale: another process moving a branch only means new ids. It
 * spares each commit re-reading and re-parsing the folders it changes (a device's folder holds one
 * entry per frame it ever sent) and lets readers look paths up at a head without a full path walk.
 * Bounded by the total number of entries held.
 */
class TreeCache {
  private readonly trees = new Map<string, Tree>();
  private entries = 0;

  constructor(private readonly maxEntries: number) {}

  get(key: string): Tree | undefined {
    const t = this.trees.get(key);
    if (t) {
      this.trees.delete(key);
      this.trees.set(key, t);
    }
    return t;
  }

  set(key: string, tree: Tree): void {
    if (this.trees.has(key)) return;
    this.trees.set(key, tree);
    this.entries += tree.size;
    for (const [k, t] of this.trees) {
      if (this.entries <= this.maxEntries || k === key) break;
      this.trees.delete(k);
      this.entries -= t.size;
    }
  }
}

const treeCache = new TreeCache(2_000_000);
/** Commit id -> its tree id (immutable too). */
const commitTrees = new Map<string, string>();

async function readTreeCached(args: GitArgs, oid: string): Promise<Tree> {
  const key = `${args.gitdir}\0${oid}`;
  const hit = treeCache.get(key);
  if (hit) return hit;
  const tree = new Map((await readTreeEntries(args, oid)).map((e) => [e.path, e as Entry]));
  treeCache.set(key, tree);
  return tree;
}

async function commitTree(args: GitArgs, commit: string): Promise<string> {
  const key = `${args.gitdir}\0${commit}`;
  let tree = commitTrees.get(key);
  if (!tree) {
    tree = await readCommitTree(args, commit);
    if (commitTrees.size >= 10_000) commitTrees.delete(commitTrees.keys().next().value!);
    commitTrees.set(key, tree);
  }
  return tree;
}

/** Loose objects written by one commit, for making them durable together. */
interface Written {
  durable: boolean;
  /**
   * With a journal: the objects to write, with their ids, handed to the writer thread at once as
   * one pack (see repos/writerThread.ts) before the journal entry, which takes its bytes.
   */
  pending: PackObject[] | null;
  /** Folders (objects/xx) that received a new name. */
  dirs: Set<string>;
  /** With `durable`: the new files' descriptors, still open, to be fdatasync'd together (see commitChanges). */
  open: number[];
}

let seq = 0;

/**
 * Writes one loose git object (zlib-deflated `<type> <size>\0<content>`, named by its SHA-1), whole
 * or not at all: a temp file (`tmp_obj_` prefix, as git's own) renamed into place. Same bytes as
 * isomorphic-git writes, without its per-call overhead; the calls are synchronous (page cache
 * only, see lib/fsync.ts). With `durable`, the file is left open in `written.open`, so the caller
 * can fdatasync every object of the commit at once. With a journal, the object is only queued in
 * `written.pending`, for the writer thread, which writes the commit's objects as one pack.
 */
function writeObject(gitdir: string, type: 'blob' | 'tree' | 'commit', content: Buffer, written: Written): string {
  const raw = Buffer.concat([Buffer.from(`${type} ${content.length}\0`), content]);
  const oid = createHash('sha1').update(raw).digest('hex');
  if (written.pending) {
    written.pending.push({ oid, raw });
    return oid;
  }
  const dir = path.join(gitdir, 'objects', oid.slice(0, 2));
  const file = path.join(dir, oid.slice(2));
  const data = deflateSync(raw, { level: 1 });
  const tmp = path.join(dir, `tmp_obj_${process.pid}_${++seq}`);
  let fd: number | null = null;
  try {
    try {
      fd = fs.openSync(tmp, 'w');
    } catch (err) {
      // A new fan-out folder (or one `vigil repo gc` emptied and removed).
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      fs.mkdirSync(dir, { recursive: true });
      written.dirs.add(path.dirname(dir));
      fd = fs.openSync(tmp, 'w');
    }
    writeAllSync(fd, data);
    fs.renameSync(tmp, file);
  } catch (err) {
    closeQuietly(fd);
    rmQuietly(tmp);
    throw err;
  }
  if (written.durable) written.open.push(fd);
  else fs.closeSync(fd);
  written.dirs.add(dir);
  return oid;
}

/** fdatasync every descriptor at once, then close each; all are closed even when one fails. */
async function syncAndClose(fds: number[]): Promise<void> {
  const taken = fds.splice(0);
  await settleAll(taken.map(async (fd) => {
    try {
      await fdatasyncFd(fd);
    } finally {
      fs.closeSync(fd);
    }
  }));
}

/** Git's tree entry order: by name, a folder's name compared as if it ended with `/`. */
function treeOrder(a: Entry, b: Entry): number {
  const x = a.type === 'tree' ? `${a.path}/` : a.path;
  const y = b.type === 'tree' ? `${b.path}/` : b.path;
  return x < y ? -1 : x > y ? 1 : 0;
}

/** An entry's sort key in git's tree order (see treeOrder). */
function orderKey(e: Entry): string {
  return e.type === 'tree' ? `${e.path}/` : e.path;
}

/** The body of a tree object: its entries, already in tree order. */
function serializeEntries(sorted: readonly Entry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of sorted) parts.push(Buffer.from(`${e.mode.replace(/^0/, '')} ${e.path}\0`), Buffer.from(e.oid, 'hex'));
  return Buffer.concat(parts);
}

/** A tree object's body, its last entry's sort key and its number of entries. */
type TreeBody = { body: Buffer; lastKey: string; count: number };

/**
 * Bodies of the trees this process wrote, bounded in bytes: a folder that only gains entries
 * sorting after its last one (a camera's next frames) is written by appending the new entries to
 * its body instead of serializing all of them again, which grew with every frame the camera ever
 * sent.
 */
class TreeBodies {
  private readonly bodies = new Map<string, TreeBody>();
  private bytes = 0;

  constructor(private readonly maxBytes: number) {}

  get(key: string): TreeBody | undefined {
    return this.bodies.get(key);
  }

  set(key: string, value: TreeBody): void {
    if (this.bodies.has(key) || value.body.length > this.maxBytes / 4) return;
    this.bodies.set(key, value);
    this.bytes += value.body.length;
    for (const [k, v] of this.bodies) {
      if (this.bytes <= this.maxBytes) break;
      this.bodies.delete(k);
      this.bytes -= v.body.length;
    }
  }
}

const treeBodies = new TreeBodies(64 * 1024 * 1024);

/**
 * Writes a tree object. `appended`: the tree is `base` plus these entries only (none changed or
 * removed), so when base's body is known and they all sort after its last entry, the body is
 * base's with theirs appended.
 */
function writeTreeObject(args: GitArgs, entries: Map<string, Entry>, written: Written, appended?: { base: string; added: Entry[] }): string {
  const prev = appended && appended.added.length ? treeBodies.get(`${args.gitdir}\0${appended.base}`) : undefined;
  const added = prev ? [...appended!.added].sort(treeOrder) : [];
  let body: Buffer;
  let lastKey: string;
  if (prev && orderKey(added[0]!) > prev.lastKey && prev.count + added.length === entries.size) {
    body = Buffer.concat([prev.body, serializeEntries(added)]);
    lastKey = orderKey(added[added.length - 1]!);
  } else {
    const sorted = [...entries.values()].sort(treeOrder);
    body = serializeEntries(sorted);
    lastKey = sorted.length ? orderKey(sorted[sorted.length - 1]!) : '';
  }
  const oid = writeObject(args.gitdir, 'tree', body, written);
  treeCache.set(`${args.gitdir}\0${oid}`, entries);
  treeBodies.set(`${args.gitdir}\0${oid}`, { body, lastKey, count: entries.size });
  return oid;
}

async function applyToTree(args: GitArgs, treeOid: string | null, changes: Change[], prefix: string, changed: string[], written: Written): Promise<string | null> {
  const entries = new Map<string, Entry>(treeOid ? await readTreeCached(args, treeOid) : []);
  const sub = new Map<string, Change[]>();
  const folders: Promise<void>[] = [];
  // Whether the new tree is the old one plus new entries only (see writeTreeObject).
  const added: Entry[] = [];
  let onlyAdded = true;
  for (const c of changes) {
    const slash = c.path.indexOf('/');
    if (slash >= 0) {
      const dir = c.path.slice(0, slash);
      const rest = { ...c, path: c.path.slice(slash + 1) } as Change;
      const list = sub.get(dir);
      if (list) list.push(rest);
      else sub.set(dir, [rest]);
      continue;
    }
    const old = entries.get(c.path);
    if ('delete' in c) {
      if (old) {
        entries.delete(c.path);
        changed.push(prefix + c.path);
        onlyAdded = false;
      }
      continue;
    }
    const blob = typeof c.content === 'string' ? Buffer.from(c.content) : c.content;
    const oid = writeObject(args.gitdir, 'blob', blob, written);
    if (old?.oid === oid) continue;
    const entry: Entry = { mode: '100644', path: c.path, oid, type: 'blob' };
    entries.set(c.path, entry);
    changed.push(prefix + c.path);
    if (old) onlyAdded = false;
    else added.push(entry);
  }
  for (const [dir, subChanges] of sub) {
    const old = entries.get(dir);
    folders.push(
      applyToTree(args, old?.type === 'tree' ? old.oid : null, subChanges, `${prefix}${dir}/`, changed, written).then((oid) => {
        if (oid === (old?.oid ?? null)) return;
        if (oid) {
          const entry: Entry = { mode: '040000', path: dir, oid, type: 'tree' };
          entries.set(dir, entry);
          if (old) onlyAdded = false;
          else added.push(entry);
        } else {
          entries.delete(dir);
          onlyAdded = false;
        }
      }),
    );
  }
  await settleAll(folders);
  if (entries.size === 0) return null;
  if (treeOid && sameTree(await readTreeCached(args, treeOid), entries)) return treeOid;
  return writeTreeObject(args, entries, written, treeOid && onlyAdded ? { base: treeOid, added } : undefined);
}

/** Awaits every promise (so none is left running) and throws the first failure. */
async function settleAll(promises: Promise<void>[]): Promise<void> {
  const failed = (await Promise.allSettled(promises)).find((r) => r.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
}

function sameTree(a: Tree, b: Tree): boolean {
  if (a.size !== b.size) return false;
  for (const [k, e] of a) if (b.get(k)?.oid !== e.oid) return false;
  return true;
}

/** The commit object's text, exactly as isomorphic-git renders it. */
function renderCommit(tree: string, parents: string[], timestamp: number, message: string): Buffer {
  const who = `vigil <vigil@localhost> ${timestamp} +0000`;
  const body = message.replace(/\r/g, '').replace(/^\n+/, '').replace(/\n+$/, '') + '\n';
  return Buffer.from(`tree ${tree}\n${parents.map((p) => `parent ${p}\n`).join('')}author ${who}\ncommitter ${who}\n\n${body}`);
}

/**
 * Work outside the repo that a durable commit makes durable with itself, before its branch moves
 * (e.g. publishing the objects its documents name): run in the commit's durability round, beside
 * the fdatasync of its git objects; resolves to the folders that got new names, which the commit
 * fsyncs next, still before its branch moves.
 */
export type DurableStep = () => Promise<readonly string[]>;

/**
 * Work outside the repo that a journaled commit makes durable with itself: writes files without
 * fsync and resolves to each file and its content, which the commit's journal entry holds.
 */
export type JournalStep = () => Promise<ReadonlyArray<{ file: string; data: Buffer }>>;

/** What a commit's changes are: a list, or a function of the head the commit builds on. */
export type ChangesSpec = Change[] | ((head: string | null) => Change[] | Promise<Change[]>);

/**
 * Commits a set of changes to a branch, with provenance in the commit message. Safe for many
 * concurrent writers (threads, processes): the repo lock is held while the new tree is built on
 * top of the current head, so no writer's changes are lost. A call that changes nothing writes
 * no commit. Every commit is also indexed under its batch id (see batchCommits).
 *
 * `changes` may be a function: it is called under the lock with the head the commit builds on,
 * so a writer can decide what to write from exactly the state it writes over (e.g. refuse a path
 * another process just wrote). With `durable`, every new git object, the batch index line and the
 * ref are fsync'd (with their folders) before the call returns, so the commit survives a power loss;
 * `durableWith` adds the caller's own files to the same durability round, before the ref moves.
 * With `durable: 'journal'` the commit is as durable, through the repo's write-ahead journal (see
 * repos/journal.ts): its files are written without fsync and their content is appended to the
 * journal, with one fdatasync, before the ref moves; `journalWith` adds the caller's files to that
 * entry. Only for repos whose readers run recoverJournal() first after a crash (the frames repo).
 */
export async function commitChanges(
  store: RepoStore,
  opts: {
    repo: string;
    branch?: string;
    changes: ChangesSpec;
    /** The provenance, or a function of the changes (when `changes` is decided under the lock). */
    provenance: Provenance | ((changes: Change[]) => Provenance);
    /** The commit message's first line, or a function of the changes. */
    summary: string | ((changes: Change[]) => string);
    durable?: boolean | 'journal';
    /**
     * With `durable: true`: steps made durable in the commit's durability round (see DurableStep),
     * a function of the changes. Not run when the call writes no commit.
     */
    durableWith?: (changes: Change[]) => DurableStep[];
    /**
     * With `durable: 'journal'`: steps that write files without fsync and give their content to
     * journal (see JournalStep), a function of the changes. Not run when the call writes no commit.
     */
    journalWith?: (changes: Change[]) => JournalStep[];
  },
): Promise<CommitResult> {
  const branch = opts.branch ?? 'main';
  if (Array.isArray(opts.changes)) for (const c of opts.changes) assertRepoPath(c.path);
  await ensureRepo(store, opts.repo);
  const args = gitArgs(store, opts.repo);
  const journaled = opts.durable === 'journal';
  const durable = opts.durable === true;
  if (opts.durableWith && !durable) throw new VigilError('E_BAD_INPUT', 'commitChanges: durableWith needs durable: true');
  if (opts.journalWith && !journaled) throw new VigilError('E_BAD_INPUT', "commitChanges: journalWith needs durable: 'journal'");
  try {
    return await withLock(lockPathOf(store, opts.repo), async () => {
      const head = await branchHead(args, opts.repo, branch);
      const changes = Array.isArray(opts.changes) ? opts.changes : await opts.changes(head);
      if (!Array.isArray(opts.changes)) for (const c of changes) assertRepoPath(c.path);
      const baseTree = head ? await commitTree(args, head) : null;
      let changed: string[] = [];
      const written: Written = { durable, pending: journaled ? [] : null, dirs: new Set(), open: [] };
      // Paths as the repo stores them (see repos/layout.ts); the caller's own paths are reported back.
      const layout = repoLayout(store, opts.repo);
      const stored = layout === 'flat' ? changes : changes.map((c) => ({ ...c, path: storedPath(layout, c.path) }));
      try {
        const applied = await applyToTree(args, baseTree, stored, '', changed, written);
        if (applied === baseTree || changed.length === 0) return { commit: head, created: false, changed: [], parent: head };
        // Everything deleted: the commit names the empty tree (written only then, so a call that
        // changes nothing leaves no stray object behind).
        const tree = applied ?? writeTreeObject(args, new Map(), written);
        changed = changed.map((p) => repoPath(layout, p)).sort();
        const provenance = typeof opts.provenance === 'function' ? opts.provenance(changes) : opts.provenance;
        const summary = typeof opts.summary === 'function' ? opts.summary(changes) : opts.summary;
        const now = Math.floor(Date.now() / 1000);
        const commit = writeObject(args.gitdir, 'commit', renderCommit(tree, head ? [head] : [], now, formatCommitMessage(summary, provenance)), written);
        commitTrees.set(`${args.gitdir}\0${commit}`, tree);
        // Index first: if that fails (e.g. a full disk), the branch does not move and the caller sees
        // the error, so no commit is ever visible without its batch index line.
        const row = { repo: opts.repo, branch, commit, stage: provenance.stage, changed: changed.length };
        if (durable) {
          // One round makes everything the ref will name durable at once: each object's content
          // and each folder that got a new name, the batch index line, the caller's steps (each
          // fsyncs the folders of the names it created), and the new ref's content in its temp
          // file. Loose objects are named as they are written, so their folders are fsync'd
          // beside their content: a name whose content is not yet durable names nothing until the
          // ref moves. Then the ref moves and its folder is fsync'd.
          const steps = opts.durableWith?.(changes) ?? [];
          const syncDirs = (dirs: Iterable<string>) => settleAll([...new Set(dirs)].map(syncDir));
          const ref = writeRefTemp(args.gitdir, commit, true);
          try {
            await settleAll([
              syncAndClose(written.open),
              syncDirs(written.dirs),
              indexBatchCommit(store, provenance.batchId, row, true).then((index) => syncDirs(index.created)),
              ...steps.map((step) => step().then(syncDirs)),
              ref.then(() => undefined),
            ]);
          } catch (err) {
            await ref.then(rmQuietly, () => undefined);
            throw err;
          }
          await moveRef(args.gitdir, branch, await ref, true);
        } else if (journaled) {
          // Everything written without fsync; one journal entry holds it all, then the ref moves.
          const rel = (file: string) => path.relative(store.dataDir, file);
          // The commit's objects as one pack: two new files per commit instead of one per object
          // (about 20 for a group of frames from a few cameras), so less for the file system to
          // create, for each checkpoint to flush and for the packer to remove once it rolls them up.
          const pack = await writePackInThread({ dir: path.join(args.gitdir, 'objects', 'pack'), objects: written.pending!.splice(0) });
          const journal = journalOf(store, opts.repo);
          let files: Array<{ file: string; data: Buffer }>;
          let named = false;
          try {
            const stepFiles = await Promise.all((opts.journalWith?.(changes) ?? []).map((step) => step()));
            // Every file the entry holds: the commit's pack and index, then the caller's.
            files = [pack.pack, pack.idx, ...stepFiles.flat()];
            const index = await indexBatchCommit(store, provenance.batchId, row, false);
            // The new ref is written before the entry, so that once the entry is durable only
            // renames are left (a commit the journal holds was not refused for a full disk): into
            // the branch's spare ref file when it has a loose ref (see swapInSpareRef), else into a
            // new temp file.
            const spare = head !== null ? writeSpareRef(args.gitdir, branch, commit) : null;
            const ref = spare ? null : await writeRefTemp(args.gitdir, commit, false);
            try {
              await journal.append([
                ...files.map((f): JournalRecord => ({ kind: 'file', path: rel(f.file), data: f.data })),
                { kind: 'append', path: rel(index.file), data: index.line, mark: commit },
                { kind: 'ref', path: rel(refFile(args.gitdir, branch)), commit, parent: head },
              ]);
            } catch (err) {
              if (ref) rmQuietly(ref);
              throw err;
            }
            // Journaled: the index takes its name (a reader can now find the objects), then the branch moves.
            fs.renameSync(pack.idxTemp, pack.idx.file);
            named = true;
            if (!spare) await moveRef(args.gitdir, branch, ref!, false);
            else if (!swapInSpareRef(args.gitdir, branch, spare)) await moveRef(args.gitdir, branch, await writeRefTemp(args.gitdir, commit, false), false);
          } catch (err) {
            // The index's temp file goes, and the pack with it (nothing names it; git would keep it
            // forever) unless its index took its name (an index without its pack breaks every read
            // of the repo) or the same pack was there before this commit (an identical commit's,
            // see writePackInThread). A commit whose later step failed after its journal entry
            // comes back only if the process dies before the next checkpoint drops the entry: then
            // recovery rewrites both files from the journal, as it moves the branch.
            rmQuietly(pack.idxTemp);
            if (!named && pack.created) rmQuietly(pack.pack.file);
            throw err;
          }
          journal.writeBack(files.filter((f) => f.data.length >= WRITE_BACK_MIN_BYTES).map((f) => f.file));
          journal.maybeCheckpoint();
        } else {
          await indexBatchCommit(store, provenance.batchId, row, false);
          await moveRef(args.gitdir, branch, await writeRefTemp(args.gitdir, commit, false), false);
        }
        return { commit, created: true, changed, parent: head };
      } finally {
        written.open.splice(0).forEach(closeQuietly);
      }
    }, undefined, { park: true });
  } catch (err) {
    throw storageError(err, `commit to ${opts.repo} failed`);
  }
}

/**
 * The commit a branch of a repo names right now (one small file read when the ref is loose).
 * @returns null when the repo or the branch has no commit yet.
 * @throws VigilError E_CORRUPT when the branch's ref file exists but names no commit.
 */
export async function readBranchHead(store: RepoStore, repo: string, branch = 'main'): Promise<string | null> {
  if (!repoExists(store, repo)) return null;
  return branchHead(gitArgs(store, repo), repo, branch);
}

/**
 * Looks paths up in a commit's tree through the shared tree cache: after the first lookup, a
 * path in an unchanged folder costs no I/O at all, and a moved head costs reading only the trees
 * that changed.
 * @returns each path's blob id, or null when the path is not a file at that commit.
 */
export async function lookupBlobs(store: RepoStore, repo: string, commit: string | null, paths: readonly string[]): Promise<Map<string, string | null>> {
  const out = new Map<string, string | null>(paths.map((p) => [p, null]));
  if (!commit) return out;
  const args = gitArgs(store, repo);
  const layout = repoLayout(store, repo);
  const root = await commitTree(args, commit);
  for (const p of paths) {
    let tree: Tree | null = await readTreeCached(args, root);
    const segs = storedPath(layout, assertRepoPath(p)).split('/');
    for (let i = 0; tree && i < segs.length - 1; i++) {
      const e: Entry | undefined = tree.get(segs[i]!);
      tree = e?.type === 'tree' ? await readTreeCached(args, e.oid) : null;
    }
    const leaf = tree?.get(segs[segs.length - 1]!);
    if (leaf?.type === 'blob') out.set(p, leaf.oid);
  }
  return out;
}

/**
 * The commit a branch names, or null when the branch does not exist yet. isomorphic-git reports
 * an empty or torn ref file as "not found" too, which would start a new history on top of a
 * damaged one, so the loose ref file is checked here first.
 * @throws VigilError E_CORRUPT when the branch's ref file exists but names no commit.
 */
async function branchHead(args: GitArgs, repo: string, branch: string): Promise<string | null> {
  const file = refFile(args.gitdir, branch);
  let text: string | null;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    text = null;
  }
  if (text !== null && !/^[0-9a-f]{40}\n?$/.test(text)) {
    throw new VigilError('E_CORRUPT', `${repo}: refs/heads/${branch} names no commit (${JSON.stringify(text.slice(0, 50))}); see vigil repo fsck`);
  }
  // A loose ref wins over packed-refs (as in git), so the file is the answer.
  if (text !== null) return text.slice(0, 40);
  try {
    return await git.resolveRef({ ...args, ref: `refs/heads/${branch}` });
  } catch (err) {
    if ((err as { code?: string }).code === 'NotFoundError') return null; // no loose ref, none packed
    throw err;
  }
}

/** A branch's loose ref file. */
function refFile(gitdir: string, branch: string): string {
  return path.join(gitdir, 'refs', 'heads', ...branch.split('/'));
}

/**
 * A branch moves in two steps, so a reader in another process never sees a half-written ref:
 * the new ref is written to a temporary file (fdatasync'd when durable), then renamed into place
 * ({@link moveRef}). The temp file lives outside refs/, so a writer killed before the rename
 * leaves no fake branch.
 * @returns the temp file.
 */
async function writeRefTemp(gitdir: string, commit: string, durable: boolean): Promise<string> {
  const tmp = path.join(gitdir, `ref-${process.pid}-${++seq}.tmp`);
  const fd = fs.openSync(tmp, 'w');
  try {
    writeAllSync(fd, `${commit}\n`);
    if (durable) await fdatasyncFd(fd);
  } catch (err) {
    closeQuietly(fd);
    rmQuietly(tmp);
    throw err;
  }
  fs.closeSync(fd);
  return tmp;
}

/*
 * Spare ref files (journaled commits, i.e. the frames repo's group commits). A temp file renamed
 * over a ref frees the old ref's inode on every commit, and on ext4 without a journal every freed
 * inode is skipped, and looked up, by each file creation of the next 60-300 s. Instead, a branch
 * keeps one spare file outside refs/ (`vigil-spare-ref-<branch>`): the new id is written into the
 * spare, the current ref's inode gets a second name (`….next`), the spare is renamed over the ref
 * (atomic for readers, as a temp file's rename is), and the old ref's inode becomes the spare. No
 * inode is made or freed. A reader that opened the old ref and reads it only after the next
 * commit has rewritten that inode sees a newer id; one whose read overlaps that 41-byte write
 * could see a mix of two ids, which names no commit, so its read fails instead of answering
 * wrongly. After a crash, journal recovery writes the ref again; a swap cut off part-way is
 * finished or undone by the next one (see writeSpareRef).
 */

/** The spare ref file of a branch and its second name during a swap. */
function spareRefFiles(gitdir: string, branch: string): { spare: string; next: string } {
  const spare = path.join(gitdir, `vigil-spare-ref-${branch.replace(/\//g, '%')}`);
  return { spare, next: `${spare}.next` };
}

/**
 * Writes a branch's next id into its spare ref file (made on first use; a swap cut off part-way
 * is put right first).
 * @returns the spare file, or null when the branch has no loose ref file (the caller writes a temp file).
 */
function writeSpareRef(gitdir: string, branch: string, commit: string): string | null {
  if (!fs.existsSync(refFile(gitdir, branch))) return null;
  const { spare, next } = spareRefFiles(gitdir, branch);
  if (!fs.existsSync(spare)) {
    // Cut off after the spare became the ref: the old ref's inode is still under `next`.
    if (fs.existsSync(next)) fs.renameSync(next, spare);
  } else {
    // Cut off before: `next` is a second name of the ref's inode (removing it frees nothing).
    fs.rmSync(next, { force: true });
  }
  const fd = fs.openSync(spare, fs.constants.O_RDWR | fs.constants.O_CREAT);
  try {
    const line = Buffer.from(`${commit}\n`);
    if (fs.writeSync(fd, line, 0, line.length, 0) !== line.length) throw new VigilError('E_STORAGE', `short write to ${spare}`);
    fs.ftruncateSync(fd, line.length);
  } finally {
    fs.closeSync(fd);
  }
  return spare;
}

/**
 * Makes the spare written by {@link writeSpareRef} the branch's ref, and the old ref's inode the
 * spare.
 * @returns false when the ref could not get its second name (a file system without hard links,
 *   say): nothing moved, and the caller moves the branch with a temp file instead.
 */
function swapInSpareRef(gitdir: string, branch: string, spare: string): boolean {
  const { next } = spareRefFiles(gitdir, branch);
  const file = refFile(gitdir, branch);
  try {
    fs.linkSync(file, next);
  } catch {
    return false;
  }
  fs.renameSync(spare, file);
  fs.renameSync(next, spare);
  return true;
}

/** Renames a ref written by {@link writeRefTemp} into place; when durable, fsyncs its folder. */
async function moveRef(gitdir: string, branch: string, tmp: string, durable: boolean): Promise<void> {
  const file = refFile(gitdir, branch);
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.renameSync(tmp, file);
  } catch (err) {
    rmQuietly(tmp);
    throw err;
  }
  if (durable) await syncDir(path.dirname(file));
}


/** Safe file name for a batch id in the batch index. */
export function batchIndexFile(store: RepoStore, batchId: string): string {
  const safe = batchId.replace(/[^A-Za-z0-9_.-]/g, '_');
  return path.join(store.dataDir, 'index', 'batches', `${safe}.jsonl`);
}

/**
 * Appends the batch index line; with `durable`, fdatasync'd.
 * @returns the file and the line, and the folders that got a new name (the file, and folders
 *   created for it), to be fsync'd when durable: none when the file existed.
 */
async function indexBatchCommit(store: RepoStore, batchId: string, row: Record<string, unknown>, durable: boolean): Promise<{ file: string; line: Buffer; created: string[] }> {
  const file = batchIndexFile(store, batchId);
  const line = Buffer.from(JSON.stringify({ batchId, ...row, at: new Date().toISOString() }) + '\n');
  let fd: number;
  const created: string[] = [];
  try {
    fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_APPEND);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    const made = fs.mkdirSync(path.dirname(file), { recursive: true });
    fd = fs.openSync(file, 'a');
    created.push(path.dirname(file));
    if (made) created.push(path.dirname(made));
  }
  try {
    writeAllSync(fd, line);
    if (durable) await fdatasyncFd(fd);
  } finally {
    fs.closeSync(fd);
  }
  return { file, line, created };
}
