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

test('taking and releasing a lock neither makes nor frees an inode: the lock is a link to a parked file naming its holder', async () => {
  const dir = tmpDir();
  const lock = path.join(dir, 'vigil.lock');
  const inodes = new Set<number>();
  for (let i = 0; i < 50; i++) {
    await withLock(lock, async () => {
      const st = await fsp.stat(lock);
      inodes.add(st.ino);
      assert.equal(st.nlink, 2, 'the lock and its parked file');
      assert.equal(JSON.parse(await fsp.readFile(lock, 'utf8')).pid, process.pid);
    }, 2000, { park: true });
    await assert.rejects(fsp.stat(lock), { code: 'ENOENT' });
  }
  assert.equal(inodes.size, 1, 'one inode for every take');
  // A linked lock and an O_EXCL one exclude each other: another process's O_EXCL take times out.
  const other = `
    import { withLock } from ${JSON.stringify(path.resolve('repos/lock.ts'))};
    await withLock(${JSON.stringify(lock)}, async () => undefined, 300).then(() => process.exit(0), (e) => { console.log(e.code); process.exit(3); });`;
  const code = await withLock(lock, async () => {
    const p = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', other], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (b) => (out += b));
    const c = await new Promise<number | null>((r) => p.once('exit', r));
    assert.match(out, /E_LOCKED/);
    return c;
  }, 2000, { park: true });
  assert.equal(code, 3);
  assert.ok(!(await fsp.readdir(dir)).some((n) => n.includes(`park-`) && !n.endsWith(`-${process.pid}-0`)), 'an O_EXCL taker parks nothing');
  const parkings = (await fsp.readdir(dir)).filter((n) => n.startsWith('vigil.lock.park-'));
  assert.equal(parkings.length, 1);
  assert.equal((await fsp.stat(path.join(dir, parkings[0]!))).ino, [...inodes][0]);
});

test('parked lock files of processes that died are removed by the next process to use the lock; a live one is kept', async () => {
  const dir = tmpDir();
  const lock = path.join(dir, 'vigil.lock');
  const script = (signal: string) => `
    import { withLock } from ${JSON.stringify(path.resolve('repos/lock.ts'))};
    await withLock(${JSON.stringify(lock)}, async () => undefined, 2000, { park: true });
    ${signal === 'KILL' ? "process.kill(process.pid, 'SIGKILL');" : 'await new Promise((r) => setTimeout(r, 60_000));'}`;
  const dead = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script('KILL')], { stdio: 'inherit' });
  await new Promise((r) => dead.once('exit', r));
  const parkOf = (pid: number) => `vigil.lock.park-${pid}-0`;
  assert.ok((await fsp.readdir(dir)).includes(parkOf(dead.pid!)), 'a SIGKILLed process leaves its parked file');
  const live = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script('WAIT')], { stdio: 'inherit' });
  try {
    for (let i = 0; i < 300 && !(await fsp.readdir(dir)).includes(parkOf(live.pid!)); i++) await new Promise((r) => setTimeout(r, 50));
    // The live process's first use already removed the dead one's.
    assert.deepEqual((await fsp.readdir(dir)).filter((n) => n.startsWith('vigil.lock.park-')), [parkOf(live.pid!)]);
    assert.equal(await withLock(lock, async () => 'ran', 2000, { park: true }), 'ran');
    const left = (await fsp.readdir(dir)).filter((n) => n.startsWith('vigil.lock.park-')).sort();
    assert.deepEqual(left, [parkOf(live.pid!), parkOf(process.pid)].sort());
  } finally {
    live.kill('SIGKILL');
  }
});
