import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import git from 'isomorphic-git';
import { isVigilError } from '../lib/errors.js';
import { parseTree, readBlobBytes, readCommitTree, readObject, readTreeEntries } from '../repos/api/objects.js';
import { commitChanges, gitArgs, gitdirOf, listFiles, openStore, storedPath } from '../repos/index.js';
import { tmpDir } from './helpers/tmp.js';

const prov = { batchId: 'b1', stage: 'test', stageVersion: '1', inputs: [] };

/** A repo with nested folders and binary content; returns its head. */
async function sample() {
  const store = openStore(tmpDir());
  const c = await commitChanges(store, {
    repo: 'detections',
    changes: [
      { path: 'u1-d1/20261128T000000000Z.json', content: '{"a":1}\n' },
      { path: 'u1-d1/20261128T000001000Z.json', content: '{"a":2}\n' },
      { path: 'u2-d9/deep/er/x.bin', content: Buffer.from([0, 255, 1, 254, 0, 0, 10]) },
    ],
    provenance: prov, summary: 'sample',
  });
  return { store, args: gitArgs(store, 'detections'), head: c.commit! };
}

/** Every object reachable from `head`, read both ways. */
async function compareAll(args: ReturnType<typeof gitArgs>, head: string): Promise<number> {
  let n = 0;
  const tree = await readCommitTree(args, head);
  assert.equal(tree, (await git.readCommit({ ...args, oid: head })).commit.tree);
  const walk = async (oid: string): Promise<void> => {
    const ours = await readTreeEntries(args, oid);
    assert.deepEqual(ours, (await git.readTree({ ...args, oid })).tree.map((e) => ({ mode: e.mode, path: e.path, oid: e.oid, type: e.type })));
    n++;
    for (const e of ours) {
      if (e.type === 'tree') await walk(e.oid);
      else {
        assert.deepEqual(await readBlobBytes(args, e.oid), Buffer.from((await git.readBlob({ ...args, oid: e.oid })).blob));
        n++;
      }
    }
  };
  await walk(tree);
  return n;
}

test('git objects: loose blobs, trees and commits read as isomorphic-git reads them', async () => {
  const { args, head } = await sample();
  // Trees: the root, u1-d1 with its day and hour folders (hour-folders layout), u2-d9, deep, er.
  assert.equal(await compareAll(args, head), 7 + 3, 'every tree (7) and blob (3) compared');
});

test('git objects: packed objects (after git gc) are read too', async () => {
  const { store, args, head } = await sample();
  execFileSync('git', ['--git-dir', gitdirOf(store, 'detections'), 'gc', '--quiet', '--prune=now']);
  const loose = (await fsp.readdir(path.join(args.gitdir, 'objects'))).filter((d) => /^[0-9a-f]{2}$/.test(d));
  assert.deepEqual(loose, [], 'nothing loose is left');
  assert.equal(await compareAll(args, head), 7 + 3);
});

test('git objects: a damaged, mistyped, missing or misnamed object is refused', async () => {
  const { args, head } = await sample();
  const tree = await readCommitTree(args, head);
  const blob = (await readTreeEntries(args, tree)).find((e) => e.type === 'tree')!;
  await assert.rejects(readBlobBytes(args, tree), (e) => isVigilError(e, 'E_CORRUPT'), 'a tree is not a blob');
  await assert.rejects(readObject(args, '0'.repeat(40)), (e) => isVigilError(e, 'E_NOT_FOUND'));
  await assert.rejects(readObject(args, '../../../etc/passwd'), (e) => isVigilError(e, 'E_BAD_ID'));
  const file = path.join(args.gitdir, 'objects', blob.oid.slice(0, 2), blob.oid.slice(2));
  await fsp.chmod(file, 0o644);
  await fsp.writeFile(file, 'not zlib');
  await assert.rejects(readObject(args, blob.oid), (e) => isVigilError(e, 'E_CORRUPT'));
  // Valid zlib, wrong content for its name.
  const other = path.join(args.gitdir, 'objects', head.slice(0, 2), head.slice(2));
  await fsp.copyFile(other, file);
  await assert.rejects(readObject(args, blob.oid), (e) => isVigilError(e, 'E_CORRUPT') && /does not hash/.test((e as Error).message));
});

test('parseTree: a truncated entry is refused, not misread', () => {
  const good = Buffer.concat([Buffer.from('100644 a.json\0'), Buffer.alloc(20, 0xab)]);
  assert.deepEqual(parseTree(good), [{ mode: '100644', path: 'a.json', oid: 'ab'.repeat(20), type: 'blob' }]);
  assert.throws(() => parseTree(good.subarray(0, good.length - 1)), (e) => isVigilError(e, 'E_CORRUPT'));
  assert.throws(() => parseTree(Buffer.from('100644 no-nul')), (e) => isVigilError(e, 'E_CORRUPT'));
});

test('trees a camera only adds to are written by appending to the last body: same trees as a full rewrite, git fsck --strict clean', async () => {
  const store = openStore(tmpDir());
  const prov = { batchId: 'append', stage: 'test', stageVersion: '1', inputs: [] };
  const doc = (i: number) => `{"n":${i}}\n`;
  const expected = new Map<string, string>();
  const commit = async (changes: Array<{ path: string; content: string } | { path: string; delete: true }>) => {
    for (const c of changes) {
      if ('delete' in c) expected.delete(c.path);
      else expected.set(c.path, c.content);
    }
    return commitChanges(store, { repo: 'frames', changes, provenance: prov, summary: 'step' });
  };
  const ts = (s: number) => `cam-a/2026112${Math.floor(s / 100)}T0000${String(s % 100).padStart(2, '0')}000Z.json`;
  // In order (the appending path), out of order (an older frame: full rewrite), a changed and a
  // deleted document, a name that sorts between, a new sub-folder, and two cameras at once.
  for (let s = 0; s < 30; s += 3) await commit([{ path: ts(s), content: doc(s) }, { path: ts(s + 1), content: doc(s + 1) }]);
  await commit([{ path: ts(2), content: doc(2) }]);
  await commit([{ path: ts(40), content: doc(40) }, { path: ts(4), content: 'changed\n' }]);
  await commit([{ path: ts(1), delete: true }, { path: ts(41), content: doc(41) }]);
  await commit([{ path: 'cam-a/sub/x.json', content: doc(1) }, { path: ts(42), content: doc(42) }]);
  await commit([{ path: ts(43), content: doc(43) }, { path: 'cam-b/20261127T000000000Z.json', content: doc(0) }]);
  await commit([{ path: ts(44), content: doc(44) }, { path: 'cam-a/zz.json', content: doc(9) }]);

  // Every tree of every commit is what git itself accepts (sorted, no duplicates), and the last
  // tree holds exactly the documents written.
  execFileSync('git', ['--git-dir', gitdirOf(store, 'frames'), 'fsck', '--strict', '--no-dangling'], { stdio: 'pipe' });
  // git sees the stored paths: timestamped documents in their day and hour folders.
  const listed = execFileSync('git', ['--git-dir', gitdirOf(store, 'frames'), 'ls-tree', '-r', '--name-only', 'main'], { encoding: 'utf8' }).trim().split('\n');
  assert.deepEqual(listed, [...expected.keys()].map((p) => storedPath('hour-folders', p)).sort());
  assert.ok(listed.includes('cam-a/20261120/00/20261120T000044000Z.json') && listed.includes('cam-a/zz.json'));
  for (const [p, content] of expected) {
    assert.equal(execFileSync('git', ['--git-dir', gitdirOf(store, 'frames'), 'show', `main:${storedPath('hour-folders', p)}`], { encoding: 'utf8' }), content);
  }
  assert.deepEqual((await listFiles(store, 'frames')).map((f) => f.path), [...expected.keys()].sort(), 'the repo API gives back the paths written');
  // The same tree ids as isomorphic-git computes for the same entries.
  const args = gitArgs(store, 'frames');
  const head = await git.resolveRef({ ...args, ref: 'main' });
  const rootOid = await readCommitTree(args, head);
  // The hour folder the in-order frames were appended to.
  let folder = rootOid;
  for (const name of ['cam-a', '20261120', '00']) folder = (await readTreeEntries(args, folder)).find((e) => e.path === name)!.oid;
  const entries = await readTreeEntries(args, folder);
  assert.ok(entries.length > 20);
  const again = await git.writeTree({ ...args, tree: entries.map((e) => ({ mode: e.mode, path: e.path, oid: e.oid, type: e.type })) });
  assert.equal(again, folder);
});
