import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs, { promises as fsp } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { isVigilError } from '../lib/errors.js';
import type { Provenance } from '../lib/schemas.js';
import {
  batchCommits, commitChanges, diff, ensureRepo, replacedFiles, type Change, type ReplacedFile, fsck, gcRepo, gitdirOf, inspect, listFiles, log, openStore, readJson, resolveRef, sha256Hex, sweepTempFiles, TEMP_FILE_MAX_AGE_MS, type LocalObjectStore,
} from '../repos/index.js';
import { tmpDir } from './helpers/tmp.js';

const prov = (batchId: string, inputs: Provenance['inputs'] = []): Provenance => ({ batchId, stage: 'test', stageVersion: '1', inputs });

test('object store: stored once, verified on read, corruption detected', async () => {
  const store = openStore(tmpDir());
  const bytes = Buffer.from('hello frame');
  const a = await store.objects.put(bytes);
  assert.equal(a.sha256, sha256Hex(bytes));
  assert.equal(a.created, true);
  const b = await store.objects.put(Buffer.from('hello frame'));
  assert.equal(b.created, false);
  assert.deepEqual(await store.objects.get(a.sha256), bytes);
  const file = path.join(store.dataDir, 'objects', a.sha256.slice(0, 2), a.sha256.slice(2));
  await fsp.chmod(file, 0o644);
  await fsp.writeFile(file, 'tampered');
  await assert.rejects(store.objects.get(a.sha256), (e) => isVigilError(e, 'E_HASH_MISMATCH'));
  await assert.rejects(store.objects.get('0'.repeat(64)), (e) => isVigilError(e, 'E_NOT_FOUND'));
  await assert.rejects(store.objects.get('../../etc/passwd'), (e) => isVigilError(e, 'E_BAD_ID'));
});

test('object store: prepare() makes every fan-out folder at once, so new objects fsync no folder but their own', { skip: process.platform !== 'linux' && 'reads fsync targets from /proc' }, async () => {
  const store = openStore(tmpDir());
  const root = path.join(store.dataDir, 'objects');
  await store.objects.prepare();
  await store.objects.prepare(); // idempotent
  const folders = (await fsp.readdir(root)).sort();
  assert.equal(folders.length, 257);
  assert.deepEqual(folders.slice(0, 2), ['00', '01']);
  assert.ok(folders.includes('ff') && folders.includes('tmp'));
  // Records the paths fsync'd while 64 new objects are stored.
  const synced: string[] = [];
  const orig = fs.fsync;
  (fs as unknown as Record<string, unknown>).fsync = (fd: number, cb: (err: NodeJS.ErrnoException | null) => void) => {
    synced.push(fs.readlinkSync(`/proc/self/fd/${fd}`));
    return orig(fd, cb);
  };
  try {
    for (let i = 0; i < 64; i++) await store.objects.put(Buffer.from(`frame ${i}`));
  } finally {
    fs.fsync = orig;
  }
  assert.equal(synced.filter((p) => p === root).length, 0, 'the root folder is never fsync\'d for a new fan-out folder');
  assert.equal(synced.length, 64, 'one fsync per object: its own folder');
  let listed = 0;
  for await (const _ of store.objects.list()) listed++;
  assert.equal(listed, 64);

  // A root that cannot be made is a typed error.
  const blocked = openStore(tmpDir());
  await fsp.writeFile(path.join(blocked.dataDir, 'objects'), 'not a folder');
  await assert.rejects(blocked.objects.prepare(), (e) => isVigilError(e, 'E_STORAGE'));
});

test('object store: a staged object has no name until published; a discarded one leaves nothing; a durable commit publishes with its own fsyncs', async () => {
  const store = openStore(tmpDir());
  const tmpFiles = async () => (await fsp.readdir(path.join(store.dataDir, 'objects', 'tmp')).catch(() => [])).length;
  const bytes = Buffer.from('staged frame');
  const staged = await store.objects.stage(bytes);
  assert.equal(staged.sha256, sha256Hex(bytes));
  assert.equal(staged.created, true);
  assert.equal(await store.objects.has(staged.sha256), false, 'not visible before publish');
  const dirs = await staged.publish();
  assert.deepEqual(dirs, [path.join(store.dataDir, 'objects', staged.sha256.slice(0, 2))]);
  assert.deepEqual(await store.objects.get(staged.sha256), bytes);
  await staged.discard(); // no-op after publish
  assert.deepEqual(await store.objects.get(staged.sha256), bytes);
  await assert.rejects(staged.publish(), (e) => isVigilError(e, 'E_STORAGE'), 'publish only once');
  // The same bytes again: nothing to write, the folder is still named for the caller's fsync.
  const again = await store.objects.stage(bytes);
  assert.equal(again.created, false);
  assert.deepEqual(await again.publish(), dirs);

  const dropped = await store.objects.stage(Buffer.from('never published'));
  assert.equal(await tmpFiles(), 1);
  await dropped.discard();
  assert.equal(await tmpFiles(), 0, 'discard removes the temp file');
  assert.equal(await store.objects.has(dropped.sha256), false);

  // commitChanges(durableWith): run only when a commit is written, before the ref moves.
  const other = await store.objects.stage(Buffer.from('committed with its document'));
  let ran = 0;
  const step = () => {
    ran++;
    return other.publish();
  };
  const r = await commitChanges(store, { repo: 'docs', changes: [{ path: 'a.json', content: '{}' }], provenance: prov('b1'), summary: 's', durable: true, durableWith: () => [step] });
  assert.equal(r.created, true);
  assert.equal(ran, 1);
  assert.equal(await store.objects.has(other.sha256), true);
  const noop = await commitChanges(store, { repo: 'docs', changes: [{ path: 'a.json', content: '{}' }], provenance: prov('b1'), summary: 's', durable: true, durableWith: () => [step] });
  assert.equal(noop.created, false);
  assert.equal(ran, 1, 'no commit, no step');
  await assert.rejects(commitChanges(store, { repo: 'docs', changes: [], provenance: prov('b1'), summary: 's', durableWith: () => [] }), (e) => isVigilError(e, 'E_BAD_INPUT'));
});

test('a commit that changes nothing in a repo without commits writes no object (no stray empty tree); deleting everything commits the empty tree', async () => {
  const store = openStore(tmpDir());
  const loose = () => {
    const dir = path.join(gitdirOf(store, 'docs'), 'objects');
    return fs.readdirSync(dir).filter((d) => /^[0-9a-f]{2}$/.test(d)).flatMap((d) => fs.readdirSync(path.join(dir, d)).map((f) => d + f));
  };
  for (const changes of [[], [{ path: 'gone.json', delete: true as const }]]) {
    const r = await commitChanges(store, { repo: 'docs', changes, provenance: prov('b0'), summary: 'nothing', durable: true });
    assert.deepEqual({ created: r.created, commit: r.commit }, { created: false, commit: null });
    assert.deepEqual(loose(), [], 'no object written');
  }
  await commitChanges(store, { repo: 'docs', changes: [{ path: 'a.json', content: '{}' }], provenance: prov('b1'), summary: 'one' });
  const all = await commitChanges(store, { repo: 'docs', changes: [{ path: 'a.json', delete: true }], provenance: prov('b1'), summary: 'none left' });
  assert.equal(all.created, true);
  assert.deepEqual(await listFiles(store, 'docs'), []);
  assert.ok(loose().includes('4b825dc642cb6eb9a060e54bf8d69288fbee4904'), 'the empty tree, named by the commit');
});

test('replacedFiles: every version a later commit replaced or removed, newest first, with the last commit that has it', async () => {
  const store = openStore(tmpDir());
  await ensureRepo(store, 'alerts');
  const commit = async (changes: Change[]) => (await commitChanges(store, { repo: 'alerts', changes, provenance: prov('b'), summary: 's' })).commit!;
  const all = async () => {
    const out: ReplacedFile[] = [];
    for await (const f of replacedFiles(store, 'alerts')) out.push(f);
    return out;
  };
  assert.deepEqual(await all(), [], 'no commits');
  // Timestamped names live in hour folders: paths come back as the repo's.
  const c1 = await commit([{ path: 'u1-d1/20261127T210000000Z-100.json', content: '{"v":1}' }, { path: 'keep.json', content: 'k' }, { path: 'gone.json', content: 'g' }]);
  assert.deepEqual(await all(), [], 'one commit replaces nothing');
  const oidsAt = async (ref: string) => new Map((await listFiles(store, 'alerts', ref)).map((f) => [f.path, f.oid]));
  const v1 = await oidsAt(c1);
  const c2 = await commit([{ path: 'u1-d1/20261127T210000000Z-100.json', content: '{"v":2}' }, { path: 'u1-d1/20261127T220000000Z-100.json', content: 'new' }]);
  await commit([{ path: 'gone.json', delete: true }]);
  const v2 = await oidsAt(c2);
  await commit([{ path: 'u1-d1/20261127T210000000Z-100.json', content: '{"v":3}' }]);
  const cool1 = (await oidsAt('main')).get('cooldowns/u1-d1-100.json');
  assert.equal(cool1, undefined);
  await commit([{ path: 'cooldowns/u1-d1-100.json', content: '1' }]);
  const before = (await oidsAt('main')).get('cooldowns/u1-d1-100.json');
  await commit([{ path: 'cooldowns/u1-d1-100.json', content: '2' }]);
  const found = await all();
  assert.deepEqual(found[0], { path: 'cooldowns/u1-d1-100.json', oid: before, commit: (await log(store, 'alerts'))[1]!.commit });
  const skipped: ReplacedFile[] = [];
  for await (const f of replacedFiles(store, 'alerts', 'main', { skipFolder: 'cooldowns' })) skipped.push(f);
  assert.deepEqual(skipped, found.slice(1), 'a folder left out is not read');
  assert.deepEqual(found.slice(1), [
    { path: 'u1-d1/20261127T210000000Z-100.json', oid: v2.get('u1-d1/20261127T210000000Z-100.json'), commit: (await log(store, 'alerts'))[3]!.commit },
    { path: 'gone.json', oid: v1.get('gone.json'), commit: c2 },
    { path: 'u1-d1/20261127T210000000Z-100.json', oid: v1.get('u1-d1/20261127T210000000Z-100.json'), commit: c1 },
  ]);
});

test('commits: provenance, no-op commits, log, diff, inspect, batch index', async () => {
  const store = openStore(tmpDir());
  const c1 = await commitChanges(store, { repo: 'frames', changes: [{ path: 'u1-d1/a.json', content: '{"x":1}' }], provenance: prov('b1'), summary: 'one' });
  assert.equal(c1.created, true);
  const again = await commitChanges(store, { repo: 'frames', changes: [{ path: 'u1-d1/a.json', content: '{"x":1}' }], provenance: prov('b1'), summary: 'same' });
  assert.equal(again.created, false, 'identical content makes no commit');
  assert.equal(again.commit, c1.commit);
  const c2 = await commitChanges(store, {
    repo: 'detections',
    changes: [{ path: 'u1-d1/a.json', content: '{"y":2}' }, { path: 'u1-d1/b.json', content: '{"y":3}' }],
    provenance: prov('b1', [{ repo: 'frames', commit: c1.commit! }]),
    summary: 'two',
  });
  const c3 = await commitChanges(store, {
    repo: 'detections',
    changes: [{ path: 'u1-d1/a.json', content: '{"y":9}' }, { path: 'u1-d1/b.json', delete: true }, { path: 'u2-d1/c.json', content: '{}' }],
    provenance: prov('b2'),
    summary: 'three',
  });
  assert.deepEqual((await listFiles(store, 'detections')).map((f) => f.path), ['u1-d1/a.json', 'u2-d1/c.json']);
  assert.deepEqual(await readJson(store, 'detections', 'u1-d1/a.json', c2.commit!), { y: 2 });
  assert.deepEqual(await readJson(store, 'detections', 'u1-d1/a.json'), { y: 9 });
  const d = await diff(store, { repo: 'detections', ref: c2.commit! }, { repo: 'detections', ref: c3.commit! });
  assert.deepEqual(d, { added: ['u2-d1/c.json'], removed: ['u1-d1/b.json'], modified: ['u1-d1/a.json'] });
  const history = await log(store, 'detections');
  assert.deepEqual(history.map((h) => h.summary), ['three', 'two']);
  const info = await inspect(store, 'detections', c2.commit!.slice(0, 10));
  assert.deepEqual(info.provenance?.inputs, [{ repo: 'frames', commit: c1.commit }]);
  const b1 = await batchCommits(store, 'b1');
  assert.deepEqual(b1.map((c) => `${c.repo}@${c.commit}`).sort(), [`frames@${c1.commit}`, `detections@${c2.commit}`].sort());
  await assert.rejects(commitChanges(store, { repo: 'frames', changes: [{ path: '../x.json', content: '' }], provenance: prov('b'), summary: 'x' }), (e) => isVigilError(e, 'E_BAD_ID'));
  await assert.rejects(commitChanges(store, { repo: '../etc', changes: [], provenance: prov('b'), summary: 'x' }), (e) => isVigilError(e, 'E_BAD_ID'));
});

test('fsck: clean store passes; a broken provenance link and a corrupt object are named', async () => {
  const store = openStore(tmpDir());
  const obj = await store.objects.put(Buffer.from('pixels'));
  const c1 = await commitChanges(store, { repo: 'frames', changes: [{ path: 'u-d/t.json', content: JSON.stringify({ object: { sha256: obj.sha256, size: 6, mediaType: 'image/jpeg' } }) }], provenance: prov('b'), summary: 'f' });
  await commitChanges(store, { repo: 'standardized', changes: [{ path: 'u-d/t.json', content: '{}' }], provenance: prov('b', [{ repo: 'frames', commit: c1.commit! }]), summary: 's' });
  const clean = await fsck(store);
  assert.deepEqual(clean.problems, []);
  assert.equal(clean.provenanceLinks, 1);
  await commitChanges(store, { repo: 'standardized', changes: [{ path: 'u-d/u.json', content: '{}' }], provenance: prov('b', [{ repo: 'frames', commit: 'f'.repeat(40) }]), summary: 'bad link' });
  const file = path.join(store.dataDir, 'objects', obj.sha256.slice(0, 2), obj.sha256.slice(2));
  await fsp.chmod(file, 0o644);
  await fsp.writeFile(file, 'PIXELS');
  const bad = await fsck(store);
  const text = bad.problems.map((p) => `${p.where} ${p.problem}`).join('\n');
  assert.match(text, new RegExp(`frames@${'f'.repeat(40)}, which does not exist`));
  assert.match(text, new RegExp(`object ${obj.sha256}.*corrupt`));
});

test('concurrent writers in separate processes lose nothing', async () => {
  const dir = tmpDir();
  const script = `
    import { commitChanges, openStore } from ${JSON.stringify(path.resolve(import.meta.dirname, '../repos/index.ts'))};
    const store = openStore(process.argv[1]);
    const who = process.argv[2];
    await Promise.all(Array.from({ length: 15 }, (_, i) => commitChanges(store, {
      repo: 'shared', changes: [{ path: who + '/' + i + '.json', content: JSON.stringify({ who, i }) }],
      provenance: { batchId: who, stage: 't', stageVersion: '1', inputs: [] }, summary: who + i })));
  `;
  const runOne = (who: string) =>
    new Promise<void>((resolve, reject) => {
      const p = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, dir, who], { stdio: 'inherit' });
      p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`writer ${who} exited ${code}`))));
    });
  await Promise.all([runOne('alpha'), runOne('beta'), runOne('gamma')]);
  const store = openStore(dir);
  const files = await listFiles(store, 'shared');
  assert.equal(files.length, 45);
  assert.equal((await log(store, 'shared')).length, 45, 'one commit per write, none lost');
});

test('gc packs loose objects and keeps every document readable', async () => {
  const store = openStore(tmpDir());
  for (let i = 0; i < 40; i++) {
    await commitChanges(store, { repo: 'frames', changes: [{ path: `u-d/${String(i).padStart(4, '0')}.json`, content: JSON.stringify({ i, pad: 'x'.repeat(100) }) }], provenance: prov(`b${i}`), summary: `f${i}` });
  }
  const r = await gcRepo(store, 'frames');
  assert.ok(r.bytesAfter < r.bytesBefore / 3, `packed ${r.bytesBefore} -> ${r.bytesAfter}`);
  const objectsDir = path.join(gitdirOf(store, 'frames'), 'objects');
  assert.deepEqual((await fsp.readdir(objectsDir)).filter((d) => /^[0-9a-f]{2}$/.test(d)), [], 'no loose objects left');
  assert.deepEqual(await readJson(store, 'frames', 'u-d/0007.json'), { i: 7, pad: 'x'.repeat(100) });
  await commitChanges(store, { repo: 'frames', changes: [{ path: 'u-d/new.json', content: '{}' }], provenance: prov('after'), summary: 'after gc' });
  assert.equal((await listFiles(store, 'frames')).length, 41);
  assert.deepEqual((await fsck(store)).problems, []);
});

test('a branch ref that names no commit is refused, never taken for an empty history', async () => {
  const store = openStore(tmpDir());
  const c1 = await commitChanges(store, { repo: 'frames', changes: [{ path: 'a.json', content: '{}' }], provenance: prov('b1'), summary: 'one' });
  const ref = path.join(gitdirOf(store, 'frames'), 'refs', 'heads', 'main');
  for (const torn of ['', c1.commit!.slice(0, 17)]) {
    await fsp.writeFile(ref, torn);
    await assert.rejects(
      commitChanges(store, { repo: 'frames', changes: [{ path: 'b.json', content: '{}' }], provenance: prov('b2'), summary: 'two' }),
      (e) => isVigilError(e, 'E_CORRUPT') && /names no commit/.test((e as Error).message),
    );
  }
  await fsp.writeFile(ref, `${c1.commit}\n`);
  const c2 = await commitChanges(store, { repo: 'frames', changes: [{ path: 'b.json', content: '{}' }], provenance: prov('b2'), summary: 'two' });
  assert.deepEqual((await log(store, 'frames')).map((h) => h.commit), [c2.commit, c1.commit], 'history continues from the repaired ref');
});

test('loose objects are written whole: a temp file a killed writer left does not disturb reads, writes or fsck', async () => {
  const store = openStore(tmpDir());
  await commitChanges(store, { repo: 'frames', changes: [{ path: 'a.json', content: '{"a":1}' }], provenance: prov('b1'), summary: 'one' });
  const objects = path.join(gitdirOf(store, 'frames'), 'objects');
  const dirs = (await fsp.readdir(objects)).filter((d) => /^[0-9a-f]{2}$/.test(d));
  // What a writer killed between writing and renaming leaves: a partial temp file next to the objects.
  await fsp.writeFile(path.join(objects, dirs[0]!, 'tmp_obj_999999_1'), Buffer.from([0x78, 0x01]));
  const names = (await Promise.all(dirs.map((d) => fsp.readdir(path.join(objects, d))))).flat();
  assert.ok(names.filter((n) => n.startsWith('tmp_obj_')).length === 1, 'only the planted temp file: the writer renamed its own');
  await commitChanges(store, { repo: 'frames', changes: [{ path: 'b.json', content: '{"b":2}' }], provenance: prov('b1'), summary: 'two' });
  assert.deepEqual(await readJson(store, 'frames', 'a.json'), { a: 1 });
  assert.deepEqual(await readJson(store, 'frames', 'b.json'), { b: 2 });
  assert.deepEqual((await fsck(store)).problems, []);
});

test('sweepTempFiles removes what killed writers left once it is an hour old, and nothing else', async () => {
  const store = openStore(tmpDir());
  await store.objects.prepare();
  await commitChanges(store, { repo: 'frames', changes: [{ path: 'a.json', content: '{"a":1}' }], provenance: prov('b1'), summary: 'one' });
  const kept = await store.objects.put(Buffer.from('a frame'));
  const root = (store.objects as LocalObjectStore).root;
  const gitdir = gitdirOf(store, 'frames');
  const fan = (await fsp.readdir(path.join(gitdir, 'objects'))).find((d) => /^[0-9a-f]{2}$/.test(d))!;
  const old = Date.now() - TEMP_FILE_MAX_AGE_MS - 60_000;
  const plant = async (file: string, bytes: number, mtime: number): Promise<string> => {
    await fsp.writeFile(file, Buffer.alloc(bytes, 1));
    await fsp.utimes(file, mtime / 1000, mtime / 1000);
    return file;
  };
  const stale = [
    await plant(path.join(root, 'tmp', `${sha256Hex(Buffer.from('x'))}.4242.0a1b2c3d`), 1000, old),
    await plant(path.join(gitdir, 'objects', fan, 'tmp_obj_4242_t1_7'), 20, old),
    await plant(path.join(gitdir, 'ref-4242-3.tmp'), 41, old),
    await plant(path.join(gitdir, 'objects', 'pack', 'tmp_pack_4242_t1_8'), 100, old),
    await plant(path.join(gitdir, 'objects', 'pack', `pack-${'a'.repeat(40)}.pack`), 200, old), // its index never took its name
    await plant(path.join(gitdir, 'objects', 'pack', `pack-${'c'.repeat(40)}.idx.tmp-4242-0a1b2c3d`), 10, old), // a recovery's rewrite, cut off
  ];
  // A live writer's temp files (fresh), and old files that are not temp files.
  const fresh = [
    await plant(path.join(root, 'tmp', `${sha256Hex(Buffer.from('y'))}.4243.0a1b2c3e`), 1000, Date.now()),
    await plant(path.join(gitdir, 'objects', fan, 'tmp_obj_4243_9'), 20, Date.now()),
    await plant(path.join(gitdir, 'objects', 'pack', 'tmp_pack_4243_t1_9'), 100, Date.now()),
  ];
  const others = [
    await plant(path.join(gitdir, 'vigil-notes'), 5, old),
    await plant(path.join(root, 'tmp', 'README'), 5, old),
    // An old pack with its index.
    await plant(path.join(gitdir, 'objects', 'pack', `pack-${'b'.repeat(40)}.pack`), 200, old),
    await plant(path.join(gitdir, 'objects', 'pack', `pack-${'b'.repeat(40)}.idx`), 200, old),
  ];
  for (const f of [path.join(root, kept.sha256.slice(0, 2), kept.sha256.slice(2)), path.join(gitdir, 'HEAD')]) await fsp.utimes(f, old / 1000, old / 1000);

  assert.deepEqual(await sweepTempFiles(store), { removed: 6, bytes: 1371 });
  for (const f of stale) assert.equal(fs.existsSync(f), false, `${f} removed`);
  for (const f of [...fresh, ...others]) assert.equal(fs.existsSync(f), true, `${f} kept`);
  assert.deepEqual(await store.objects.get(kept.sha256), Buffer.from('a frame'));
  assert.deepEqual(await readJson(store, 'frames', 'a.json'), { a: 1 });
  assert.deepEqual(await sweepTempFiles(store), { removed: 0, bytes: 0 });
  // With a shorter age, the fresh ones go too (a test of the threshold, not a setting to use).
  assert.equal((await sweepTempFiles(store, { olderThanMs: -1000 })).removed, 3);
});

test('the batch index leaves out a commit that never reached its branch', async () => {
  const store = openStore(tmpDir());
  const c1 = await commitChanges(store, { repo: 'frames', changes: [{ path: 'a.json', content: '{}' }], provenance: prov('b9'), summary: 'one' });
  const c2 = await commitChanges(store, { repo: 'frames', changes: [{ path: 'b.json', content: '{}' }], provenance: prov('b9'), summary: 'two' });
  // A writer that died after indexing c2 but before moving the branch: main still names c1.
  await fsp.writeFile(path.join(gitdirOf(store, 'frames'), 'refs', 'heads', 'main'), `${c1.commit}\n`);
  assert.deepEqual((await batchCommits(store, 'b9')).map((c) => c.commit), [c1.commit]);
  assert.notEqual(c1.commit, c2.commit);
});

test('resolveRef on a branch being created by another writer: null before, the commit after, never "no branch"', async () => {
  for (let round = 0; round < 30; round++) {
    const store = openStore(tmpDir());
    await ensureRepo(store, 'rules');
    const first = commitChanges(store, { repo: 'rules', changes: [{ path: 'r.json', content: `{"round":${round}}` }], provenance: prov('r'), summary: 'first', durable: true });
    const seen: Array<string | null> = [];
    let done = false;
    void first.finally(() => (done = true));
    while (!done) seen.push(await resolveRef(store, 'rules', 'main'));
    const { commit } = await first;
    seen.push(await resolveRef(store, 'rules', 'main'));
    assert.ok(seen.every((s) => s === null || s === commit), `round ${round}: ${JSON.stringify(seen)}`);
    assert.equal(seen.at(-1), commit);
  }
});
