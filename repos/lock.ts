import { promises as fsp } from 'node:fs';
import os from 'node:os';
import { VigilError } from '../lib/errors.js';

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
      const fh = await fsp.open(lockPath, 'wx');
      created = true;
      try {
        await fh.writeFile(me);
      } finally {
        await fh.close();
      }
      return;
    } catch (err) {
      // Created but not written (e.g. ENOSPC): never leave an empty lock behind.
      if (created) await fsp.rm(lockPath, { force: true });
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

/** Removes a lock whose holder died on this host (or that is older than 10 minutes). */
async function breakIfStale(lockPath: string): Promise<void> {
  try {
    const [text, st] = await Promise.all([fsp.readFile(lockPath, 'utf8'), fsp.stat(lockPath)]);
    let dead: boolean;
    try {
      const holder = JSON.parse(text) as { pid: number; host: string };
      dead = holder.host === os.hostname() && !pidAlive(holder.pid);
    } catch {
      // Empty or torn: its writer died between creating and writing it (or is writing right now).
      dead = Date.now() - st.mtimeMs > 5_000;
    }
    if (dead || Date.now() - st.mtimeMs > 600_000) await fsp.rm(lockPath, { force: true });
  } catch {
    // Lock vanished or is half-written by its holder: try again.
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
      await fsp.rm(lockPath, { force: true });
    }
  } finally {
    release();
    if (inProcess.get(lockPath) === chain) inProcess.delete(lockPath);
  }
}
