import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { isVigilError } from '../lib/errors.js';
import { commitChanges, gitdirOf, openStore, repoLayout, storedPath, walkBlobs, type RepoStore } from '../repos/index.js';
import { loadRuleSet } from '../rules/index.js';
import { replayRules } from '../stages/replay.js';
import type { DetectionDoc } from '../stages/schema.js';
import { threatsStage } from '../stages/threats.js';
import { tmpDir } from './helpers/tmp.js';

const sha = (c: string) => c.repeat(64);

function detection(user: string, device: string, i: number, objects: Array<[string, number]>): { path: string; doc: DetectionDoc } {
  const at = new Date(Date.UTC(2026, 5, 1, 12, 0, i));
  const timestamp = at.toISOString().replace(/[-:.]/g, '');
  const p = `${user}-${device}/${timestamp}.json`;
  return {
    path: p,
    doc: {
      kind: 'detection', frameId: sha((i % 10).toString()), tag: `${user}-${device}-${timestamp}-UTC`, user, device, site: 'hq',
      capturedAt: at.toISOString(), timestamp, tz: 'UTC', datum: sha('d'),
      source: { repo: 'standardized', commit: 'c'.repeat(40), path: p, sha256: sha('e') },
      model: { name: 'yolov8n', sha256: sha('f') }, image: { width: 640, height: 480 },
      objects: objects.map(([cls, score]) => ({ class: cls, classId: 0, score, box: { x: 10, y: 10, width: 200, height: 200 } })),
    },
  };
}

function rulesDir(root: string, name: string, global: string, user: string): string {
  const dir = path.join(root, name);
  mkdirSync(path.join(dir, 'users'), { recursive: true });
  writeFileSync(path.join(dir, 'global.yaml'), global);
  writeFileSync(path.join(dir, 'users', 'alice.yaml'), user);
  return dir;
}

async function seeded(): Promise<{ store: RepoStore; root: string; paths: string[] }> {
  const root = tmpDir();
  const store = openStore(root);
  const docs = [
    detection('alice', 'cam1', 1, [['cat', 0.9]]), // unsafe under both
    detection('alice', 'cam1', 2, [['dog', 0.85]]), // unsafe under A only (B raises the bar to 0.9)
    detection('alice', 'cam1', 3, [['person', 0.97]]), // safe under A, unsafe under B (B adds people)
    detection('alice', 'cam2', 4, [['car', 0.99]]), // safe under both
    detection('alice', 'cam10', 5, [['cat', 0.95], ['person', 0.99]]), // rule 100 under A; 100 and 200 under B
  ];
  const det = await commitChanges(store, {
    repo: 'detections', changes: docs.map((d) => ({ path: d.path, content: JSON.stringify(d.doc) })),
    provenance: { batchId: 'b1', stage: 'detect', stageVersion: '1', inputs: [] }, summary: 'detections',
  });
  const a = await loadRuleSet(rulesDir(root, 'a', 'rules:\n  - { id: 100, name: animals, unsafe: [dog, cat], minScore: 0.8 }\n', 'user: alice\nrules: [100]\n'));
  await threatsStage(store, { batchId: 'b1', detectionsCommit: det.commit!, paths: docs.map((d) => d.path), rulesCommit: null }, a);
  return { store, root, paths: docs.map((d) => d.path) };
}

test('replay under other rules lists exactly the frames whose alerts change, and writes nothing', async () => {
  const { store, root } = await seeded();
  const heads = async () => Promise.all(['detections', 'threats'].map((r) => fsp.readFile(path.join(gitdirOf(store, r), 'refs', 'heads', 'main'), 'utf8')));
  const before = await heads();
  const b = await loadRuleSet(rulesDir(root, 'b',
    'rules:\n  - { id: 100, name: animals, unsafe: [dog, cat], minScore: 0.9 }\n  - { id: 200, name: people, unsafe: [person], minScore: 0.95 }\n',
    'user: alice\nrules: [100, 200]\n'));
  const r = await replayRules(store, b);
  assert.equal(r.frames, 5);
  assert.equal(r.unsafeBefore, 3);
  assert.equal(r.unsafeAfter, 3);
  assert.deepEqual([r.newlyUnsafe, r.noLongerUnsafe, r.otherRules], [1, 1, 1]);
  assert.deepEqual(r.changes.map((c) => [c.path.split('/')[0], c.before, c.after]), [
    ['alice-cam1', [100], []],
    ['alice-cam1', [], [200]],
    ['alice-cam10', [100], [100, 200]],
  ]);
  assert.deepEqual(await heads(), before, 'a replay commits nothing');
  // the same rules as on record change nothing
  const same = await replayRules(store, await loadRuleSet(path.join(root, 'a')));
  assert.deepEqual([same.frames, same.changes.length, same.unsafeAfter], [5, 0, 3]);
  // one device only; the limit caps the list, not the counts
  const one = await replayRules(store, b, { prefix: 'alice-cam10/' });
  assert.deepEqual([one.frames, one.otherRules], [1, 1]);
  const capped = await replayRules(store, b, { limit: 1 });
  assert.equal(capped.changes.length, 1);
  assert.equal(capped.newlyUnsafe + capped.noLongerUnsafe + capped.otherRules, 3);
});

test('walkBlobs streams every file in path order and refuses a damaged object', async () => {
  const { store, paths } = await seeded();
  const walked = [];
  for await (const b of walkBlobs(store, 'detections')) walked.push(b.path);
  assert.deepEqual(walked, [...paths].sort());
  // Rewrite one loose object with other (validly compressed) content under the same id.
  const gitdir = gitdirOf(store, 'detections');
  // git knows the document by its stored path (its day and hour folders, see repos/layout.ts).
  const oid = spawnSync('git', ['--git-dir', gitdir, 'rev-parse', `main:${storedPath(repoLayout(store, 'detections'), paths[0]!)}`], { encoding: 'utf8' }).stdout.trim();
  assert.match(oid, /^[0-9a-f]{40}$/);
  const file = path.join(gitdir, 'objects', oid.slice(0, 2), oid.slice(2));
  const zlib = await import('node:zlib');
  const body = Buffer.from('{"tampered":true}');
  await fsp.chmod(file, 0o644);
  await fsp.writeFile(file, zlib.deflateSync(Buffer.concat([Buffer.from(`blob ${body.length}\0`), body])));
  await assert.rejects(async () => {
    for await (const _ of walkBlobs(store, 'detections')) void _;
  }, (e) => isVigilError(e, 'E_HASH_MISMATCH'));
});

test('vigil replay on the command line: counts as JSON, a bad device id refused', async () => {
  const { root } = await seeded();
  const b = rulesDir(root, 'b', 'rules:\n  - { id: 100, name: animals, unsafe: [dog, cat], minScore: 0.9 }\n', 'user: alice\nrules: [100]\n');
  const run = (args: string[]) => spawnSync(process.execPath, ['bin/vigil.js', 'replay', ...args], { encoding: 'utf8', env: { ...process.env, VIGIL_DATA: root } });
  const ok = run(['--rules', b, '--json']);
  assert.equal(ok.status, 0, ok.stderr);
  const r = JSON.parse(ok.stdout) as { frames: number; noLongerUnsafe: number; newlyUnsafe: number };
  assert.deepEqual([r.frames, r.newlyUnsafe, r.noLongerUnsafe], [5, 0, 1], 'the dog at 0.85 no longer alerts');
  const bad = run(['--rules', b, '--device', '../etc']);
  assert.equal(bad.status, 2, 'a usage error');
  assert.match(bad.stderr, /--device <user\/device>' argument '\.\.\/etc' is invalid\. expected <user>\/<device>/);
});
