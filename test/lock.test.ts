import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { isStale, withLock } from '../repos/lock.js';
import { tmpDir } from './helpers/tmp.js';

const now = Date.now();
const holder = (pid: number, host = os.hostname()) => JSON.stringify({ pid, host, at: new Date().toISOString() });

test('isStale: a dead holder on this host, a torn lock older than 5 s, any lock older than 10 minutes', () => {
  const alive = (pid: number) => pid === 1;
  assert.equal(isStale({ text: holder(1), ino: 1, mtimeMs: now }, now, alive), false);
  assert.equal(isStale({ text: holder(2), ino: 1, mtimeMs: now }, now, alive), true, 'holder gone');
  assert.equal(isStale({ text: holder(2, 'elsewhere'), ino: 1, mtimeMs: now }, now, alive), false, 'another host is not judged by pid');
  assert.equal(isStale({ text: '', ino: 1, mtimeMs: now - 1000 }, now, alive), false, 'maybe being written right now');
  assert.equal(isStale({ text: '{"pi', ino: 1, mtimeMs: now - 6000 }, now, alive), true);
  assert.equal(isStale({ text: holder(1), ino: 1, mtimeMs: now - 601_000 }, now, alive), true);
});

test('withLock breaks a dead holder\'s lock and a torn one, and never a live one', async () => {
  const dir = tmpDir();
  const lock = path.join(dir, 'vigil.lock');
  // A dead holder: a pid that exited.
  const child = spawn(process.execPath, ['-e', '0']);
  await new Promise((r) => child.once('exit', r));
  await fsp.writeFile(lock, holder(child.pid!));
  assert.equal(await withLock(lock, async () => 'ran', 2000), 'ran');
  // Torn and old.
  await fsp.writeFile(lock, '');
  const old = new Date(Date.now() - 10_000);
  await fsp.utimes(lock, old, old);
  assert.equal(await withLock(lock, async () => 'ran', 2000), 'ran');
  // Live (this process, as if another thread of it held it across processes): waits, then times out.
  await fsp.writeFile(lock, holder(process.pid));
  await assert.rejects(withLock(lock, async () => 'ran', 300), /timed out waiting for lock/);
  assert.match(await fsp.readFile(lock, 'utf8'), new RegExp(`"pid":${process.pid}`), 'the live lock is still there');
  await fsp.rm(lock);
});

test('many processes waiting on one dead holder\'s lock: each runs alone, none twice at once', async () => {
  const dir = tmpDir();
  const lock = path.join(dir, 'vigil.lock');
  const child = spawn(process.execPath, ['-e', '0']);
  await new Promise((r) => child.once('exit', r));
  await fsp.writeFile(lock, holder(child.pid!));
  const log = path.join(dir, 'log');
  const script = `
    import { withLock } from ${JSON.stringify(path.resolve('repos/lock.ts'))};
    import { appendFileSync } from 'node:fs';
    for (let i = 0; i < 5; i++) await withLock(${JSON.stringify(lock)}, async () => {
      appendFileSync(${JSON.stringify(log)}, 'in ' + process.pid + '\\n');
      await new Promise((r) => setTimeout(r, 15));
      appendFileSync(${JSON.stringify(log)}, 'out ' + process.pid + '\\n');
    }, 30000);`;
  const procs = Array.from({ length: 4 }, () => spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: 'inherit' }));
  const codes = await Promise.all(procs.map((p) => new Promise<number | null>((r) => p.once('exit', r))));
  assert.deepEqual(codes, [0, 0, 0, 0]);
  const lines = (await fsp.readFile(log, 'utf8')).trim().split('\n');
  assert.equal(lines.length, 40);
  for (let i = 0; i < lines.length; i += 2) {
    assert.match(lines[i]!, /^in /);
    assert.equal(lines[i + 1], lines[i]!.replace('in', 'out'), `critical sections never overlap (line ${i})`);
  }
});
