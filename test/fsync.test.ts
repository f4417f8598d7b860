import assert from 'node:assert/strict';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { DeviceRegistry } from '../ingest/devices.js';
import { mkdirDurably, writevAll } from '../lib/fsync.js';
import { ensurePrivateDir, privateDataDir } from '../lib/privateDir.js';
import { fsyncedBy, hasStrace } from './helpers/strace.js';
import { tmpDir } from './helpers/tmp.js';

test('mkdirDurably makes missing folders and says whether it made any', async () => {
  const dir = tmpDir();
  const deep = path.join(dir, 'a', 'b', 'c');
  assert.equal(await mkdirDurably(deep), true);
  assert.ok(existsSync(deep));
  assert.equal(await mkdirDurably(deep), false, 'nothing to make the second time');
  assert.equal(await mkdirDurably(path.join(dir, 'a', 'b', 'd')), true);
});

test('writevAll writes every buffer in order, more than one writev takes (IOV_MAX 1024), appending', async () => {
  const file = path.join(tmpDir(), 'f');
  const fd = openSync(file, 'a');
  try {
    const parts = Array.from({ length: 3000 }, (_, i) => Buffer.from(`${i},`));
    parts.splice(5, 0, Buffer.alloc(0), Buffer.alloc(200_000, 7));
    await writevAll(fd, [Buffer.from('head;')]);
    await writevAll(fd, parts);
    assert.deepEqual(readFileSync(file), Buffer.concat([Buffer.from('head;'), ...parts]));
  } finally {
    closeSync(fd);
  }
});

test("an alert's first ledger line makes its file's name durable too: the new folders and the file's folder are fsync'd", { skip: hasStrace ? false : 'strace is not installed' }, async () => {
  const dir = tmpDir();
  const alertId = 'a'.repeat(32);
  const snippet = `
    import { openStore } from ${JSON.stringify(path.resolve('repos/index.ts'))};
    import { recordSending } from ${JSON.stringify(path.resolve('stages/ledger.ts'))};
    const store = openStore(${JSON.stringify(dir)});
    for (let attempt = 1; attempt <= 2; attempt++) {
      await recordSending(store, { alertId: '${alertId}', channel: 'email', target: 'email:x', attempt, at: new Date().toISOString() });
    }`;
  const synced = fsyncedBy(snippet, dir);
  const file = path.join(dir, 'ledger', 'attempts', `${alertId}.jsonl`);
  const folder = path.dirname(file);
  // First line: the file's content, then its name (the folder); the folders made for it before.
  assert.deepEqual(synced.filter((p) => p === file).length, 2, 'each line fsync\'d');
  assert.ok(synced.includes(path.dirname(folder)), "ledger/ fsync'd (it got attempts/)");
  assert.ok(synced.includes(dir), "the data folder fsync'd (it got ledger/)");
  const firstFile = synced.indexOf(file);
  assert.equal(synced.slice(firstFile + 1).filter((p) => p === folder).length, 1, "attempts/ fsync'd once, after the first line, not after the second");
  assert.equal(readFileSync(file, 'utf8').trim().split('\n').length, 2);
});

test('data folders are made private (700); an existing folder keeps its mode and says whether others can read it', async () => {
  const base = tmpDir();
  const deep = path.join(base, 'a', 'data');
  assert.deepEqual(ensurePrivateDir(deep), { created: true, mode: '700', othersCanRead: false });
  assert.equal(statSync(deep).mode & 0o777, 0o700);
  assert.equal(statSync(path.join(base, 'a')).mode & 0o777, 0o700, 'missing parents too');
  const open = path.join(base, 'open');
  mkdirSync(open);
  chmodSync(open, 0o755);
  assert.deepEqual(ensurePrivateDir(open), { created: false, mode: '755', othersCanRead: true });
  assert.equal(statSync(open).mode & 0o777, 0o755, 'left as it was');
  assert.match(String(privateDataDir(open)), /is readable by other users \(mode 755\).*chmod 700/, 'vigil start and vigil worker print this');
  assert.equal(privateDataDir(deep), null);
  // `vigil device add` on a fresh data folder (the first command of the README) makes it private.
  const data = path.join(base, 'fresh');
  await new DeviceRegistry(data).add({ user: 'ann', device: 'door', site: 'hq' });
  assert.equal(statSync(data).mode & 0o777, 0o700);
  assert.equal(statSync(path.join(data, 'devices.json')).mode & 0o777, 0o600);
});
