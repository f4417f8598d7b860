import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { inflate as inflateCb, inflateSync } from 'node:zlib';
import git from 'isomorphic-git';
import { VigilError } from '../../lib/errors.js';
import { hashHex } from '../../lib/hash.js';
import type { gitArgs } from '../store.js';
import { forgetVanishedPacks } from './pack.js';

const inflate = promisify(inflateCb);

type GitArgs = ReturnType<typeof gitArgs>;

/** A git object's type and content (without its `<type> <size>\0` header). */
export interface GitObject {
  type: 'blob' | 'tree' | 'commit' | 'tag';
  content: Buffer;
}

/** One entry of a parsed tree, as isomorphic-git's readTree gives it. */
export interface TreeEntry {
  mode: string;
  path: string;
  oid: string;
  type: 'blob' | 'tree' | 'commit';
}

const OID = /^[0-9a-f]{40}$/;

/**
 * Reads one git object by id. A loose object (what the stages' commits write) is read with one
 * file read, inflated by node's zlib off the main thread and checked against its SHA-1; a packed
 * one (the frames repo's commits, and whatever the packer or `vigil repo gc` packed) is read
 * through isomorphic-git and checked here.
 * @throws VigilError E_CORRUPT when a loose object is damaged or does not hash to its id,
 *   E_NOT_FOUND when the object does not exist.
 */
export async function readObject(args: GitArgs, oid: string): Promise<GitObject> {
  if (!OID.test(oid)) throw new VigilError('E_BAD_ID', `not a git object id: ${JSON.stringify(oid)}`);
  let deflated: Buffer;
  try {
    deflated = await fsp.readFile(path.join(args.gitdir, 'objects', oid.slice(0, 2), oid.slice(2)));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    return readPacked(args, oid);
  }
  let raw: Buffer;
  try {
    raw = deflated.length < 65536 ? inflateSync(deflated) : await inflate(deflated);
  } catch (err) {
    throw new VigilError('E_CORRUPT', `git object ${oid} in ${args.gitdir} cannot be inflated: ${(err as Error).message}`);
  }
  if (hashHex('sha1', raw) !== oid) throw new VigilError('E_CORRUPT', `git object ${oid} in ${args.gitdir} does not hash to its id`);
  const nul = raw.indexOf(0);
  const header = nul > 0 ? raw.toString('latin1', 0, nul) : '';
  const m = /^(blob|tree|commit|tag) (\d+)$/.exec(header);
  if (!m || Number(m[2]) !== raw.length - nul - 1) throw new VigilError('E_CORRUPT', `git object ${oid} in ${args.gitdir} has a bad header`);
  return { type: m[1] as GitObject['type'], content: raw.subarray(nul + 1) };
}

const packsCheckedAt = new WeakMap<object, number>();

/**
 * Reads a packed object through isomorphic-git. A pack listed a moment ago can vanish before it is
 * read (packRepo rolled it up into a new one, see pack.ts): then the cache forgets the packs that
 * are gone and the read is tried once more, on the packs there are now.
 */
async function readPacked(args: GitArgs, oid: string, retried = false): Promise<GitObject> {
  // Packs rolled up since the last look are dropped from the cache (at most once a second), so a
  // long-running reader does not keep their contents in memory.
  const now = Date.now();
  if (now - (packsCheckedAt.get(args.cache) ?? 0) > 1000) {
    packsCheckedAt.set(args.cache, now);
    forgetVanishedPacks(args.cache);
  }
  let o: Awaited<ReturnType<typeof git.readObject>>;
  try {
    o = await git.readObject({ ...args, oid, format: 'content' });
  } catch (err) {
    if ((err as { code?: string }).code === 'NotFoundError') throw new VigilError('E_NOT_FOUND', `git object ${oid} is missing from ${args.gitdir}`);
    if (retried) throw err;
    forgetVanishedPacks(args.cache);
    return readPacked(args, oid, true);
  }
  // isomorphic-git checks the SHA-1 of loose objects only: a packed one is checked here.
  const content = Buffer.from(o.object as Uint8Array);
  const type = o.type as GitObject['type'];
  if (hashHex('sha1', Buffer.concat([Buffer.from(`${type} ${content.length}\0`), content])) !== oid) {
    throw new VigilError('E_CORRUPT', `git object ${oid} in ${args.gitdir} (packed) does not hash to its id`);
  }
  return { type, content };
}

/** Reads an object that must be of `type`. @throws VigilError E_CORRUPT otherwise. */
async function readTyped(args: GitArgs, oid: string, type: GitObject['type']): Promise<Buffer> {
  const o = await readObject(args, oid);
  if (o.type !== type) throw new VigilError('E_CORRUPT', `git object ${oid} is a ${o.type}, not a ${type}`);
  return o.content;
}

/** A blob's bytes. */
export function readBlobBytes(args: GitArgs, oid: string): Promise<Buffer> {
  return readTyped(args, oid, 'blob');
}

/** A tree's entries, in stored order, shaped as isomorphic-git's readTree returns them. */
export async function readTreeEntries(args: GitArgs, oid: string): Promise<TreeEntry[]> {
  return parseTree(await readTyped(args, oid, 'tree'), oid);
}

/** The tree id a commit names (its first line). */
export async function readCommitTree(args: GitArgs, oid: string): Promise<string> {
  const content = await readTyped(args, oid, 'commit');
  const m = /^tree ([0-9a-f]{40})\n/.exec(content.toString('latin1', 0, 46));
  if (!m) throw new VigilError('E_CORRUPT', `git commit ${oid} names no tree`);
  return m[1]!;
}

/** A commit's fields, as Vigil reads them. */
export interface CommitObject {
  tree: string;
  parents: string[];
  /** Committer time, seconds since the epoch. */
  committedAt: number;
  message: string;
}

/**
 * Reads a commit, checked against its id like every object read here (loose or packed).
 * @throws VigilError E_CORRUPT when it is damaged, not a commit, or malformed; E_NOT_FOUND.
 */
export async function readCommitObject(args: GitArgs, oid: string): Promise<CommitObject> {
  const text = (await readTyped(args, oid, 'commit')).toString('utf8');
  const blank = text.indexOf('\n\n');
  const headers = (blank < 0 ? text : text.slice(0, blank)).split('\n');
  const tree = /^tree ([0-9a-f]{40})$/.exec(headers[0] ?? '')?.[1];
  const parents = headers.map((h) => /^parent ([0-9a-f]{40})$/.exec(h)?.[1]).filter((p): p is string => p !== undefined);
  const committer = headers.find((h) => h.startsWith('committer '));
  const time = committer ? /> (\d+) [+-]\d{4}$/.exec(committer)?.[1] : undefined;
  if (!tree || time === undefined) throw new VigilError('E_CORRUPT', `git commit ${oid} in ${args.gitdir} is malformed`);
  return { tree, parents, committedAt: Number(time), message: blank < 0 ? '' : text.slice(blank + 2) };
}

/**
 * Parses a tree object's content: entries of `<octal mode> <name>\0<20-byte id>`.
 * @throws VigilError E_CORRUPT on a malformed entry.
 */
export function parseTree(content: Buffer, oid = '(tree)'): TreeEntry[] {
  const out: TreeEntry[] = [];
  let i = 0;
  while (i < content.length) {
    const space = content.indexOf(0x20, i);
    const nul = space < 0 ? -1 : content.indexOf(0, space + 1);
    if (space < 0 || nul < 0 || nul + 21 > content.length) throw new VigilError('E_CORRUPT', `git tree ${oid} has a malformed entry at byte ${i}`);
    const raw = content.toString('latin1', i, space);
    const mode = raw === '40000' ? '040000' : raw;
    const type = mode === '040000' ? 'tree' : mode === '160000' ? 'commit' : 'blob';
    out.push({ mode, path: content.toString('utf8', space + 1, nul), oid: content.toString('hex', nul + 1, nul + 21), type });
    i = nul + 21;
  }
  return out;
}
