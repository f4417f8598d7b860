import { spawn } from 'node:child_process';
import { VigilError } from '../../lib/errors.js';
import { hashHex } from '../../lib/hash.js';
import { repoPath } from '../layout.js';
import { gitdirOf, repoExists, repoLayout, type RepoStore } from '../store.js';
import { resolveRef } from './resolve.js';

/** One file met by {@link walkBlobs}. */
export interface WalkedBlob {
  path: string;
  /** git blob id, checked against the bytes. */
  oid: string;
  /** The blob's bytes: a view into a chunk of git's output (Buffer.from it to keep it long and small). */
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
 * `git ls-tree -r -z` prints them (path order), while it prints them (those of each chunk of its
 * output at once).
 */
async function* lsTree(gitdir: string, commit: string, prefix?: string): AsyncGenerator<Array<{ path: string; oid: string }>> {
  let rest: Buffer | null = null;
  for await (let chunk of gitOut(gitdir, ['ls-tree', '-r', '-z', '--full-tree', commit, ...(prefix ? ['--', prefix] : [])])) {
    // Only a record cut by the previous chunk is joined with this one.
    if (rest) chunk = Buffer.concat([rest, chunk]);
    const out: Array<{ path: string; oid: string }> = [];
    let from = 0;
    for (let nul = chunk.indexOf(0, from); nul >= 0; nul = chunk.indexOf(0, from)) {
      // "<mode> blob <oid>\t<path>": the header is ASCII, the path UTF-8.
      const tab = chunk.indexOf(0x09, from);
      if (tab >= 0 && tab < nul) {
        const [, type, oid] = chunk.toString('latin1', from, tab).split(' ');
        if (type === 'blob' && oid) out.push({ path: chunk.toString('utf8', tab + 1, nul), oid });
      }
      from = nul + 1;
    }
    rest = from < chunk.length ? Buffer.from(chunk.subarray(from)) : null;
    if (out.length) yield out;
  }
}

/**
 * Streams every file of a repo at a ref, in path order, through one `git cat-file --batch`: the
 * fast way to read a whole history's worth of documents (isomorphic-git reads one object per
 * call). Every blob is checked against its id (sha1 of git's header and the bytes), so a
 * damaged object fails loudly instead of being read. Yields the blobs of each chunk of git's
 * output as one array (one await per ~64 KiB instead of one per file); see {@link walkBlobs}
 * for one blob at a time.
 * @param opts.prefix only files under this folder (a top folder such as `alice-cam1/`).
 * @param opts.resolved `ref` is a full commit id that resolveRef already gave: not looked up again.
 * @throws VigilError E_NOT_FOUND (repo or ref), E_TOOL_MISSING (no git), E_HASH_MISMATCH, E_STORAGE.
 */
export async function* walkBlobBatches(store: RepoStore, repo: string, ref = 'main', opts: { prefix?: string; resolved?: boolean } = {}): AsyncGenerator<WalkedBlob[]> {
  if (!repoExists(store, repo)) throw new VigilError('E_NOT_FOUND', `no repo named ${repo}`);
  if (opts.resolved && !/^[0-9a-f]{40}$/.test(ref)) throw new VigilError('E_BAD_ID', `${repo}: ${JSON.stringify(ref)} is not a commit id`);
  const commit = opts.resolved ? ref : await resolveRef(store, repo, ref);
  if (!commit) return;
  const gitdir = gitdirOf(store, repo);
  const layout = repoLayout(store, repo);
  // The listing feeds cat-file as it comes: both run at once, in path order (a repo's day and hour
  // folders sort as the timestamps they hold, see repos/layout.ts).
  const files: Array<{ path: string; oid: string }> = [];
  async function* requests() {
    let batch = '';
    for await (const listed of lsTree(gitdir, commit!, opts.prefix)) {
      for (const f of listed) {
        files.push(layout === 'flat' ? f : { path: repoPath(layout, f.path), oid: f.oid });
        batch += `${f.oid}\n`;
      }
      if (batch.length >= 64 * 1024) {
        yield batch;
        batch = '';
      }
    }
    if (batch) yield batch;
  }
  let next = 0;
  /**
   * Checks and takes the record "<oid> blob <size>\n<bytes>\n" whose header line ends at `nl` in
   * `buf` (the whole record is in `buf`). Hashes git's object header and the bytes in place: the
   * header line ends with "blob <size>", so with its newline turned into NUL it is git's header
   * "blob <size>\0" right before the bytes (no copy).
   */
  const take = (buf: Buffer, nl: number, oid: string, size: number, headerLen: number): WalkedBlob => {
    const file = files[next++];
    if (!file || file.oid !== oid) throw new VigilError('E_CORRUPT', `${repo}: git cat-file answered ${oid}, expected ${file?.oid}`);
    const end = nl + 1 + size;
    buf[nl] = 0;
    const actual = hashHex('sha1', buf.subarray(nl - headerLen + 1, end));
    buf[nl] = 0x0a;
    if (actual !== oid) throw new VigilError('E_HASH_MISMATCH', `${repo}:${file.path}: blob ${oid} hashes to ${actual}`);
    return { path: file.path, oid, bytes: buf.subarray(nl + 1, end) };
  };
  /** Parses the header line `buf[start, nl)`: oid, size and the length of "blob <size>". */
  const header = (buf: Buffer, start: number, nl: number): { oid: string; size: number; headerLen: number } => {
    const line = buf.toString('latin1', start, nl);
    const sp = line.indexOf(' ');
    const oid = line.slice(0, sp);
    const rest = line.slice(sp + 1); // "blob <size>"
    const sizeText = rest.startsWith('blob ') ? rest.slice(5) : '';
    const size = /^(0|[1-9][0-9]*)$/.test(sizeText) ? Number(sizeText) : NaN;
    if (sp < 0 || !Number.isSafeInteger(size)) throw new VigilError('E_CORRUPT', `${repo}: git cat-file answered "${line}"`);
    return { oid, size, headerLen: rest.length + 1 };
  };
  // A record cut by a chunk boundary: its header so far (no newline yet), or the record being filled.
  let partial: Buffer | null = null;
  let record: { buf: Buffer; filled: number; nl: number; oid: string; size: number; headerLen: number } | null = null;
  for await (let chunk of gitOut(gitdir, ['cat-file', '--batch', '--buffer'], requests())) {
    const out: WalkedBlob[] = [];
    let pos = 0;
    if (partial) {
      // Only the header line was cut: it is short, join it with the chunk's start.
      chunk = Buffer.concat([partial, chunk]);
      partial = null;
    }
    if (record) {
      const n = Math.min(record.buf.length - record.filled, chunk.length);
      chunk.copy(record.buf, record.filled, 0, n);
      record.filled += n;
      pos = n;
      if (record.filled < record.buf.length) continue;
      const r = record;
      record = null;
      if (r.buf[r.buf.length - 1] !== 0x0a) throw new VigilError('E_CORRUPT', `${repo}: git cat-file output out of step after ${r.oid}`);
      out.push(take(r.buf, r.nl, r.oid, r.size, r.headerLen));
    }
    while (pos < chunk.length) {
      const nl = chunk.indexOf(0x0a, pos);
      if (nl < 0) {
        partial = Buffer.from(chunk.subarray(pos));
        break;
      }
      const h = header(chunk, pos, nl);
      const end = nl + 1 + h.size + 1;
      if (end > chunk.length) {
        const buf = Buffer.allocUnsafe(end - pos);
        const n = chunk.copy(buf, 0, pos);
        record = { buf, filled: n, nl: nl - pos, ...h };
        break;
      }
      if (chunk[end - 1] !== 0x0a) throw new VigilError('E_CORRUPT', `${repo}: git cat-file output out of step after ${h.oid}`);
      out.push(take(chunk, nl, h.oid, h.size, h.headerLen));
      pos = end;
    }
    if (out.length) yield out;
  }
  if (partial || record || next !== files.length) throw new VigilError('E_STORAGE', `${repo}: git cat-file stopped after ${next} of ${files.length} files`);
}

/**
 * Streams every file of a repo at a ref, in path order, one at a time (see
 * {@link walkBlobBatches}: every blob hash-checked).
 * @param opts.prefix only files under this folder (a top folder such as `alice-cam1/`).
 * @throws VigilError E_NOT_FOUND (repo or ref), E_TOOL_MISSING (no git), E_HASH_MISMATCH, E_STORAGE.
 */
export async function* walkBlobs(store: RepoStore, repo: string, ref = 'main', opts: { prefix?: string } = {}): AsyncGenerator<WalkedBlob> {
  for await (const batch of walkBlobBatches(store, repo, ref, opts)) yield* batch;
}
