import fs, { promises as fsp } from 'node:fs';
import os from 'node:os';
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

async function acquire(lockPath: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let delay = 2;
  const me = JSON.stringify({ pid: process.pid, host: os.hostname(), at: new Date().toISOString() });
  for (;;) {
    let created = false;
    try {
      // Synchronous: a lock file is a page-cache-only write (see lib/fsync.ts), and the lock is
      // taken once per commit, on the ingest path.
      const fd = fs.openSync(lockPath, 'wx');
      created = true;
      try {
        writeAllSync(fd, me);
      } finally {
        fs.closeSync(fd);
      }
      return;
    } catch (err) {
      // Created but not written (e.g. ENOSPC): never leave an empty lock behind.
      if (created) fs.rmSync(lockPath, { force: true });
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
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
 * Runs `fn` while holding an exclusive lock on `lockPath`, across processes (an O_EXCL lock file
 * naming its holder; a holder that died is detected and its lock broken) and within this process
 * (a promise chain, so local callers queue instead of polling).
 * @throws VigilError E_LOCKED when the lock cannot be taken within `timeoutMs`.
 */
export async function withLock<T>(lockPath: string, fn: () => Promise<T>, timeoutMs = 60_000): Promise<T> {
  const previous = inProcess.get(lockPath) ?? Promise.resolve();
  let release!: () => void;
  const mine = new Promise<void>((r) => (release = r));
  const chain = previous.then(() => mine);
  inProcess.set(lockPath, chain);
  await previous.catch(() => undefined);
  try {
    await acquire(lockPath, timeoutMs);
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
