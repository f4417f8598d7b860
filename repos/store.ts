import fs from 'node:fs';
import path from 'node:path';
import { VigilError } from '../lib/errors.js';
import { fsyncPath, writeFileDurably } from '../lib/fsync.js';
import { REPO_LAYOUTS, type RepoLayout } from './layout.js';
import { LocalObjectStore, type ObjectStore } from './objectStore.js';

/** The repos every Vigil installation has, in pipeline order. */
export const STAGE_REPOS = ['frames', 'standardized', 'invalid', 'detections'] as const;

const REPO_NAME = /^[a-z][a-z0-9_]{0,62}$/;
const PATH_SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9._+-]{0,127}$/;

/**
 * The storage context every repo operation takes: the data folder, its object store and a
 * shared isomorphic-git cache. Holds no Temporal state; safe to share in one process.
 */
export interface RepoStore {
  dataDir: string;
  objects: ObjectStore;
  /** isomorphic-git object cache (speeds up reads from packfiles). */
  cache: object;
}

/** Opens (without creating anything) the store rooted at `dataDir`. */
export function openStore(dataDir: string, objects?: ObjectStore): RepoStore {
  const abs = path.resolve(dataDir);
  return { dataDir: abs, objects: objects ?? new LocalObjectStore(path.join(abs, 'objects')), cache: {} };
}

/** Checks a repo name. @throws VigilError E_BAD_ID */
export function assertRepoName(name: string): string {
  if (!REPO_NAME.test(name)) throw new VigilError('E_BAD_ID', `invalid repo name ${JSON.stringify(name)}`);
  return name;
}

/** Checks a file path inside a repo: safe segments only, no `..`, no absolute paths. @throws VigilError E_BAD_ID */
export function assertRepoPath(p: string): string {
  const segs = p.split('/');
  if (segs.length > 6 || !segs.every((s) => PATH_SEGMENT.test(s) && s !== '..' && s !== '.')) {
    throw new VigilError('E_BAD_ID', `invalid path in repo: ${JSON.stringify(p)}`);
  }
  return p;
}

/** The git directory of a repo (bare). */
export function gitdirOf(store: RepoStore, repo: string): string {
  return path.join(store.dataDir, 'repos', `${assertRepoName(repo)}.git`);
}

/** The isomorphic-git arguments for a repo. */
export function gitArgs(store: RepoStore, repo: string) {
  return { fs, gitdir: gitdirOf(store, repo), cache: store.cache };
}

/** True when the repo exists. */
export function repoExists(store: RepoStore, repo: string): boolean {
  return fs.existsSync(path.join(gitdirOf(store, repo), 'HEAD'));
}

/** The file naming a repo's layout (see repos/layout.ts); a repo without one is `flat`. */
const LAYOUT_FILE = 'vigil-layout';
const layouts = new Map<string, RepoLayout>();
/** The layout every repo made now gets (see repos/layout.ts). */
const NEW_REPO_LAYOUT: RepoLayout = 'hour-folders';

/**
 * How a repo lays its documents out in git (see repos/layout.ts): what its layout file says,
 * `flat` for a repo made before layouts existed, `hour-folders` for a repo not made yet (what
 * ensureRepo will make). Read once per repo and process.
 */
export function repoLayout(store: RepoStore, repo: string): RepoLayout {
  const gitdir = gitdirOf(store, repo);
  const known = layouts.get(gitdir);
  if (known) return known;
  let layout: RepoLayout;
  try {
    const text = fs.readFileSync(path.join(gitdir, LAYOUT_FILE), 'utf8').trim();
    if (!REPO_LAYOUTS.includes(text as RepoLayout)) throw new VigilError('E_CORRUPT', `${repo}: unknown layout ${JSON.stringify(text.slice(0, 40))} in ${LAYOUT_FILE}`);
    layout = text as RepoLayout;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    if (!fs.existsSync(path.join(gitdir, 'HEAD'))) return NEW_REPO_LAYOUT;
    layout = 'flat';
  }
  layouts.set(gitdir, layout);
  return layout;
}

/** What `git init --bare` makes, in the order ensureRepo makes it (HEAD last: see repoExists). */
const INIT_FOLDERS = ['hooks', 'info', 'objects/info', 'objects/pack', 'refs/heads', 'refs/tags'];
/** The config isomorphic-git's init writes for a bare repo. */
const INIT_CONFIG = '[core]\n\trepositoryformatversion = 0\n\tfilemode = false\n\tbare = true\n\tsymlinks = false\n\tignorecase = true\n';
const creating = new Map<string, Promise<void>>();

/**
 * Creates the repo (bare, default branch `main`, hour-folders layout) if it does not exist.
 * Idempotent, and safe to call concurrently, from one process (one creation per repo at a time)
 * or several, and after a crash part-way (each file is written whole or not at all, and one a
 * crash left behind is written again). Every name is durable before HEAD, which is written last:
 * a repo with a HEAD has its layout file and its config, so no reader ever takes a new repo for
 * an old, flat one, and a repo whose creation was cut off is not a repo yet.
 */
export function ensureRepo(store: RepoStore, repo: string): Promise<void> {
  if (repoExists(store, repo)) return Promise.resolve();
  const gitdir = gitdirOf(store, repo);
  let running = creating.get(gitdir);
  if (!running) {
    running = createRepo(gitdir).finally(() => creating.delete(gitdir));
    creating.set(gitdir, running);
  }
  return running;
}

async function createRepo(gitdir: string): Promise<void> {
  if (fs.existsSync(path.join(gitdir, 'HEAD'))) return; // made meanwhile (another process)
  for (const folder of INIT_FOLDERS) await fs.promises.mkdir(path.join(gitdir, folder), { recursive: true });
  await Promise.all([path.dirname(gitdir), gitdir, path.join(gitdir, 'objects'), path.join(gitdir, 'refs')].map(fsyncPath));
  const layoutFile = path.join(gitdir, LAYOUT_FILE);
  if (!fs.existsSync(layoutFile)) {
    // Branches but no HEAD and no layout file: an older Vigil's creation was cut off between git
    // init's config and HEAD, and commits were made to it as it was (flat) since.
    const hasBranches = fs.existsSync(path.join(gitdir, 'packed-refs')) || fs.readdirSync(path.join(gitdir, 'refs', 'heads')).length > 0;
    await writeFileDurably(layoutFile, `${hasBranches ? 'flat' : NEW_REPO_LAYOUT}\n`);
  }
  if (!fs.existsSync(path.join(gitdir, 'config'))) await writeFileDurably(path.join(gitdir, 'config'), INIT_CONFIG);
  await writeFileDurably(path.join(gitdir, 'HEAD'), 'ref: refs/heads/main\n');
}

/** Lists the repos under the data folder. */
export async function listRepoNames(store: RepoStore): Promise<string[]> {
  try {
    const names = await fs.promises.readdir(path.join(store.dataDir, 'repos'));
    return names.filter((n) => n.endsWith('.git')).map((n) => n.slice(0, -4)).filter((n) => REPO_NAME.test(n)).sort();
  } catch {
    return [];
  }
}

/** Path of the repo's writer lock file. */
export function lockPathOf(store: RepoStore, repo: string): string {
  return path.join(gitdirOf(store, repo), 'vigil.lock');
}
