import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import git from 'isomorphic-git';
import fs from 'node:fs';
import { isVigilError } from '../lib/errors.js';
import type { Provenance } from '../lib/schemas.js';
import {
  commitChanges, diff, ensureRepo, gitdirOf, inspect, listFiles, lookupBlobs, openStore, readFiles, readJson, repoLayout, repoPath,
  resolveRef, storedPath, walkBlobs, type RepoStore,
} from '../repos/index.js';
import { tmpDir } from './helpers/tmp.js';

const prov = (batchId: string): Provenance => ({ batchId, stage: 'test', stageVersion: '1', inputs: [] });
const lsTree = (store: RepoStore, repo: string) =>
  execFileSync('git', ['--git-dir', gitdirOf(store, repo), 'ls-tree', '-r', '--name-only', 'main'], { encoding: 'utf8' }).trim().split('\n');

test('storedPath / repoPath: timestamped documents go into day (and hour) folders and come back; everything else is left alone', () => {
  // [repo path, day-folders, hour-folders]
  const cases: Array<[string, string, string]> = [
    ['alice-cam1/20261127T224233120Z.json', 'alice-cam1/20261127/20261127T224233120Z.json', 'alice-cam1/20261127/22/20261127T224233120Z.json'],
    ['alice-cam1/20261127T224233120Z-r100.json', 'alice-cam1/20261127/20261127T224233120Z-r100.json', 'alice-cam1/20261127/22/20261127T224233120Z-r100.json'],
    ['a/b/20260101T000000000Z.json', 'a/b/20260101/20260101T000000000Z.json', 'a/b/20260101/00/20260101T000000000Z.json'],
    ['20261127T224233120Z.json', '20261127T224233120Z.json', '20261127T224233120Z.json'],
    ['cooldowns/alice-cam1-r100.json', 'cooldowns/alice-cam1-r100.json', 'cooldowns/alice-cam1-r100.json'],
    ['ruleset.json', 'ruleset.json', 'ruleset.json'],
    ['u-d/2026112.json', 'u-d/2026112.json', 'u-d/2026112.json'],
    ['u-d/20261127T22.json', 'u-d/20261127T22.json', 'u-d/20261127T22.json'],
    // A folder that looks like a day (or an hour) is kept; the document still gets its own folders.
    ['x/20261127/20261127T224233120Z.json', 'x/20261127/20261127/20261127T224233120Z.json', 'x/20261127/20261127/22/20261127T224233120Z.json'],
    ['x/20261127/22/20261127T224233120Z.json', 'x/20261127/22/20261127/20261127T224233120Z.json', 'x/20261127/22/20261127/22/20261127T224233120Z.json'],
  ];
  for (const [p, day, hour] of cases) {
    assert.equal(storedPath('day-folders', p), day, p);
    assert.equal(repoPath('day-folders', day), p, day);
    assert.equal(storedPath('hour-folders', p), hour, p);
    assert.equal(repoPath('hour-folders', hour), p, hour);
    assert.equal(storedPath('flat', p), p);
    assert.equal(repoPath('flat', day), day);
  }
  // Stored paths no document maps to are read as they are.
  for (const p of ['x/20261128/20261127T224233120Z.json', '20261127/20261127T224233120Z.json', 'x/2026112/2026112T224233.json']) {
    assert.equal(repoPath('day-folders', p), p);
  }
  for (const p of ['x/20261127/21/20261127T224233120Z.json', 'x/20261128/22/20261127T224233120Z.json', '20261127/22/20261127T224233120Z.json', 'x/20261127/2/20261127T224233120Z.json', 'x/20261127/20261127T224233120Z.json']) {
    assert.equal(repoPath('hour-folders', p), p);
  }
});

test('a new repo keeps hour folders: git holds them, every repo function speaks the stages\' paths', async () => {
  const store = openStore(tmpDir());
  const at = (h: number, s: number) => `alice-cam1/20261127T${String(h).padStart(2, '0')}00${String(s).padStart(2, '0')}000Z.json`;
  const paths = [at(21, 0), at(21, 1), at(22, 0), at(22, 5), 'alice-cam2/20261128T000000000Z.json', 'cooldowns/alice-cam1-r100.json'];
  const c1 = await commitChanges(store, { repo: 'detections', changes: paths.map((p, i) => ({ path: p, content: `{"i":${i}}` })), provenance: prov('b1'), summary: 'one' });
  assert.equal(repoLayout(store, 'detections'), 'hour-folders');
  assert.equal(readFileSync(path.join(gitdirOf(store, 'detections'), 'vigil-layout'), 'utf8'), 'hour-folders\n');
  assert.deepEqual(c1.changed, [...paths].sort(), 'a commit reports the paths it was given');
  assert.deepEqual(lsTree(store, 'detections'), paths.map((p) => storedPath('hour-folders', p)).sort());
  assert.ok(lsTree(store, 'detections').includes('alice-cam1/20261127/22/20261127T220005000Z.json'));

  assert.deepEqual((await listFiles(store, 'detections')).map((f) => f.path), [...paths].sort());
  assert.deepEqual(await readJson(store, 'detections', at(22, 5)), { i: 3 });
  const many = await readFiles(store, 'detections', [at(21, 1), 'alice-cam1/20261127T230000000Z.json']);
  assert.deepEqual([...many].map(([p, b]) => [p, b?.toString() ?? null]), [[at(21, 1), '{"i":1}'], ['alice-cam1/20261127T230000000Z.json', null]]);
  const blobs = await lookupBlobs(store, 'detections', c1.commit, [at(21, 0)]);
  assert.match(blobs.get(at(21, 0)) ?? '', /^[0-9a-f]{40}$/);
  const walked: string[] = [];
  for await (const b of walkBlobs(store, 'detections')) walked.push(b.path);
  assert.deepEqual(walked, [...paths].sort(), 'walked in the stages\' path order');
  const one: string[] = [];
  for await (const b of walkBlobs(store, 'detections', 'main', { prefix: 'alice-cam1/' })) one.push(b.path);
  assert.deepEqual(one, [at(21, 0), at(21, 1), at(22, 0), at(22, 5)]);
  assert.deepEqual((await inspect(store, 'detections')).files.map((f) => f.path), [...paths].sort());

  const c2 = await commitChanges(store, { repo: 'detections', changes: [{ path: at(22, 5), delete: true }, { path: at(22, 9), content: '{}' }], provenance: prov('b2'), summary: 'two' });
  assert.deepEqual(c2.changed, [at(22, 5), at(22, 9)]);
  assert.deepEqual(await diff(store, { repo: 'detections', ref: c1.commit! }, { repo: 'detections', ref: c2.commit! }), { added: [at(22, 9)], removed: [at(22, 5)], modified: [] });
  execFileSync('git', ['--git-dir', gitdirOf(store, 'detections'), 'fsck', '--strict', '--no-dangling'], { stdio: 'pipe' });
});

test('a commit rewrites the hour, day and camera folders, not the camera\'s whole history', async () => {
  const store = openStore(tmpDir());
  // Three days of a camera, one frame every 20 minutes.
  const changes = [];
  for (let m = 0; m < 3 * 24 * 60; m += 20) {
    const d = new Date(Date.UTC(2026, 10, 25, 0, m));
    changes.push({ path: `u-cam/${d.toISOString().replace(/[-:.]/g, '')}.json`, content: `{"m":${m}}` });
  }
  const c = await commitChanges(store, { repo: 'frames', changes, provenance: prov('days'), summary: 'three days' });
  assert.equal((await listFiles(store, 'frames')).length, changes.length);
  const args = { fs, gitdir: gitdirOf(store, 'frames') };
  const tree = async (oid: string) => (await git.readTree({ ...args, oid })).tree;
  const camOf = async (commit: string) => (await tree((await tree((await git.readCommit({ ...args, oid: commit })).commit.tree))[0]!.oid));
  const days = await camOf(c.commit!);
  assert.deepEqual(days.map((e) => e.path), ['20261125', '20261126', '20261127']);
  const hours = await tree(days[2]!.oid);
  assert.equal(hours.length, 24, 'a day folder holds that day\'s hours');
  assert.deepEqual((await tree(hours[23]!.oid)).map((e) => e.path), ['20261127T230000000Z.json', '20261127T232000000Z.json', '20261127T234000000Z.json'], 'an hour folder holds that hour\'s frames');
  const next = await commitChanges(store, { repo: 'frames', changes: [{ path: 'u-cam/20261127T235959000Z.json', content: '{}' }], provenance: prov('one'), summary: 'one more' });
  const after = await camOf(next.commit!);
  assert.equal(after[0]!.oid, days[0]!.oid, 'an earlier day\'s folder is not rewritten');
  assert.notEqual(after[2]!.oid, days[2]!.oid);
  const hoursAfter = await tree(after[2]!.oid);
  assert.deepEqual(hoursAfter.slice(0, 23), hours.slice(0, 23), 'the day\'s earlier hours are not rewritten');
  assert.equal((await tree(hoursAfter[23]!.oid)).length, 4);
});

test('a repo made with day folders (before hour folders) keeps them', async () => {
  const store = openStore(tmpDir());
  const gitdir = gitdirOf(store, 'detections');
  mkdirSync(gitdir, { recursive: true });
  writeFileSync(path.join(gitdir, 'vigil-layout'), 'day-folders\n');
  const paths = ['u-cam/20261127T220005000Z.json', 'u-cam/20261127T230000000Z.json', 'u-cam/20261128T000000000Z.json'];
  const c = await commitChanges(store, { repo: 'detections', changes: paths.map((p, i) => ({ path: p, content: `{"i":${i}}` })), provenance: prov('b'), summary: 'day' });
  assert.equal(repoLayout(store, 'detections'), 'day-folders');
  assert.deepEqual(lsTree(store, 'detections'), ['u-cam/20261127/20261127T220005000Z.json', 'u-cam/20261127/20261127T230000000Z.json', 'u-cam/20261128/20261128T000000000Z.json']);
  assert.deepEqual((await listFiles(store, 'detections')).map((f) => f.path), paths);
  assert.deepEqual(await readJson(store, 'detections', paths[1]!), { i: 1 });
  assert.match((await lookupBlobs(store, 'detections', c.commit, [paths[2]!])).get(paths[2]!) ?? '', /^[0-9a-f]{40}$/);
  const walked: string[] = [];
  for await (const b of walkBlobs(store, 'detections')) walked.push(b.path);
  assert.deepEqual(walked, paths);
});

test('a repo made before layouts (no layout file) stays flat; a damaged layout file is refused', async () => {
  const dir = tmpDir();
  const store = openStore(dir);
  const gitdir = gitdirOf(store, 'frames');
  mkdirSync(gitdir, { recursive: true });
  await git.init({ fs, gitdir, bare: true, defaultBranch: 'main' });
  await ensureRepo(store, 'frames');
  assert.equal(existsSync(path.join(gitdir, 'vigil-layout')), false, 'an existing repo is not converted');
  assert.equal(repoLayout(store, 'frames'), 'flat');
  await commitChanges(store, { repo: 'frames', changes: [{ path: 'alice-cam1/20261127T224233120Z.json', content: '{}' }], provenance: prov('old'), summary: 'flat' });
  assert.deepEqual(lsTree(store, 'frames'), ['alice-cam1/20261127T224233120Z.json']);
  assert.deepEqual(await readJson(store, 'frames', 'alice-cam1/20261127T224233120Z.json'), {});
  assert.ok(await resolveRef(store, 'frames'));

  const other = openStore(tmpDir());
  await ensureRepo(other, 'alerts');
  writeFileSync(path.join(gitdirOf(other, 'alerts'), 'vigil-layout'), 'zigzag\n');
  // A fresh process would read the file: the cache is per repo folder, this one never read it.
  assert.throws(() => repoLayout(other, 'alerts'), (e) => isVigilError(e, 'E_CORRUPT') && /unknown layout/.test((e as Error).message));
});

test('a new repo made by many concurrent commits is made once: every commit lands and the repo has its HEAD, config and layout', async () => {
  const store = openStore(tmpDir());
  const results = await Promise.all(
    Array.from({ length: 12 }, (_, i) => commitChanges(store, { repo: 'invalid', changes: [{ path: `u-d${i}/20261127T22423${i % 10}120Z.json`, content: `{"i":${i}}` }], provenance: prov(`b${i}`), summary: `c${i}` })),
  );
  assert.ok(results.every((r) => r.created));
  const gitdir = gitdirOf(store, 'invalid');
  assert.equal(readFileSync(path.join(gitdir, 'HEAD'), 'utf8'), 'ref: refs/heads/main\n');
  assert.equal(readFileSync(path.join(gitdir, 'vigil-layout'), 'utf8'), 'hour-folders\n');
  assert.deepEqual(fs.readdirSync(gitdir).filter((f) => f.includes('.tmp-')), [], 'no temporary file left');
  assert.equal((await listFiles(store, 'invalid')).length, 12);
  execFileSync('git', ['--git-dir', gitdir, 'fsck', '--strict'], { stdio: 'pipe' });
});

test('a repo whose creation was cut off before HEAD (no HEAD yet) is finished by the next ensureRepo, keeping what it already holds', async () => {
  // Cut off with the folders and config written: a repo without a HEAD is no repo to readers.
  const store = openStore(tmpDir());
  const gitdir = gitdirOf(store, 'invalid');
  mkdirSync(path.join(gitdir, 'refs', 'heads'), { recursive: true });
  writeFileSync(path.join(gitdir, 'config'), '[core]\n\tbare = true\n');
  await assert.rejects(resolveRef(store, 'invalid'), (e) => isVigilError(e, 'E_NOT_FOUND'));
  await commitChanges(store, { repo: 'invalid', changes: [{ path: 'u-d/20261127T224233120Z.json', content: '{}' }], provenance: prov('b'), summary: 'after' });
  assert.ok(await resolveRef(store, 'invalid'), 'the repo exists once the commit is made');
  assert.equal(repoLayout(store, 'invalid'), 'hour-folders');
  assert.equal(readFileSync(path.join(gitdir, 'config'), 'utf8'), '[core]\n\tbare = true\n', 'an existing config is kept');

  // An older Vigil cut off the same way went on committing flat documents into it: they stay readable.
  const old = openStore(tmpDir());
  const oldGitdir = gitdirOf(old, 'frames');
  mkdirSync(oldGitdir, { recursive: true });
  await git.init({ fs, gitdir: oldGitdir, bare: true, defaultBranch: 'main' });
  const blob = await git.writeBlob({ fs, gitdir: oldGitdir, blob: Buffer.from('{"old":true}') });
  const folder = await git.writeTree({ fs, gitdir: oldGitdir, tree: [{ mode: '100644', path: '20261127T224233120Z.json', oid: blob, type: 'blob' }] });
  const tree = await git.writeTree({ fs, gitdir: oldGitdir, tree: [{ mode: '040000', path: 'alice-cam1', oid: folder, type: 'tree' }] });
  const author = { name: 'old', email: 'old@vigil', timestamp: 0, timezoneOffset: 0 };
  await git.commit({ fs, gitdir: oldGitdir, message: 'flat', tree, parent: [], author, ref: 'refs/heads/main' });
  fs.rmSync(path.join(oldGitdir, 'HEAD'));
  await ensureRepo(old, 'frames');
  assert.equal(repoLayout(old, 'frames'), 'flat');
  assert.deepEqual(await readJson(old, 'frames', 'alice-cam1/20261127T224233120Z.json'), { old: true });
});
