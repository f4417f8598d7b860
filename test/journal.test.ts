import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { appendFileSync, existsSync, linkSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { DeviceRegistry } from '../ingest/devices.js';
import { FrameIngestor } from '../ingest/frameIngestor.js';
import type { FrameDoc } from '../lib/schemas.js';
import {
  batchIndexFile, commitChanges, decodeEntries, encodeEntry, fsck, gitdirOf, journalDirOf, journalOf, journalSupported, listFiles, openStore, readBranchHead, readJson,
  recoverJournal, type JournalRecord, type RepoStore,
} from '../repos/index.js';
import { fsyncedBy, hasStrace } from './helpers/strace.js';
import { FIXTURES, tmpDir } from './helpers/tmp.js';

const frame = (name: string) => readFileSync(path.join(FIXTURES, name));
const at = (i: number) => new Date(Date.UTC(2026, 10, 27, 20, 0, i)).toISOString();
const segments = (store: RepoStore) => (existsSync(journalDirOf(store, 'frames')) ? readdirSync(journalDirOf(store, 'frames')).filter((f) => f.endsWith('.wal')) : []);

/** Every file a journal holds, as the journal holds it. */
function journaled(store: RepoStore): JournalRecord[] {
  return segments(store).flatMap((s) => decodeEntries(readFileSync(path.join(journalDirOf(store, 'frames'), s))).entries.flat());
}

async function ingestThree(journal: boolean) {
  const dir = tmpDir();
  const store = openStore(dir);
  const { device } = await new DeviceRegistry(dir).add({ user: 'ann', device: 'door', site: 'hq' });
  const ing = new FrameIngestor(store, { maxBytes: 1 << 24, journal });
  const answers = [];
  for (const [i, f] of ['chelsea.png', 'coffee.png', 'rocket.jpg'].entries()) answers.push(await ing.accept(device, frame(f), at(i)));
  return { store, answers, bytes: ['chelsea.png', 'coffee.png', 'rocket.jpg'].map(frame) };
}

test('journal entries: encoded and decoded whole; a torn or damaged tail is where decoding stops', () => {
  const a: JournalRecord[] = [{ kind: 'file', path: 'x/a', data: Buffer.from('alpha') }, { kind: 'ref', path: 'r', commit: 'c1', parent: null }];
  const b: JournalRecord[] = [{ kind: 'append', path: 'i', data: Buffer.from('line\n'), mark: 'c2' }, { kind: 'file', path: 'x/b', data: Buffer.alloc(70_000, 7) }];
  const buf = Buffer.concat([encodeEntry(a), encodeEntry(b)]);
  const whole = decodeEntries(buf);
  assert.equal(whole.clean, true);
  assert.deepEqual(whole.entries, [a, b]);
  for (const cut of [1, 30, buf.length - encodeEntry(b).length + 10, buf.length - 1]) {
    const torn = decodeEntries(buf.subarray(0, cut));
    assert.equal(torn.clean, false, `cut at ${cut}`);
    assert.ok(torn.entries.length < 2);
  }
  const damaged = Buffer.from(buf);
  damaged[damaged.length - 5]! ^= 0xff;
  assert.deepEqual(decodeEntries(damaged), { entries: [a], clean: false });
});

test('journaled ingest: a power loss that drops the files and the branch move is undone from the journal', { skip: !journalSupported() && 'needs sync -f (Linux coreutils)' }, async () => {
  const { store, answers, bytes } = await ingestThree(true);
  const head = await readBranchHead(store, 'frames');
  assert.ok(head);
  const records = journaled(store);
  assert.ok(segments(store).length >= 1, 'the commits are in the journal until a checkpoint');
  const files = records.filter((r): r is Extract<JournalRecord, { kind: 'file' }> => r.kind === 'file');
  const refs = records.filter((r): r is Extract<JournalRecord, { kind: 'ref' }> => r.kind === 'ref');
  assert.equal(refs.length, 3, 'one journal entry per group commit');
  assert.equal(refs.at(-1)!.commit, head);
  const frameFiles = files.filter((r) => r.path.startsWith('objects/'));
  assert.equal(frameFiles.length, 3, "each frame's bytes are in the journal");

  // What a power loss can leave: files never written out (gone or torn), the branch where it
  // was before these commits, the batch index without its lines.
  rmSync(path.join(store.dataDir, frameFiles[0]!.path), { force: true });
  truncateSync(path.join(store.dataDir, frameFiles[1]!.path), 100);
  // Each commit's git objects are one pack and its index.
  const packs = files.filter((r) => r.path.startsWith('repos/'));
  assert.equal(packs.length, 6);
  assert.ok(packs.every((r) => /^repos\/frames\.git\/objects\/pack\/pack-[0-9a-f]{40}\.(pack|idx)$/.test(r.path)));
  rmSync(path.join(store.dataDir, packs[0]!.path), { force: true });
  writeFileSync(path.join(store.dataDir, packs[1]!.path), '');
  writeFileSync(path.join(gitdirOf(store, 'frames'), 'refs', 'heads', 'main'), `${refs[0]!.commit}\n`);
  const index = records.find((r) => r.kind === 'append')!;
  rmSync(path.join(store.dataDir, index.path), { force: true });

  const done = await recoverJournal(store, 'frames');
  assert.equal(done.entries, 3);
  assert.equal(done.restored, 4, "the two frames, a commit's pack and its index");
  assert.equal(done.ref, head, 'the branch moved forward to the last journaled commit');
  assert.equal(done.appended, 3, 'the three index lines');
  assert.equal(await readBranchHead(store, 'frames'), head);
  assert.deepEqual(journaled(store), [], 'the journal is dropped once everything is flushed');
  const docs = await Promise.all((await listFiles(store, 'frames')).map((f) => readJson<FrameDoc>(store, 'frames', f.path)));
  assert.deepEqual(docs.map((d) => d!.frameId).sort(), answers.map((a) => a.frameId).sort());
  for (const [i, a] of answers.entries()) assert.ok((await store.objects.get(a.frameId)).equals(bytes[i]!), 'every frame has its bytes, hash-verified');
  const lines = readFileSync(path.join(store.dataDir, index.path), 'utf8').trim().split('\n');
  assert.equal(lines.length, 3);
  assert.deepEqual((await fsck(store)).problems, []);
  assert.deepEqual(await recoverJournal(store, 'frames'), { entries: 0, restored: 0, appended: 0, ref: null, tornTail: false }, 'nothing left to replay');
});

test('journal recovery: a torn last entry is ignored; a branch another writer moved on is left alone', { skip: !journalSupported() && 'needs sync -f (Linux coreutils)' }, async () => {
  const { store } = await ingestThree(true);
  const head = await readBranchHead(store, 'frames');
  // Another writer (not journaled) commits on top; then a crash tears an append.
  const other = await commitChanges(store, { repo: 'frames', changes: [{ path: 'note/readme.json', content: '{}\n' }], provenance: { batchId: 'other', stage: 'test', stageVersion: '1', inputs: [] }, summary: 'other', durable: true });
  assert.equal(other.parent, head);
  const seg = segments(store).at(-1)!;
  appendFileSync(path.join(journalDirOf(store, 'frames'), seg), encodeEntry([{ kind: 'ref', path: 'repos/frames.git/refs/heads/main', commit: 'f'.repeat(40), parent: other.commit }]).subarray(0, 40));
  const done = await recoverJournal(store, 'frames');
  assert.equal(done.tornTail, true);
  assert.equal(done.entries, 3);
  assert.equal(done.ref, null, 'the branch is not at a journaled commit: not moved back');
  assert.equal(await readBranchHead(store, 'frames'), other.commit);
  assert.equal(done.restored + done.appended, 0, 'nothing was missing: nothing written, the journal left to its checkpoint');
  await journalOf(store, 'frames').checkpoint();
  assert.deepEqual(journaled(store), []);
  assert.deepEqual((await fsck(store)).problems, []);
});

test('journal recovery: a segment listed but gone when read (a checkpoint removed it meanwhile) is skipped', { skip: !journalSupported() && 'needs sync -f (Linux coreutils)' }, async () => {
  const { store } = await ingestThree(true);
  const head = await readBranchHead(store, 'frames');
  // A segment name that lists but cannot be read: what a checkpoint's removal between the listing
  // and the read looks like to replay.
  symlinkSync(path.join(journalDirOf(store, 'frames'), 'removed-meanwhile'), path.join(journalDirOf(store, 'frames'), '0000000000000000.wal'));
  const done = await recoverJournal(store, 'frames');
  assert.equal(done.entries, 3, 'the other segment is read as before');
  assert.equal(done.tornTail, false);
  assert.equal(await readBranchHead(store, 'frames'), head);
});

test("journaled ingest writes each frame's bytes back in the background after its commit, not the small git objects", { skip: (!journalSupported() && 'needs sync -f (Linux coreutils)') || (!hasStrace && 'strace is not installed') }, async () => {
  const dir = tmpDir();
  const snippet = `
    import { readFileSync } from 'node:fs';
    import { DeviceRegistry } from ${JSON.stringify(path.resolve('ingest/devices.ts'))};
    import { FrameIngestor } from ${JSON.stringify(path.resolve('ingest/frameIngestor.ts'))};
    import { journalOf, openStore } from ${JSON.stringify(path.resolve('repos/index.ts'))};
    const store = openStore(${JSON.stringify(dir)});
    const { device } = await new DeviceRegistry(store.dataDir).add({ user: 'ann', device: 'door', site: 'hq' });
    const ing = new FrameIngestor(store, { maxBytes: 1 << 24, journal: true });
    const names = ${JSON.stringify(['chelsea.png', 'rocket.jpg'])};
    for (const [i, f] of names.entries()) await ing.accept(device, readFileSync(${JSON.stringify(FIXTURES)} + '/' + f), new Date(Date.UTC(2026, 10, 27, 20, 0, i)).toISOString());
    await journalOf(store, 'frames').writtenBack();`;
  const synced = fsyncedBy(snippet, dir);
  const store = openStore(dir);
  for (const f of ['chelsea.png', 'rocket.jpg']) {
    const sha = createHash('sha256').update(frame(f)).digest('hex');
    const file = path.join((store.objects as unknown as { root: string }).root, sha.slice(0, 2), sha.slice(2));
    assert.equal(synced.filter((p) => p === file).length, 1, `${f}'s bytes written back once`);
  }
  const gitFiles = synced.filter((p) => p.startsWith(path.join(dir, 'repos') + path.sep) && /\/objects\//.test(p));
  assert.deepEqual(gitFiles, [], 'the commits\' packs (small) are left to the checkpoint');
  assert.ok(synced.some((p) => p.startsWith(journalDirOf(store, 'frames'))), 'the journal itself is fdatasync\'d per commit');
});

test('journal checkpoint: segments are dropped; later commits start a new one; without a journal nothing is written there', { skip: !journalSupported() && 'needs sync -f (Linux coreutils)' }, async () => {
  const { store } = await ingestThree(true);
  const before = segments(store);
  assert.equal(before.length, 1);
  await journalOf(store, 'frames').checkpoint();
  const after = segments(store);
  assert.equal(after.length, 1, 'an empty segment for what comes next');
  assert.notEqual(after[0], before[0]);
  assert.equal(readFileSync(path.join(journalDirOf(store, 'frames'), after[0]!)).length, 0);
  const { device } = await new DeviceRegistry(store.dataDir).add({ user: 'ann', device: 'yard', site: 'hq' });
  await new FrameIngestor(store, { maxBytes: 1 << 24, journal: true }).accept(device, frame('home.jpg'), at(9));
  assert.equal(decodeEntries(readFileSync(path.join(journalDirOf(store, 'frames'), after[0]!))).entries.length, 1);
  assert.ok(readFileSync(batchIndexFile(store, `ingest-${new Date().toISOString().slice(0, 13).replace(/-/g, '')}`), 'utf8').length > 0);

  await journalOf(store, 'frames').checkpoint();
  await journalOf(store, 'frames').checkpoint();
  assert.equal(segments(store).length, 1, 'checkpoints with nothing journaled leave one empty segment');
  assert.deepEqual(journaled(store), []);

  const plain = await ingestThree(false);
  assert.deepEqual(segments(plain.store), [], 'journal: false fsyncs each file instead');
  assert.deepEqual((await fsck(plain.store)).problems, []);
});

test('a journaled commit that fails before its entry is durable leaves no pack behind, and the branch where it was', { skip: !journalSupported() && 'needs sync -f (Linux coreutils)' }, async () => {
  const store = openStore(tmpDir());
  const prov = (batchId: string) => ({ batchId, stage: 'ingest', stageVersion: '1', inputs: [] });
  const first = await commitChanges(store, { repo: 'frames', changes: [{ path: 'a/1.json', content: '{"n":1}' }], provenance: prov('b1'), summary: 'one', durable: 'journal' });
  const packDir = path.join(gitdirOf(store, 'frames'), 'objects', 'pack');
  const packsBefore = readdirSync(packDir).sort();
  assert.equal(packsBefore.length, 2, 'a pack and its index');
  // The journal cannot be written: its folder is a file now.
  await journalOf(store, 'frames').checkpoint();
  rmSync(journalDirOf(store, 'frames'), { recursive: true });
  writeFileSync(journalDirOf(store, 'frames'), 'in the way');
  await assert.rejects(commitChanges(store, { repo: 'frames', changes: [{ path: 'a/2.json', content: '{"n":2}' }], provenance: prov('b2'), summary: 'two', durable: 'journal' }), /ENOTDIR|not a directory/);
  assert.deepEqual(readdirSync(packDir).sort(), packsBefore, 'neither the pack nor the index (nor a temp file) is left');
  assert.equal(await readBranchHead(store, 'frames'), first.commit);
  rmSync(journalDirOf(store, 'frames'));
  await commitChanges(store, { repo: 'frames', changes: [{ path: 'a/2.json', content: '{"n":2}' }], provenance: prov('b2'), summary: 'two', durable: 'journal' });
  assert.deepEqual(await readJson(store, 'frames', 'a/2.json'), { n: 2 });
  assert.deepEqual((await fsck(store)).problems, []);
});

test('a failed checkpoint is tried again on its own, with no commit to trigger it', { skip: !journalSupported() && 'needs sync -f (Linux coreutils)', timeout: 30_000 }, async () => {
  const { store } = await ingestThree(true);
  const journal = journalOf(store, 'frames');
  // A `sync` that fails, first on PATH (the checkpoint's flush is `sync -f`).
  const bin = tmpDir('vigil-badsync-');
  writeFileSync(path.join(bin, 'sync'), '#!/bin/sh\necho "sync: simulated I/O error" >&2\nexit 1\n', { mode: 0o755 });
  const savedPath = process.env.PATH;
  process.env.PATH = `${bin}${path.delimiter}${savedPath}`;
  try {
    await assert.rejects(journal.checkpoint(), /simulated I\/O error/);
  } finally {
    process.env.PATH = savedPath;
  }
  assert.match(journal.lastError ?? '', /sync -f .* failed/);
  journal.retryFailedCheckpoint(); // too soon: waits CHECKPOINT_RETRY_MS
  assert.notEqual(journal.lastError, null);
  const t0 = Date.now();
  while (journal.lastError !== null && Date.now() - t0 < 20_000) {
    journal.retryFailedCheckpoint();
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.equal(journal.lastError, null, 'the retry succeeded without any new commit');
  assert.deepEqual(journaled(store), [], 'and dropped what it flushed');
  journal.retryFailedCheckpoint(); // nothing failed: nothing to do
  assert.deepEqual(journaled(store), []);
});

test('a journaled ingest killed (SIGKILL) mid-stream: after recovery every acknowledged frame is there with its bytes, fsck clean', { skip: !journalSupported() && 'needs sync -f (Linux coreutils)', timeout: 60_000 }, async () => {
  const dir = tmpDir();
  const store = openStore(dir);
  const { device } = await new DeviceRegistry(dir).add({ user: 'ann', device: 'gate', site: 'hq' });
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(import.meta.dirname, 'helpers', 'ingest-child.ts'), dir, JSON.stringify(device), path.join(FIXTURES, 'messi5.jpg')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const acks = new Map<string, string>();
  let buffered = '';
  await new Promise<void>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code, signal) => (signal === 'SIGKILL' ? resolve() : reject(new Error(`the ingesting child exited by itself (${code})`))));
    child.stdout!.on('data', (d: Buffer) => {
      buffered += d.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const l of lines) {
        const [, p, id] = l.split(' ');
        acks.set(p!, id!);
      }
      // Killed at a point the child does not choose, well into the stream.
      if (acks.size >= 60 && !child.killed) setTimeout(() => child.kill('SIGKILL'), Math.floor(Math.random() * 30));
    });
  });
  assert.ok(acks.size >= 60, `${acks.size} frames acknowledged before the kill`);
  assert.ok(journaled(store).length > 0, 'the kill came before a checkpoint: the journal holds the commits');
  await recoverJournal(store, 'frames');
  const head = (await readBranchHead(store, 'frames')) ?? undefined;
  const docs = new Map((await Promise.all((await listFiles(store, 'frames', head)).map(async (f) => [f.path, (await readJson<FrameDoc>(store, 'frames', f.path, head))!.frameId] as const))));
  for (const [p, id] of acks) {
    assert.equal(docs.get(p), id, `acknowledged frame ${p} is committed`);
    await store.objects.get(id); // its bytes, hash-verified
  }
  assert.deepEqual((await fsck(store)).problems, []);
});

test('journaled commits move the branch through a spare ref file: two inodes in turn, none freed; a swap cut off part-way is put right', { skip: !journalSupported() && 'needs sync -f (Linux coreutils)' }, async () => {
  const store = openStore(tmpDir());
  const gitdir = gitdirOf(store, 'frames');
  const ref = path.join(gitdir, 'refs', 'heads', 'main');
  const spare = path.join(gitdir, 'vigil-spare-ref-main');
  const git = (...args: string[]) => execFileSync('git', ['--git-dir', gitdir, ...args], { encoding: 'utf8' }).trim();
  const commit = (i: number) =>
    commitChanges(store, { repo: 'frames', changes: [{ path: `u-d/20261127T2242${String(i).padStart(2, '0')}120Z.json`, content: `{"i":${i}}\n` }], provenance: { batchId: 'spare', stage: 'test', stageVersion: '1', inputs: [] }, summary: `c${i}`, durable: 'journal' });
  const inodes = new Set<number>();
  for (let i = 0; i < 12; i++) {
    const c = await commit(i);
    assert.equal(readFileSync(ref, 'utf8'), `${c.commit}\n`);
    assert.equal(git('rev-parse', 'main'), c.commit, 'git reads the branch');
    inodes.add(statSync(ref).ino);
  }
  assert.equal(inodes.size, 2, 'the ref and its spare take turns');
  assert.ok(inodes.has(statSync(spare).ino));
  assert.ok(!existsSync(`${spare}.next`));

  // Cut off after the ref got its second name, before the spare took its place.
  linkSync(ref, `${spare}.next`);
  let c = await commit(20);
  assert.equal(git('rev-parse', 'main'), c.commit);
  // Cut off after the spare (holding the same head) took the ref's place, before the old ref became the spare.
  writeFileSync(spare, `${c.commit}\n`);
  linkSync(ref, `${spare}.next`);
  renameSync(spare, ref);
  c = await commit(21);
  assert.equal(git('rev-parse', 'main'), c.commit);
  assert.ok(existsSync(spare) && !existsSync(`${spare}.next`));
  assert.equal(new Set([...inodes, statSync(ref).ino, statSync(spare).ino]).size, 2, 'still the same two inodes');
  assert.equal((await listFiles(store, 'frames')).length, 14);
  git('fsck', '--strict');
  assert.deepEqual((await fsck(store)).problems, []);
});
