import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { stageInThread, writePackInThread, WriterThreadError } from '../repos/writerThread.js';
import { commitChanges, gitdirOf, openStore } from '../repos/index.js';
import { tmpDir } from './helpers/tmp.js';

const sha1 = (b: Buffer) => createHash('sha1').update(b).digest('hex');
const raw = (type: string, content: string) => Buffer.concat([Buffer.from(`${type} ${Buffer.byteLength(content)}\0`), Buffer.from(content)]);

test('writePackInThread writes the objects as one pack and index that git reads and verifies, and returns the bytes it wrote', async () => {
  const store = openStore(tmpDir());
  await commitChanges(store, { repo: 'frames', changes: [{ path: 'seed.txt', content: 'x' }], provenance: { batchId: 'b', stage: 't', stageVersion: '1', inputs: [] }, summary: 's' });
  const gitdir = gitdirOf(store, 'frames');
  const dir = path.join(gitdir, 'objects', 'pack');
  // A big object (size header of several bytes), small ones around the header's first byte (15,
  // 16), an empty one, and one given twice (stored once).
  const objs = [raw('blob', 'hello\n'), raw('blob', 'x'.repeat(100_000)), raw('blob', 'hello\n'), raw('blob', ''), raw('blob', 'y'.repeat(16)), raw('blob', 'z'.repeat(15))];
  const written = await writePackInThread({ dir, objects: objs.map((o) => ({ oid: sha1(o), raw: o })) });
  assert.match(path.basename(written.pack.file), /^pack-[0-9a-f]{40}\.pack$/);
  assert.equal(written.idx.file, written.pack.file.replace(/\.pack$/, '.idx'));
  assert.deepEqual(fs.readFileSync(written.pack.file), written.pack.data, 'the returned bytes are what the file holds (what the journal records)');
  // The index waits in a temp file, for the caller to name it once the commit is journaled.
  assert.equal(fs.existsSync(written.idx.file), false);
  assert.match(path.basename(written.idxTemp), /^tmp_pack_/);
  assert.deepEqual(fs.readFileSync(written.idxTemp), written.idx.data);
  fs.renameSync(written.idxTemp, written.idx.file);
  // git itself reads and checks them (every object's CRC and SHA-1, the index against the pack).
  const verify = execFileSync('git', ['--git-dir', gitdir, 'verify-pack', '-v', written.idx.file], { encoding: 'utf8' });
  assert.match(verify, new RegExp(`^${sha1(objs[1]!)} blob\\s+100000 `, 'm'));
  assert.match(verify, /non delta: 5 objects/);
  assert.equal(execFileSync('git', ['--git-dir', gitdir, 'cat-file', '-p', sha1(objs[0]!)], { encoding: 'utf8' }), 'hello\n');
  assert.equal(execFileSync('git', ['--git-dir', gitdir, 'cat-file', '-s', sha1(objs[1]!)], { encoding: 'utf8' }).trim(), '100000');
  // The same objects again (an identical commit): the pack is there already, and left as it is.
  const again = await writePackInThread({ dir, objects: objs.map((o) => ({ oid: sha1(o), raw: o })) });
  assert.equal(written.created, true);
  assert.equal(again.created, false);
  assert.equal(again.pack.file, written.pack.file);
  fs.rmSync(again.idxTemp);
  // No temp file is left.
  assert.deepEqual(fs.readdirSync(dir).filter((f) => f.startsWith('tmp_')), []);
});

test('writePackInThread reports a failed write with its errno code, and the thread serves the next request', async () => {
  const dir = tmpDir();
  fs.writeFileSync(path.join(dir, 'file'), 'not a folder');
  const r = raw('blob', 'a');
  await assert.rejects(writePackInThread({ dir: path.join(dir, 'file', 'pack'), objects: [{ oid: sha1(r), raw: r }] }), (err: unknown) => {
    assert.ok(err instanceof WriterThreadError);
    assert.match(String(err.code), /^(ENOTDIR|EEXIST)$/);
    return true;
  });
  const ok = path.join(dir, 'objects', 'pack');
  const written = await writePackInThread({ dir: ok, objects: [{ oid: sha1(r), raw: r }] });
  assert.deepEqual(fs.readdirSync(ok).sort(), [path.basename(written.pack.file), path.basename(written.idxTemp)].sort());
});

test('stageInThread hashes the bytes and writes a read-only temp file, closed; bytes already stored are not written again', async () => {
  const root = path.join(tmpDir(), 'objects');
  const bytes = Buffer.from('frame bytes '.repeat(5000));
  const sha = createHash('sha256').update(bytes).digest('hex');

  const first = await stageInThread({ root, bytes });
  assert.equal(first.sha256, sha);
  assert.equal(first.existing, null);
  assert.ok(first.tmp?.startsWith(path.join(root, 'tmp') + path.sep));
  assert.deepEqual(fs.readFileSync(first.tmp!), bytes);
  assert.equal(fs.statSync(first.tmp!).mode & 0o777, 0o444);

  const second = await stageInThread({ root, bytes });
  assert.notEqual(second.tmp, first.tmp, 'each stage writes a temp file of its own');
  assert.deepEqual(fs.readFileSync(second.tmp!), bytes);

  // Once named, the same bytes are found and nothing is written.
  const target = path.join(root, sha.slice(0, 2), sha.slice(2));
  fs.mkdirSync(path.dirname(target), { recursive: true });
  fs.renameSync(first.tmp!, target);
  const again = await stageInThread({ root, bytes });
  assert.deepEqual(again, { sha256: sha, existing: bytes.length, tmp: null });
  // A stored file of another size (damaged) is staged again, so publishing repairs it.
  fs.chmodSync(target, 0o644);
  fs.truncateSync(target, 10);
  const repair = await stageInThread({ root, bytes });
  assert.equal(repair.existing, 10);
  assert.ok(repair.tmp);
});

test('stageInThread names the hash in a failure after hashing', async () => {
  const base = tmpDir();
  fs.writeFileSync(path.join(base, 'objects'), 'a file where the store should be');
  const bytes = Buffer.from('abc');
  await assert.rejects(stageInThread({ root: path.join(base, 'objects'), bytes }), (err: unknown) => {
    assert.ok(err instanceof WriterThreadError);
    assert.equal(err.sha256, createHash('sha256').update(bytes).digest('hex'));
    assert.match(String(err.code), /^(ENOTDIR|EEXIST)$/);
    return true;
  });
});
