import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { Provenance } from '../lib/schemas.js';
import {
  AutoPacker, commitChanges, countLooseObjects, countPacks, fsck, gitdirOf, journalSupported, listFiles, openStore, packRepo, readJson,
  recoverJournal, type RepoStore,
} from '../repos/index.js';
import { rewritePackWithTamperedObject } from './helpers/tamperPack.js';
import { tmpDir } from './helpers/tmp.js';
import { isVigilError } from '../lib/errors.js';

const prov = (batchId: string): Provenance => ({ batchId, stage: 'test', stageVersion: '1', inputs: [] });
const doc = (i: number) => ({ i, pad: `frame ${i} `.repeat(8) });
const pathOf = (i: number) => `u-d${i % 3}/${String(i).padStart(5, '0')}.json`;

async function commitRange(store: RepoStore, repo: string, from: number, to: number, durable: boolean | 'journal' = false): Promise<void> {
  for (let i = from; i < to; i += 4) {
    const changes = [];
    for (let k = i; k < Math.min(to, i + 4); k++) changes.push({ path: pathOf(k), content: JSON.stringify(doc(k)) });
    await commitChanges(store, { repo, changes, provenance: prov(`b${i}`), summary: `docs ${i}`, durable });
  }
}

function gitFsck(store: RepoStore, repo: string): void {
  execFileSync('git', ['--git-dir', gitdirOf(store, repo), 'fsck', '--strict', '--no-dangling'], { stdio: 'pipe' });
}

const packFiles = (store: RepoStore, repo: string) => readdirSync(path.join(gitdirOf(store, repo), 'objects', 'pack')).filter((f) => f.endsWith('.pack'));

test('packRepo: packs loose objects while commits and reads go on, without the writer lock; nothing is lost', async () => {
  const store = openStore(tmpDir());
  await commitRange(store, 'detections', 0, 120);
  const looseBefore = await countLooseObjects(store, 'detections');
  assert.ok(looseBefore > 150, `${looseBefore} loose objects to start with`);
  // A writer commits and a reader (its own store, so its own caches) reads while the repo is packed three times.
  const reader = openStore(store.dataDir);
  let writing = true;
  const writer = commitRange(store, 'detections', 120, 240).finally(() => (writing = false));
  const reads = (async () => {
    let n = 0;
    while (writing) {
      const i = n++ % 120;
      assert.deepEqual(await readJson(reader, 'detections', pathOf(i)), doc(i));
    }
    return n;
  })();
  const packs = [];
  for (let k = 0; k < 3; k++) packs.push(await packRepo(store, 'detections'));
  await writer;
  assert.ok((await reads) > 0);
  assert.ok(packs[0]!.looseAfter < packs[0]!.looseBefore, `first pack: ${packs[0]!.looseBefore} -> ${packs[0]!.looseAfter} loose`);
  const files = await listFiles(store, 'detections');
  assert.equal(files.length, 240, 'every committed document is there');
  for (const i of [0, 57, 119, 120, 181, 239]) assert.deepEqual(await readJson(reader, 'detections', pathOf(i)), doc(i));
  const last = await packRepo(store, 'detections');
  assert.equal(last.looseAfter, 0, 'once writers stop, nothing stays loose');
  gitFsck(store, 'detections');
  assert.deepEqual((await fsck(store)).problems, []);
});

test('packRepo: small packs are rolled up (geometric), so the pack count stays small; a cache holding a rolled-up pack still reads and forgets it', async () => {
  const store = openStore(tmpDir());
  const rounds = 8;
  const counts: number[] = [];
  const cache = store.cache as Record<symbol, unknown>;
  const cachedPacks = () => {
    const key = Object.getOwnPropertySymbols(cache).find((s) => s.description === 'PackfileCache');
    return key ? [...(cache[key] as Map<string, unknown>).keys()] : [];
  };
  let early: string[] = [];
  for (let r = 0; r < rounds; r++) {
    await commitRange(store, 'threats', r * 20, (r + 1) * 20);
    if (r === 2) {
      assert.deepEqual(await readJson(store, 'threats', pathOf(5)), doc(5), 'read from a pack, which the cache keeps');
      early = cachedPacks();
    }
    counts.push((await packRepo(store, 'threats')).packsAfter);
  }
  assert.ok(counts.at(-1)! <= rounds / 2, `packs after each round: ${counts.join(', ')} (one per round without roll-ups)`);
  assert.equal(await countPacks(store, 'threats'), packFiles(store, 'threats').length);
  assert.ok(early.length > 0, 'the early read cached its pack');
  assert.ok(early.some((f) => !existsSync(f)), 'a pack read early was rolled up since');
  for (let i = 0; i < rounds * 20; i += 13) assert.deepEqual(await readJson(store, 'threats', pathOf(i)), doc(i));
  const now = cachedPacks();
  assert.ok(now.length > 0 && now.every((f) => existsSync(f)), `the cache holds only packs that exist: ${now.map((f) => path.basename(f)).join(', ')}`);
  gitFsck(store, 'threats');
});

test('AutoPacker: packs only the repos over the limit, reports what it did; limit 0 never packs loose objects', async () => {
  const store = openStore(tmpDir());
  await commitRange(store, 'detections', 0, 80);
  await commitRange(store, 'alerts', 0, 4);
  const limit = 100;
  assert.ok((await countLooseObjects(store, 'detections')) >= limit);
  assert.ok((await countLooseObjects(store, 'alerts')) < limit);
  const logs: string[] = [];
  const off = new AutoPacker(store, { looseLimit: 0, intervalMs: 1000 });
  assert.deepEqual(await off.runOnce(), []);
  const packer = new AutoPacker(store, { looseLimit: limit, intervalMs: 1000, log: (m) => logs.push(m) });
  const done = await packer.runOnce();
  assert.deepEqual(done.map((r) => r.repo), ['detections']);
  assert.equal(await countLooseObjects(store, 'detections'), 0);
  assert.ok((await countLooseObjects(store, 'alerts')) > 0, 'a repo under the limit is left loose');
  const s = packer.status();
  assert.equal(s.packed, 1);
  assert.equal(s.lastError, null);
  assert.ok(s.lastCheckAt);
  assert.equal(s.last.detections?.looseAfter, 0);
  assert.match(logs.join('\n'), /packed detections: \d+ loose object\(s\) -> 0/);
  assert.deepEqual(await packer.runOnce(), [], 'nothing over the limit any more');
  // Started, it checks on its own.
  await commitRange(store, 'alerts', 4, 120);
  const timed = new AutoPacker(store, { looseLimit: limit, intervalMs: 1000 });
  timed.start();
  const deadline = Date.now() + 20_000;
  while (timed.status().packed === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  await timed.stop();
  assert.equal(timed.status().last.alerts?.looseAfter, 0);
  gitFsck(store, 'alerts');
});

test('AutoPacker: rolls up a repo with packLimit packs or more (the small packs of journaled commits)', { skip: !journalSupported() && 'needs sync -f (Linux coreutils)' }, async () => {
  const store = openStore(tmpDir());
  await commitRange(store, 'frames', 0, 16, 'journal');
  assert.equal(packFiles(store, 'frames').length, 4);
  const packer = new AutoPacker(store, { looseLimit: 1000, packLimit: 5, intervalMs: 1000 });
  assert.deepEqual(await packer.runOnce(), [], '4 packs, under the limit');
  await commitRange(store, 'frames', 16, 20, 'journal');
  assert.deepEqual(await new AutoPacker(store, { looseLimit: 0, packLimit: 0, intervalMs: 1000 }).runOnce(), [], 'both limits 0: off');
  const done = await packer.runOnce();
  assert.deepEqual(done.map((r) => [r.repo, r.packsBefore]), [['frames', 5]]);
  assert.ok(packFiles(store, 'frames').length < 5);
  for (let i = 0; i < 20; i += 3) assert.deepEqual(await readJson(store, 'frames', pathOf(i)), doc(i));
  gitFsck(store, 'frames');
});

test('AutoPacker: a failure that lasts is logged once, not at every check', { skip: !journalSupported() && 'needs sync -f (Linux coreutils)' }, async () => {
  const store = openStore(tmpDir());
  await commitRange(store, 'frames', 0, 8, 'journal');
  // A damaged pack that git refuses to repack around.
  const junk = path.join(gitdirOf(store, 'frames'), 'objects', 'pack', `pack-${'e'.repeat(40)}`);
  writeFileSync(`${junk}.pack`, 'not a pack');
  writeFileSync(`${junk}.idx`, 'not an index');
  const logs: string[] = [];
  const packer = new AutoPacker(store, { looseLimit: 0, packLimit: 3, intervalMs: 1000, log: (m) => logs.push(m) });
  for (let i = 0; i < 3; i++) await packer.runOnce();
  assert.equal(logs.filter((l) => l.startsWith('vigil: packing failed: frames:')).length, 1, logs.join('\n'));
  assert.match(String(packer.status().lastError), /^frames: /);
  rmSync(`${junk}.pack`);
  rmSync(`${junk}.idx`);
  await commitRange(store, 'frames', 8, 12, 'journal');
  assert.equal((await packer.runOnce()).length, 1);
  assert.equal(packer.status().lastError, null);
});

test('packing a journaled repo: journal recovery afterwards restores nothing wrong, and every document reads back', { skip: !journalSupported() && 'needs sync -f (Linux coreutils)' }, async () => {
  const store = openStore(tmpDir());
  await commitRange(store, 'frames', 0, 40, 'journal');
  // A journaled commit writes its objects as one small pack (and no loose object).
  assert.equal(await countLooseObjects(store, 'frames'), 0);
  assert.equal(packFiles(store, 'frames').length, 10, 'one pack per commit');
  gitFsck(store, 'frames');
  const r = await packRepo(store, 'frames');
  assert.equal(r.packsBefore, 10);
  assert.ok(r.packsAfter < 4, `the small packs are rolled up (${r.packsAfter} left)`);
  // As after a crash: the journal still holds those commits, whose small packs are now rolled up.
  await recoverJournal(store, 'frames');
  for (let i = 0; i < 40; i += 7) assert.deepEqual(await readJson(store, 'frames', pathOf(i)), doc(i));
  gitFsck(store, 'frames');
  assert.deepEqual((await fsck(store)).problems, []);
});

test('a packed git object whose bytes changed is refused on read, and fsck names its file (isomorphic-git checks loose objects only)', async () => {
  const store = openStore(tmpDir());
  const cat = 'u1-d1/20261128T230000000Z.json';
  const dog = 'u1-d1/20261128T230001000Z.json';
  const catDoc = '{"class":"cat","score":0.8765}\n';
  const { commit } = await commitChanges(store, {
    repo: 'detections',
    changes: [{ path: cat, content: catDoc }, { path: dog, content: '{"class":"dog","score":0.5}\n' }],
    provenance: prov('b1'),
    summary: 'two docs',
  });
  const gitdir = gitdirOf(store, 'detections');
  execFileSync('git', ['--git-dir', gitdir, 'repack', '-a', '-d', '-q']);
  execFileSync('git', ['--git-dir', gitdir, 'prune-packed']);
  assert.equal(await countLooseObjects(store, 'detections'), 0);
  assert.deepEqual((await fsck(store)).problems, [], 'packed and intact: clean');

  const oid = execFileSync('git', ['hash-object', '--stdin'], { input: catDoc }).toString().trim();
  rewritePackWithTamperedObject(gitdir, oid, (c) => Buffer.from(c.toString('latin1').replace('0.8765', '0.9765'), 'latin1'));
  assert.throws(() => gitFsck(store, 'detections'), 'git itself sees the damage');

  const reader = openStore(store.dataDir);
  await assert.rejects(readJson(reader, 'detections', cat), (err: unknown) => isVigilError(err) && err.code === 'E_CORRUPT' && /does not hash to its id/.test(err.message));
  assert.deepEqual(await readJson(reader, 'detections', dog), { class: 'dog', score: 0.5 }, 'the intact file still reads');
  const { problems } = await fsck(reader);
  assert.deepEqual(problems.map((p) => p.where), [`detections@${commit}:${cat}`], 'named by the path the stages use, not the stored day/hour folders');
  assert.match(problems[0]!.problem, /does not hash to its id/);
});

test('fsck: a provenance link to a damaged commit says damaged, not missing', async () => {
  const store = openStore(tmpDir());
  const a = await commitChanges(store, { repo: 'frames', changes: [{ path: 'u-d/1.json', content: '{}' }], provenance: prov('b1'), summary: 'a' });
  const b = await commitChanges(store, { repo: 'standardized', changes: [{ path: 'u-d/1.json', content: '{}' }], provenance: { ...prov('b1'), inputs: [{ repo: 'frames', commit: a.commit! }] }, summary: 'b' });
  assert.deepEqual((await fsck(store)).problems, []);
  const file = path.join(gitdirOf(store, 'frames'), 'objects', a.commit!.slice(0, 2), a.commit!.slice(2));
  chmodSync(file, 0o644);
  writeFileSync(file, 'damaged');
  const { problems } = await fsck(openStore(store.dataDir));
  const link = problems.find((p) => p.where === `standardized@${b.commit}`);
  assert.match(link?.problem ?? '', new RegExp(`provenance names frames@${a.commit}, which is damaged: git object ${a.commit} .* cannot be inflated`));
});
