import fs, { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { threadId } from 'node:worker_threads';
import { VigilError } from '../lib/errors.js';
import { writeAllSync } from '../lib/fsync.js';

const inProcess = new Map<string, Promise<unknown>>();

/** True when a process with this pid exists on this host. */
function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * This process's parked lock files, by lock path. A lock is taken by hard-linking the parked file
 * (which names this process) to the lock's name, which fails with EEXIST while another holder has
 * it, and released by unlinking that name: the file itself lives on under its parking name. So
 * taking and releasing a lock, once per commit, neither creates nor frees an inode. On ext4
 * without a journal a freed inode is skipped, and looked up, by every file creation for the next
 * 60-300 s, so a lock file made and removed per commit slowed every later file creation.
 */
const parked = new Map<string, { file: string; touchedAt: number }>();
/** A parked file's time is renewed this often, so a lock taken from it never looks 10 minutes old (isStale). */
const PARK_TOUCH_MS = 60_000;

/** This process's parked file for `lockPath`, made (and other processes' dead ones removed) on first use. */
function parkedFile(lockPath: string, me: string): string {
  const known = parked.get(lockPath);
  const now = Date.now();
  if (known && fs.existsSync(known.file)) {
    if (now - known.touchedAt > PARK_TOUCH_MS) {
      fs.utimesSync(known.file, now / 1000, now / 1000);
      known.touchedAt = now;
    }
    return known.file;
  }
  // Dead processes' files go first, so once this process's file is seen, theirs are gone.
  removeDeadParkings(lockPath);
  const file = `${lockPath}.park-${process.pid}-${threadId}`;
  const fd = fs.openSync(file, 'w');
  try {
    writeAllSync(fd, me);
  } finally {
    fs.closeSync(fd);
  }
  if (parked.size === 0) process.once('exit', () => parked.forEach((p) => fs.rmSync(p.file, { force: true })));
  parked.set(lockPath, { file, touchedAt: now });
  return file;
}

/** Removes parked files of `lockPath` left by processes of this host that no longer exist. */
function removeDeadParkings(lockPath: string): void {
  const dir = path.dirname(lockPath);
  const prefix = `${path.basename(lockPath)}.park-`;
  let names: string[];
  try {
    names = fs.readdirSync(dir).filter((n) => n.startsWith(prefix));
  } catch {
    return;
  }
  for (const n of names) {
    const pid = Number(/^(\d+)-\d+$/.exec(n.slice(prefix.length))?.[1]);
    if (!Number.isInteger(pid) || pid === process.pid || pidAlive(pid)) continue;
    try {
      const holder = JSON.parse(fs.readFileSync(path.join(dir, n), 'utf8')) as { host?: string };
      if (holder.host === os.hostname()) fs.rmSync(path.join(dir, n), { force: true });
    } catch {
      /* vanished or unreadable: left alone */
    }
  }
}

/** Lock paths whose file system refused a hard link: they use an O_EXCL file. */
const noLinks = new Set<string>();

/** Takes the lock once: true when taken, false when another holder has it. */
function tryTake(lockPath: string, me: string, park: boolean): boolean {
  // Synchronous: page-cache-only calls (see lib/fsync.ts), and the lock is taken once per
  // commit, on the ingest path.
  if (park && !noLinks.has(lockPath)) {
    try {
      fs.linkSync(parkedFile(lockPath, me), lockPath);
      return true;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') return false;
      if (code === 'ENOENT') {
        parked.delete(lockPath); // its parked file was removed meanwhile: made again on the next try
        return false;
      }
      if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw err;
      noLinks.add(lockPath);
    }
  }
  // An O_EXCL lock file, made and removed each time (mutually exclusive with a linked one: both
  // claim the same name).
  let created = false;
  try {
    const fd = fs.openSync(lockPath, 'wx');
    created = true;
    try {
      writeAllSync(fd, me);
    } finally {
      fs.closeSync(fd);
    }
    return true;
  } catch (err) {
    // Created but not written (e.g. ENOSPC): never leave an empty lock behind.
    if (created) fs.rmSync(lockPath, { force: true });
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return false;
  }
}

async function acquire(lockPath: string, timeoutMs: number, park: boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let delay = 2;
  const me = JSON.stringify({ pid: process.pid, host: os.hostname(), at: new Date().toISOString() });
  for (;;) {
    if (tryTake(lockPath, me, park)) return;
    await breakIfStale(lockPath);
    if (Date.now() > deadline) {
      throw new VigilError('E_LOCKED', `timed out waiting for lock ${lockPath}`, { lockPath });
    }
    await new Promise((r) => setTimeout(r, delay + Math.random() * delay));
    delay = Math.min(delay * 2, 50);
  }
}

/** A lock file as seen once: its content and identity, so a later look can tell it is the same file. */
interface Seen {
  text: string;
  ino: number;
  mtimeMs: number;
}

async function look(lockPath: string): Promise<Seen | null> {
  try {
    const [text, st] = await Promise.all([fsp.readFile(lockPath, 'utf8'), fsp.stat(lockPath)]);
    return { text, ino: st.ino, mtimeMs: st.mtimeMs };
  } catch {
    return null; // vanished (or unreadable for a moment): the caller simply tries again
  }
}

/**
 * True when a lock's holder is gone: a holder on this host whose pid no longer exists, an empty
 * or torn file older than 5 s (its writer died between creating and writing it), or any lock
 * older than 10 minutes.
 */
export function isStale(seen: Seen, now = Date.now(), alive: (pid: number) => boolean = pidAlive): boolean {
  if (now - seen.mtimeMs > 600_000) return true;
  try {
    const holder = JSON.parse(seen.text) as { pid: number; host: string };
    return holder.host === os.hostname() && !alive(holder.pid);
  } catch {
    return now - seen.mtimeMs > 5_000;
  }
}

/**
 * Removes a stale lock. Breakers take turns through a second O_EXCL file (`<lock>.break`) and
 * re-check, under it, that the lock is still the very file they judged stale (same inode and
 * content), so two waiters can never both break "the" stale lock and remove a live holder's lock
 * in between. Only breakers remove a lock they do not hold, so the re-check cannot go stale. A
 * breaker that died leaves a `.break` file, removed once it is 30 s old (breaking takes
 * milliseconds).
 */
async function breakIfStale(lockPath: string): Promise<void> {
  const seen = await look(lockPath);
  if (!seen || !isStale(seen)) return;
  const breaker = `${lockPath}.break`;
  try {
    await (await fsp.open(breaker, 'wx')).close();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      const st = await fsp.stat(breaker).catch(() => null);
      if (st && Date.now() - st.mtimeMs > 30_000) await fsp.rm(breaker, { force: true });
    }
    return;
  }
  try {
    const again = await look(lockPath);
    if (again && again.ino === seen.ino && again.text === seen.text && isStale(again)) await fsp.rm(lockPath, { force: true });
  } finally {
    await fsp.rm(breaker, { force: true });
  }
}

/**
 * Runs `fn` while holding an exclusive lock on `lockPath`, across processes (a lock file naming its
 * holder: a hard link to this process's parked file, or an O_EXCL file where hard links are
 * refused; a holder that died is detected and its lock broken) and within this process
 * (a promise chain, so local callers queue instead of polling).
 * With `park` (the repos' commits, taken once per commit), the lock is a hard link to a file this
 * process keeps beside it (see `parked`); otherwise an O_EXCL file. Both kinds exclude each other.
 * @throws VigilError E_LOCKED when the lock cannot be taken within `timeoutMs`.
 */
export async function withLock<T>(lockPath: string, fn: () => Promise<T>, timeoutMs = 60_000, opts: { park?: boolean } = {}): Promise<T> {
  const previous = inProcess.get(lockPath) ?? Promise.resolve();
  let release!: () => void;
  const mine = new Promise<void>((r) => (release = r));
  const chain = previous.then(() => mine);
  inProcess.set(lockPath, chain);
  await previous.catch(() => undefined);
  try {
    await acquire(lockPath, timeoutMs, opts.park ?? false);
    try {
      return await fn();
    } finally {
      fs.rmSync(lockPath, { force: true });
    }
  } finally {
    release();
    if (inProcess.get(lockPath) === chain) inProcess.delete(lockPath);
  }
}
