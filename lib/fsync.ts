import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/*
 * File-system calls on the commit and ingest paths.
 *
 * A call through libuv's thread pool (fs.promises, or fs with a callback) costs a round trip of
 * about 100-150 µs on the 2-core machine Vigil is benchmarked on, against 3-20 µs for the call
 * itself when it only touches the page cache (open, write of a small file, rename, unlink). A
 * group commit is a chain of a few dozen dependent calls, so those round trips, not the disk, made
 * it take ~20 ms. Calls that only touch the page cache therefore run synchronously on these paths;
 * the calls that wait for the disk (fsync, fdatasync) stay on the thread pool, so the event loop
 * keeps serving while they run and many of them overlap. Vigil's data folder is expected on a
 * local disk: on a network file system every call may wait, and the synchronous ones would stall
 * the event loop.
 */

/** fsync of an open file descriptor, on the thread pool. */
export function fsyncFd(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.fsync(fd, (err) => (err ? reject(err) : resolve())));
}

/** fdatasync (content and size: all a new file needs) of an open file descriptor, on the thread pool. */
export function fdatasyncFd(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.fdatasync(fd, (err) => (err ? reject(err) : resolve())));
}

/** Closes a descriptor, ignoring errors (for clean-up paths that already report a failure). */
export function closeQuietly(fd: number | null): void {
  if (fd === null) return;
  try {
    fs.closeSync(fd);
  } catch {
    /* already failing */
  }
}

/** Removes a file if it exists, ignoring errors (for clean-up paths that already report a failure). */
export function rmQuietly(file: string): void {
  try {
    fs.rmSync(file, { force: true });
  } catch {
    /* already failing */
  }
}

/**
 * fsync of a file or folder by path: for a file, makes its bytes durable; for a folder, makes the
 * names created, renamed or removed in it durable.
 */
export async function fsyncPath(p: string): Promise<void> {
  const fd = fs.openSync(p, 'r');
  try {
    await fsyncFd(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** fdatasync of a file by path (its content and size: all a file written once needs; read-only is enough on Linux). */
export async function fdatasyncPath(file: string): Promise<void> {
  const fd = fs.openSync(file, 'r');
  try {
    await fdatasyncFd(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Makes a folder and its missing parents so that they survive a power loss: every folder that got
 * a new entry (the existing parent of the first one made, and each one made but the last) is
 * fsync'd. The caller fsyncs `dir` itself after naming something in it.
 * @returns whether any folder was made
 */
export async function mkdirDurably(dir: string): Promise<boolean> {
  const first = fs.mkdirSync(dir, { recursive: true });
  if (first === undefined) return false;
  const gotEntries: string[] = [];
  for (let d = path.dirname(path.resolve(dir)); ; d = path.dirname(d)) {
    gotEntries.push(d);
    if (d === path.dirname(path.resolve(first)) || d === path.dirname(d)) break;
  }
  for (const d of gotEntries.reverse()) await fsyncPath(d);
  return true;
}

/**
 * Writes a whole buffer to a descriptor synchronously (see the note above: the caller's data is in
 * memory and the write only reaches the page cache).
 */
export function writeAllSync(fd: number, data: Uint8Array | string): void {
  const buf = typeof data === 'string' ? Buffer.from(data) : data;
  let off = 0;
  while (off < buf.length) off += fs.writeSync(fd, buf, off, buf.length - off);
}

/**
 * Writes buffers one after the other at a descriptor's position with writev (no copy into one
 * buffer), going on after a short write until all are written. On the thread pool: the journal's
 * entries are megabytes (a group commit's frames), and such a write, synchronous, held the event
 * loop, and every request in flight, for up to 60 ms now and then on the benchmark machine.
 */
export async function writevAll(fd: number, parts: readonly Buffer[]): Promise<void> {
  let bufs = parts.filter((b) => b.length > 0);
  while (bufs.length) {
    let n = await new Promise<number>((resolve, reject) => fs.writev(fd, bufs, (err, written) => (err ? reject(err) : resolve(written))));
    let i = 0;
    while (i < bufs.length && n >= bufs[i]!.length) n -= bufs[i++]!.length;
    bufs = bufs.slice(i);
    if (n > 0) bufs[0] = bufs[0]!.subarray(n);
  }
}

/**
 * Writes a file whole or not at all, durably: a temp file of its own beside it (so concurrent
 * writers never write into one file; removed if the write fails), fdatasync'd, renamed into
 * place, then its folder fsync'd. Makes the folder when missing (mkdirDurably).
 */
export async function writeFileDurably(file: string, data: Buffer | string): Promise<void> {
  await mkdirDurably(path.dirname(file));
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  let fd: number | null = null;
  try {
    fd = fs.openSync(tmp, 'w');
    writeAllSync(fd, data);
    await fdatasyncFd(fd);
    fs.closeSync(fd);
    fd = null;
    fs.renameSync(tmp, file);
  } catch (err) {
    closeQuietly(fd);
    rmQuietly(tmp);
    throw err;
  }
  await fsyncPath(path.dirname(file));
}
