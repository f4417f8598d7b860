import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { VigilError } from '../../lib/errors.js';
import { gitdirOf, repoExists, type RepoStore } from '../store.js';
import { resolveRef } from './resolve.js';

/** One file met by {@link walkBlobs}. */
export interface WalkedBlob {
  path: string;
  /** git blob id, checked against the bytes. */
  oid: string;
  bytes: Buffer;
}

/** Runs system git with `args` and yields its stdout as chunks. */
async function* gitOut(gitdir: string, args: string[], stdin?: AsyncIterable<string>): AsyncGenerator<Buffer> {
  const child = spawn('git', ['--git-dir', gitdir, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  const failed = new Promise<never>((_, reject) => child.once('error', (err: NodeJS.ErrnoException) => {
    reject(err.code === 'ENOENT' ? new VigilError('E_TOOL_MISSING', 'git is not installed: bulk reads need it') : err);
  }));
  failed.catch(() => undefined);
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()).slice(-2000));
  const exited = new Promise<number | null>((r) => child.once('close', (code) => r(code)));
  const feeding = (async () => {
    try {
      if (stdin) for await (const line of stdin) if (!child.stdin.write(line)) await new Promise((r) => child.stdin.once('drain', r));
    } finally {
      child.stdin.end();
    }
  })();
  feeding.catch(() => child.kill());
  try {
    for await (const chunk of child.stdout as AsyncIterable<Buffer>) yield chunk;
    await Promise.race([feeding, failed]);
    const code = await Promise.race([exited, failed]);
    if (code !== 0) throw new VigilError('E_STORAGE', `git ${args[0]} failed (${code}): ${stderr.trim().split('\n')[0] ?? ''}`);
  } finally {
    if (child.exitCode === null) child.kill();
  }
}

/**
 * Yields `(path, oid)` of every blob in the tree of `commit`, under `prefix` if given, as
 * `git ls-tree -r -z` prints them (path order), while it prints them.
 */
async function* lsTree(gitdir: string, commit: string, prefix?: string): AsyncGenerator<{ path: string; oid: string }> {
  let rest: Buffer = Buffer.alloc(0);
  for await (const chunk of gitOut(gitdir, ['ls-tree', '-r', '-z', '--full-tree', commit, ...(prefix ? ['--', prefix] : [])])) {
    rest = rest.length ? Buffer.concat([rest, chunk]) : chunk;
    let from = 0;
    for (let nul = rest.indexOf(0, from); nul >= 0; nul = rest.indexOf(0, from)) {
      // "<mode> blob <oid>\t<path>"
      const rec = rest.subarray(from, nul).toString('utf8');
      from = nul + 1;
      const tab = rec.indexOf('\t');
      if (tab < 0) continue;
      const [, type, oid] = rec.slice(0, tab).split(' ');
      if (type === 'blob' && oid) yield { path: rec.slice(tab + 1), oid };
    }
    rest = rest.subarray(from);
  }
}

/**
 * Streams every file of a repo at a ref, in path order, through one `git cat-file --batch`: the
 * fast way to read a whole history's worth of documents (isomorphic-git reads one object per
 * call). Every blob is checked against its id (sha1 of git's header and the bytes), so a
 * damaged object fails loudly instead of being read.
 * @param opts.prefix only files under this folder (e.g. `alice-cam1/`).
 * @throws VigilError E_NOT_FOUND (repo or ref), E_TOOL_MISSING (no git), E_HASH_MISMATCH, E_STORAGE.
 */
export async function* walkBlobs(store: RepoStore, repo: string, ref = 'main', opts: { prefix?: string } = {}): AsyncGenerator<WalkedBlob> {
  if (!repoExists(store, repo)) throw new VigilError('E_NOT_FOUND', `no repo named ${repo}`);
  const commit = await resolveRef(store, repo, ref);
  if (!commit) return;
  const gitdir = gitdirOf(store, repo);
  // The listing feeds cat-file as it comes: both run at once, in path order.
  const files: Array<{ path: string; oid: string }> = [];
  async function* requests() {
    let batch = '';
    for await (const f of lsTree(gitdir, commit!, opts.prefix)) {
      files.push(f);
      batch += `${f.oid}\n`;
      if (batch.length >= 64 * 1024) {
        yield batch;
        batch = '';
      }
    }
    if (batch) yield batch;
  }
  let buf: Buffer = Buffer.alloc(0);
  let next = 0;
  for await (const chunk of gitOut(gitdir, ['cat-file', '--batch', '--buffer'], requests())) {
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    for (;;) {
      const nl = buf.indexOf(0x0a);
      if (nl < 0) break;
      const header = buf.subarray(0, nl).toString('latin1');
      const [oid, type, sizeText] = header.split(' ');
      if (type !== 'blob' || sizeText === undefined) throw new VigilError('E_CORRUPT', `${repo}: git cat-file answered "${header}"`);
      const size = Number(sizeText);
      if (buf.length < nl + 1 + size + 1) break;
      const bytes = Buffer.from(buf.subarray(nl + 1, nl + 1 + size));
      buf = buf.subarray(nl + 1 + size + 1);
      const file = files[next++];
      if (!file || file.oid !== oid) throw new VigilError('E_CORRUPT', `${repo}: git cat-file answered ${oid}, expected ${file?.oid}`);
      const actual = createHash('sha1').update(`blob ${size}\0`).update(bytes).digest('hex');
      if (actual !== oid) throw new VigilError('E_HASH_MISMATCH', `${repo}:${file.path}: blob ${oid} hashes to ${actual}`);
      yield { path: file.path, oid, bytes };
    }
  }
  if (next !== files.length) throw new VigilError('E_STORAGE', `${repo}: git cat-file stopped after ${next} of ${files.length} files`);
}
