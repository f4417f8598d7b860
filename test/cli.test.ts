/**
 * The `vigil` command line, run for real: every case executes bin/vigil.js in a child process with
 * VIGIL_DATA pointing at a temporary folder, and checks its outputs and exit code.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, promises as fsp, utimesSync, writeFileSync } from 'node:fs';
import type net from 'node:net';
import path from 'node:path';
import { after, test } from 'node:test';
import { inPipelineOrder } from '../cli/commands/batch.js';
import { localServerUrl } from '../cli/commands/ingest.js';
import { DeviceRegistry } from '../ingest/devices.js';
import { FrameIngestor } from '../ingest/frameIngestor.js';
import type { Provenance } from '../lib/schemas.js';
import { commitChanges, openStore } from '../repos/index.js';
import { createApiServer } from '../server/index.js';
import { followIngest, freePort, type FollowLine } from './helpers/faults.js';
import { FIXTURES, tmpDir } from './helpers/tmp.js';

const BIN = path.resolve(import.meta.dirname, '../bin/vigil.js');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** The environment of a child: ours without any Vigil or Temporal settings, plus `env`. */
function childEnv(data: string, env: Record<string, string> = {}): NodeJS.ProcessEnv {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VIGIL_') && !k.startsWith('TEMPORAL_')));
  return { ...clean, VIGIL_DATA: data, ...env };
}

/** Runs `vigil <args>` to completion. */
function vigil(data: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: childEnv(data, env), timeout: 180_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** Asserts a failed run that printed exactly one `vigil: …` line on stderr, and returns that line. */
function oneLineError(r: Run, expectedCode?: number): string {
  assert.notEqual(r.code, 0, `expected a failure, got exit 0 with stdout ${r.stdout}`);
  if (expectedCode !== undefined) assert.equal(r.code, expectedCode, `exit code (stderr: ${r.stderr})`);
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  assert.equal(lines.length, 1, `one stderr line expected, got: ${JSON.stringify(r.stderr)}`);
  assert.match(lines[0]!, /^vigil: \S/);
  return lines[0]!;
}

function ok(r: Run): Run {
  assert.equal(r.code, 0, `exit ${r.code}; stderr: ${r.stderr}`);
  return r;
}

/** Registers device alice/cam1 with `vigil device add`; the environment that carries its key. */
async function addAliceCam1(data: string): Promise<Record<string, string>> {
  const added = ok(await vigil(data, ['device', 'add', 'alice', 'cam1', '--site', 'home', '--tz', 'Europe/Paris']));
  return { VIGIL_DEVICE_KEY: /^vk_\S+$/m.exec(added.stdout)![0] };
}

/** An empty camera folder; place() copies a fixture into it with a given modification time (an hour ago + offset). */
async function cameraFolder() {
  const dir = path.join(tmpDir('vigil-cli-frames-'), 'cam');
  await fsp.mkdir(dir);
  const t0 = Date.now() - 3_600_000;
  const place = async (name: string, fixture: string, at: number) => {
    const file = path.join(dir, name);
    await fsp.copyFile(path.join(FIXTURES, fixture), file);
    await fsp.chmod(file, 0o644);
    await fsp.utimes(file, new Date(at), new Date(at));
    return file;
  };
  return { dir, t0, place };
}

const prov = (batchId: string, stage: string, inputs: Provenance['inputs'] = []): Provenance => ({ batchId, stage, stageVersion: '1', inputs });

test('--help of the root and of every command exits 0 and names its options', async () => {
  const data = tmpDir('vigil-cli-');
  const cases: [string[], string[]][] = [
    [[], ['device', 'repo', 'batch', 'detect', 'ingest', 'start', 'worker', '--version']],
    [['device'], ['add', 'list', 'revoke']],
    [['device', 'add'], ['<user>', '<device>', '--site', '--tz', '--json']],
    [['device', 'list'], ['--json']],
    [['device', 'revoke'], ['<user>', '<device>']],
    [['repo'], ['list', 'log', 'inspect', 'diff', 'fsck', 'gc']],
    [['repo', 'list'], ['--json']],
    [['repo', 'log'], ['<repo>', '--ref', '-n, --max-count', '--json']],
    [['repo', 'inspect'], ['<repo@ref>', '--json']],
    [['repo', 'diff'], ['<a>', '<b>', '--json']],
    [['repo', 'fsck'], ['--json']],
    [['repo', 'gc'], ['--json']],
    [['batch'], ['inspect']],
    [['batch', 'inspect'], ['<batchId>', '--json']],
    [['detect'], ['<image...>', '--model', '--threads', '--json']],
    [['ingest'], ['<paths...>', '--device-key', 'VIGIL_DEVICE_KEY', '--url', '--time', '--tz', '--follow', '--json']],
    [['start'], []],
    [['worker'], []],
    [['reprocess'], ['--days', '--json']],
    [['replay'], ['--rules', '--device', '--ref', '--limit', '--json']],
  ];
  await Promise.all(
    cases.map(async ([cmd, mentions]) => {
      const r = await vigil(data, [...cmd, '--help']);
      assert.equal(r.code, 0, `vigil ${cmd.join(' ')} --help: ${r.stderr}`);
      assert.match(r.stdout, new RegExp(`^Usage: vigil${cmd.length ? ' ' + cmd.join(' ') : ''} `));
      for (const m of mentions) assert.ok(r.stdout.includes(m), `vigil ${cmd.join(' ')} --help should mention ${m}:\n${r.stdout}`);
    }),
  );
  const v = ok(await vigil(data, ['--version']));
  assert.match(v.stdout.trim(), /^\d+\.\d+\.\d+/);
});

test('usage errors: one line on stderr, exit 2', async () => {
  const data = tmpDir('vigil-cli-');
  const [unknown, typo, unknownOpt, missingArg, badInt] = await Promise.all([
    vigil(data, ['frobnicate']),
    vigil(data, ['repo', 'lsit']),
    vigil(data, ['repo', 'list', '--bogus']),
    vigil(data, ['device', 'add', 'alice']),
    vigil(data, ['repo', 'log', 'frames', '-n', 'many']),
  ]);
  assert.match(oneLineError(unknown, 2), /unknown command 'frobnicate'/);
  assert.match(oneLineError(typo, 2), /unknown command 'lsit'.*list/);
  assert.match(oneLineError(unknownOpt, 2), /unknown option '--bogus'/);
  assert.match(oneLineError(missingArg, 2), /missing required argument 'device'/);
  assert.match(oneLineError(badInt, 2), /max-count/);
});

test('bad argument values are usage errors too (exit 2): replay, report, sql and trace', async () => {
  const data = tmpDir('vigil-cli-');
  const cases: Array<[string[], RegExp]> = [
    [['replay', '--limit', '-1'], /--limit/],
    [['replay', '--device', '../x'], /<user>\/<device>/],
    [['report', 'daily', '--date', '2026-02-30'], /date/],
    [['report', 'daily', '--date', '2026-01-01', '--tz', 'Mars/Olympus'], /time zone/],
    [['report', 'daily', '--date', '2026-01-01', '--user', '../bob'], /user/],
    [['report', 'daily', '--date', '2026-01-01', '--format', 'xml'], /table, json or csv/],
    [['report', 'users', '--from', '2026-01-02', '--to', '2026-01-01'], /after/],
    [['report', 'frame', 'abc'], /sha256/],
    [['sql', 'SELECT 1', '--max-rows', 'lots'], /max-rows/],
    [['trace', '../x'], /alert id/],
  ];
  const results = await Promise.all(cases.map(([args]) => vigil(data, args)));
  results.forEach((r, i) => assert.match(oneLineError(r, 2), cases[i]![1], `vigil ${cases[i]![0].join(' ')}`));
});

test('broken alert channel settings stop vigil start and vigil worker at once, naming the variable, never a value', async () => {
  const data = tmpDir('vigil-cli-');
  // SMS credentials without a sender number; an address nothing listens on (nothing gets that far).
  const env = { SMS_ACCOUNT_SID: 'AC0123456789abcdef0123456789abcdef', SMS_AUTH_TOKEN: 'tok-very-secret', TEMPORAL_ADDRESS: '127.0.0.1:9' };
  const t0 = Date.now();
  const [start, worker] = await Promise.all([vigil(data, ['start', '--port', '0'], env), vigil(data, ['worker'], env)]);
  for (const r of [start, worker]) {
    assert.match(oneLineError(r, 1), /SMS_FROM/);
    assert.doesNotMatch(r.stderr + r.stdout, /tok-very-secret/);
  }
  assert.ok(Date.now() - t0 < 30_000, 'before any attempt to reach Temporal');
});

test('device add, list, revoke: key shown once, never a hash; bad ids and duplicates refused', async () => {
  const data = tmpDir('vigil-cli-');
  const added = ok(await vigil(data, ['device', 'add', 'alice', 'cam1', '--site', 'home', '--tz', 'Europe/Paris']));
  const key = /^vk_[0-9a-f]{12}_\S+$/m.exec(added.stdout)?.[0];
  assert.ok(key, `a key line in:\n${added.stdout}`);
  assert.match(added.stdout, /not stored/);
  assert.equal(added.stderr, '');

  const addedJson = JSON.parse(ok(await vigil(data, ['device', 'add', 'bob', 'door', '--json'])).stdout);
  assert.match(addedJson.key, /^vk_[0-9a-f]{12}_/);
  assert.equal(addedJson.device.keyHash, undefined);
  assert.match(addedJson.warning, /not stored/);

  const list = ok(await vigil(data, ['device', 'list', '--json']));
  const devices = JSON.parse(list.stdout) as Record<string, unknown>[];
  assert.deepEqual(devices.map((d) => `${d.user}/${d.device}/${d.site}/${d.tz}`), ['alice/cam1/home/Europe/Paris', 'bob/door/default/UTC']);
  assert.equal(devices[0]!.keyId, key!.slice(3, 15));
  assert.equal(devices[0]!.revokedAt, null);
  for (const d of devices) assert.deepEqual(Object.keys(d).sort(), ['createdAt', 'device', 'keyId', 'revokedAt', 'site', 'tz', 'user']);
  assert.doesNotMatch(list.stdout, /hash|[0-9a-f]{64}/i);
  assert.ok(!list.stdout.includes(key!.slice(16)), 'the secret never shows again');
  const text = ok(await vigil(data, ['device', 'list']));
  assert.match(text.stdout, /USER\s+DEVICE\s+SITE\s+TZ\s+KEY ID\s+CREATED\s+REVOKED/);
  assert.match(text.stdout, /alice\s+cam1\s+home\s+Europe\/Paris/);
  assert.doesNotMatch(text.stdout, /[0-9a-f]{64}/);

  const dup = await vigil(data, ['device', 'add', 'alice', 'cam1']);
  assert.match(oneLineError(dup, 1), /already registered/);
  const bad = await Promise.all([
    vigil(data, ['device', 'add', '../x', 'cam']),
    vigil(data, ['device', 'add', 'a/b', 'cam']),
    vigil(data, ['device', 'add', 'Bob', 'cam']),
    vigil(data, ['device', 'add', 'carol', '../x']),
    vigil(data, ['device', 'add', 'carol', 'cam', '--site', 'a/b']),
  ]);
  for (const r of bad) assert.match(oneLineError(r), /id ".*" is invalid/);
  assert.match(oneLineError(await vigil(data, ['device', 'add', 'carol', 'cam', '--tz', 'Mars/Olympus']), 2), /time zone/);

  const revoked = ok(await vigil(data, ['device', 'revoke', 'alice', 'cam1']));
  assert.match(revoked.stdout, /revoked alice\/cam1/);
  const after = JSON.parse(ok(await vigil(data, ['device', 'list', '--json'])).stdout) as Record<string, unknown>[];
  assert.match(String(after.find((d) => d.user === 'alice')?.revokedAt), /^\d{4}-\d\d-\d\dT/);
  assert.equal(after.find((d) => d.user === 'bob')?.revokedAt, null);
  assert.match(oneLineError(await vigil(data, ['device', 'revoke', 'alice', 'cam1']), 1), /no active device alice\/cam1/);
  // A revoked device can be registered again, with a new key.
  const again = ok(await vigil(data, ['device', 'add', 'alice', 'cam1']));
  assert.notEqual(/^vk_\S+$/m.exec(again.stdout)?.[0], key);
});

test('batch inspect orders a batch\'s commits as its DAG writes them: frames, rules, standardized, invalid, detections, threats, alerts, then other repos', () => {
  const made = ['alerts', 'notes', 'threats', 'detections', 'rules', 'standardized', 'frames', 'invalid', 'detections', 'audit'].map((repo, i) => ({ repo, i }));
  assert.deepEqual(inPipelineOrder(made).map((c) => `${c.repo}${c.i}`), ['frames6', 'rules4', 'standardized5', 'invalid7', 'detections3', 'detections8', 'threats2', 'alerts0', 'audit9', 'notes1']);
});

test('vigil report as CSV on a day without records prints the header row', async () => {
  const data = tmpDir('vigil-cli-');
  assert.equal(ok(await vigil(data, ['report', 'daily', '--date', '2026-01-01', '--format', 'csv'])).stdout, 'user_id,section,key,value\r\n');
  assert.equal(ok(await vigil(data, ['report', 'users', '--from', '2026-01-01', '--to', '2026-01-02', '--format', 'csv'])).stdout, 'userId,frames,invalid,cameraFaults,threats,threatFrames,alerts,delivered\r\n');
  // A user the registry never knew gets the zeros and a note on stderr; a known one only the zeros.
  ok(await vigil(data, ['device', 'add', 'alice', 'cam1']));
  const [nobody, alice] = await Promise.all(['nobdy', 'alice'].map((u) => vigil(data, ['report', 'daily', '--date', '2026-01-01', '--user', u, '--json'])));
  assert.equal(JSON.parse(ok(nobody!).stdout).users[0].frames.processed, 0);
  assert.match(nobody!.stderr, /^vigil: note: no device of user nobdy has ever been registered/);
  assert.equal(JSON.parse(ok(alice!).stdout).users[0].userId, 'alice');
  assert.equal(alice!.stderr, '');
});

test('repo list/log/inspect/diff, batch inspect, fsck, gc on a populated data folder', async () => {
  const data = tmpDir('vigil-cli-');
  const store = openStore(data);
  const obj = await store.objects.put(Buffer.from('frame pixels'));
  const frameDoc = (n: number) => JSON.stringify({ kind: 'frame', n, object: { sha256: obj.sha256, size: 12, mediaType: 'image/jpeg' } });
  // A commit of another repo first: batch inspect must still list the stage repos first.
  const note = await commitChanges(store, { repo: 'notes', changes: [{ path: 'b1.json', content: '{}' }], provenance: prov('batch_1', 'note'), summary: 'note b1' });
  const c1 = await commitChanges(store, {
    repo: 'frames',
    changes: [{ path: 'alice-cam1/20261127T220000000Z.json', content: frameDoc(1) }],
    provenance: prov('batch_1', 'ingest'),
    summary: 'ingest 1 frame',
  });
  const c2 = await commitChanges(store, {
    repo: 'standardized',
    changes: [{ path: 'alice-cam1/20261127T220000000Z.json', content: '{"std":1}' }],
    provenance: { ...prov('batch_1', 'validate', [{ repo: 'frames', commit: c1.commit! }]), extra: { frames: 1 } },
    summary: 'standardize 1 frame',
  });
  const c3 = await commitChanges(store, {
    repo: 'frames',
    changes: [
      { path: 'alice-cam1/20261127T220000000Z.json', content: frameDoc(2) },
      { path: 'alice-cam1/20261127T220100000Z.json', content: frameDoc(3) },
    ],
    provenance: prov('batch_2', 'ingest'),
    summary: 'ingest 2 frames',
  });
  const [f1, f2, f3] = [c1.commit!, c2.commit!, c3.commit!];

  const listed = JSON.parse(ok(await vigil(data, ['repo', 'list', '--json'])).stdout) as { name: string; head: string; commits: number; files: number }[];
  assert.deepEqual(listed, [
    { name: 'frames', branch: 'main', head: f3, commits: 2, files: 2 },
    { name: 'notes', branch: 'main', head: note.commit, commits: 1, files: 1 },
    { name: 'standardized', branch: 'main', head: f2, commits: 1, files: 1 },
  ]);
  const listText = ok(await vigil(data, ['repo', 'list'])).stdout;
  assert.match(listText, new RegExp(`frames\\s+main\\s+${f3.slice(0, 12)}\\s+2\\s+2`));

  const logText = ok(await vigil(data, ['repo', 'log', 'frames'])).stdout;
  assert.match(logText, /COMMIT\s+TIME\s+STAGE\s+BATCH\s+SUMMARY/);
  assert.match(logText, new RegExp(`${f3.slice(0, 12)}\\s+\\S+\\s+ingest\\s+batch_2\\s+ingest 2 frames`));
  assert.match(logText, new RegExp(`${f1.slice(0, 12)}\\s+\\S+\\s+ingest\\s+batch_1\\s+ingest 1 frame`));
  const log1 = JSON.parse(ok(await vigil(data, ['repo', 'log', 'frames', '-n', '1', '--json'])).stdout);
  assert.deepEqual(log1.map((c: { commit: string }) => c.commit), [f3]);
  const logRef = JSON.parse(ok(await vigil(data, ['repo', 'log', 'frames', '--ref', f1.slice(0, 8), '--json'])).stdout);
  assert.deepEqual(logRef.map((c: { commit: string }) => c.commit), [f1]);
  assert.match(oneLineError(await vigil(data, ['repo', 'log', 'nosuch']), 1), /no repo named nosuch/);
  assert.match(oneLineError(await vigil(data, ['repo', 'log', '../etc']), 1), /invalid repo name/);

  const insp = JSON.parse(ok(await vigil(data, ['repo', 'inspect', 'frames@main', '--json'])).stdout);
  assert.equal(insp.commit, f3);
  assert.deepEqual(insp.provenance, { batchId: 'batch_2', stage: 'ingest', stageVersion: '1', inputs: [] });
  assert.deepEqual(insp.files.map((f: { path: string }) => f.path), ['alice-cam1/20261127T220000000Z.json', 'alice-cam1/20261127T220100000Z.json']);
  const inspStd = ok(await vigil(data, ['repo', 'inspect', `standardized@${f2.slice(0, 10)}`])).stdout;
  assert.match(inspStd, new RegExp(`commit\\s+${f2}`));
  assert.match(inspStd, /batch\s+batch_1/);
  assert.match(inspStd, /stage\s+validate \(version 1\)/);
  assert.match(inspStd, new RegExp(`inputs\\s+frames@${f1}`));
  assert.match(inspStd, /extra\.frames\s+1/);
  assert.match(inspStd, /files \(1\)\n\s+PATH\s+BLOB\n\s+alice-cam1\/20261127T220000000Z\.json\s+[0-9a-f]{40}/);
  assert.match(oneLineError(await vigil(data, ['repo', 'inspect', 'frames@nosuchbranch']), 1), /frames has no branch or commit nosuchbranch/);

  const d = JSON.parse(ok(await vigil(data, ['repo', 'diff', `frames@${f1}`, 'frames@main', '--json'])).stdout);
  assert.deepEqual(
    { a: d.a.commit, b: d.b.commit, added: d.added, removed: d.removed, modified: d.modified },
    { a: f1, b: f3, added: ['alice-cam1/20261127T220100000Z.json'], removed: [], modified: ['alice-cam1/20261127T220000000Z.json'] },
  );
  const dText = ok(await vigil(data, ['repo', 'diff', `frames@${f1}`, 'frames'])).stdout;
  assert.match(dText, /1 added, 0 removed, 1 modified/);
  assert.match(dText, /^M {2}alice-cam1\/20261127T220000000Z\.json$/m);
  assert.match(dText, /^A {2}alice-cam1\/20261127T220100000Z\.json$/m);

  const batch = JSON.parse(ok(await vigil(data, ['batch', 'inspect', 'batch_1', '--json'])).stdout);
  assert.equal(batch.batchId, 'batch_1');
  assert.deepEqual(batch.commits.map((c: { repo: string; commit: string }) => `${c.repo}@${c.commit}`), [`frames@${f1}`, `standardized@${f2}`, `notes@${note.commit}`]);
  const std = batch.commits[1];
  assert.deepEqual(std.inputs, [{ repo: 'frames', commit: f1 }]);
  assert.deepEqual(std.chains, [[{ repo: 'frames', commit: f1 }, { repo: 'standardized', commit: f2 }]]);
  assert.equal(std.provenance.stage, 'validate');
  const batchText = ok(await vigil(data, ['batch', 'inspect', 'batch_1'])).stdout;
  assert.match(batchText, /batch batch_1: 3 commits/);
  assert.ok(batchText.includes(`chain  frames@${f1.slice(0, 12)} -> standardized@${f2.slice(0, 12)}`), batchText);
  assert.ok(batchText.indexOf(`frames@${f1}`) < batchText.indexOf(`standardized@${f2}`));
  assert.match(oneLineError(await vigil(data, ['batch', 'inspect', 'nosuch']), 1), /no commits recorded for batch nosuch/);

  const clean = ok(await vigil(data, ['repo', 'fsck']));
  assert.match(clean.stdout, /repos\s+3/);
  assert.match(clean.stdout, /provenance links\s+1/);
  assert.match(clean.stdout, /problems\s+0/);
  assert.equal(clean.stderr, '');

  // A ref temp file a killed writer left two hours ago: gc removes it.
  const leftover = path.join(data, 'repos', 'notes.git', 'ref-4242-1.tmp');
  writeFileSync(leftover, `${'0'.repeat(40)}\n`);
  utimesSync(leftover, new Date(Date.now() - 7_200_000), new Date(Date.now() - 7_200_000));
  const gc = JSON.parse(ok(await vigil(data, ['repo', 'gc', '--json'])).stdout);
  assert.deepEqual(gc.tempFiles, { removed: 1, bytes: 41 });
  assert.equal(existsSync(leftover), false);
  assert.deepEqual(gc.repos.map((r: { repo: string }) => r.repo), ['frames', 'notes', 'standardized']);
  for (const r of gc.repos) assert.ok(r.bytesBefore > 0 && r.bytesAfter > 0, JSON.stringify(r));
  assert.ok(gc.bytesAfter < gc.bytesBefore, `packing shrinks loose objects: ${gc.bytesBefore} -> ${gc.bytesAfter}`);
  assert.match(ok(await vigil(data, ['repo', 'gc'])).stdout, /REPO\s+BYTES BEFORE\s+BYTES AFTER[^\n]*\n(.*\n){3}total\s+\d+\s+\d+/);
  // Still readable and consistent after packing.
  assert.equal(JSON.parse(ok(await vigil(data, ['repo', 'log', 'frames', '--json'])).stdout).length, 2);
  ok(await vigil(data, ['repo', 'fsck']));

  const objFile = path.join(data, 'objects', obj.sha256.slice(0, 2), obj.sha256.slice(2));
  await fsp.chmod(objFile, 0o644);
  await fsp.writeFile(objFile, 'other pixels');
  const broken = await vigil(data, ['repo', 'fsck']);
  assert.equal(broken.code, 1);
  assert.ok(broken.stdout.includes(obj.sha256), `the corrupt object is named:\n${broken.stdout}`);
  assert.match(broken.stdout, /problems\s+1/);
  assert.match(oneLineError(broken, 1), /fsck found 1 problem/);
  const brokenJson = await vigil(data, ['repo', 'fsck', '--json']);
  assert.equal(brokenJson.code, 1);
  const report = JSON.parse(brokenJson.stdout);
  assert.equal(report.ok, false);
  assert.deepEqual(report.problems.map((p: { where: string }) => p.where), [`object ${obj.sha256}`]);
});

test('repo commands on an empty data folder', async () => {
  const data = tmpDir('vigil-cli-');
  assert.deepEqual(JSON.parse(ok(await vigil(data, ['repo', 'list', '--json'])).stdout), []);
  assert.match(ok(await vigil(data, ['repo', 'list'])).stdout, /no repos yet/);
  assert.equal(JSON.parse(ok(await vigil(data, ['repo', 'fsck', '--json'])).stdout).ok, true);
  assert.deepEqual(JSON.parse(ok(await vigil(data, ['repo', 'gc', '--json'])).stdout).repos, []);
});

test('detect: finds the cat; a bad file is a one-line error and exit 1 after the others', async () => {
  const data = tmpDir('vigil-cli-');
  const chelsea = path.join(FIXTURES, 'chelsea.png');
  const truncated = path.join(FIXTURES, 'truncated.jpg');
  const [json, text, bad, mixed] = await Promise.all([
    vigil(data, ['detect', chelsea, '--json', '--threads', '2']),
    vigil(data, ['detect', chelsea, '--threads', '2']),
    vigil(data, ['detect', truncated, '--threads', '1']),
    vigil(data, ['detect', truncated, chelsea, path.join(data, 'missing.png'), '--json', '--threads', '2']),
  ]);
  const results = JSON.parse(ok(json).stdout);
  assert.equal(results.length, 1);
  assert.equal(results[0].file, chelsea);
  assert.equal(results[0].model.name, 'yolov8n');
  const cat = results[0].objects.find((o: { class: string; score: number }) => o.class === 'cat' && o.score >= 0.8);
  assert.ok(cat, JSON.stringify(results[0].objects));
  assert.ok(cat.box.width > 100 && cat.box.height > 100);
  assert.match(ok(text).stdout, /451x300[^\n]*\n\s+CLASS\s+SCORE\s+X\s+Y\s+WIDTH\s+HEIGHT\n\s+cat\s+0\.\d{4}\s/);

  assert.equal(bad.stdout, '');
  assert.ok(oneLineError(bad, 1).includes('truncated.jpg'));

  assert.equal(mixed.code, 1);
  const outcomes = JSON.parse(mixed.stdout) as { file: string; ok: boolean }[];
  assert.deepEqual(outcomes.map((o) => [path.basename(o.file), o.ok]), [['truncated.jpg', false], ['chelsea.png', true], ['missing.png', false]]);
  const lines = mixed.stderr.trim().split('\n');
  assert.equal(lines.length, 2);
  assert.match(lines[1]!, /^vigil: .*missing\.png: no such file or folder$/);

  assert.match(oneLineError(await vigil(data, ['detect', chelsea, '--model', path.join(data, 'nope.json')]), 1), /nope\.json/);
  assert.match(oneLineError(await vigil(data, ['detect', chelsea, '--threads', '0']), 2), /threads/);
});

test('ingest: argument errors are one-line usage errors; an unreachable server is one line, exit 1', async () => {
  const data = tmpDir('vigil-cli-');
  const img = path.join(FIXTURES, 'chelsea.png');
  const key = 'vk_0123456789ab_' + 'A'.repeat(43);
  const [noKey, badKey, badTime, badTz, followFile, timeMany, badUrl] = await Promise.all([
    vigil(data, ['ingest', img]),
    vigil(data, ['ingest', img, '--device-key', 'hunter2']),
    vigil(data, ['ingest', img, '--time', '2026-11-27 10:00'], { VIGIL_DEVICE_KEY: key }),
    vigil(data, ['ingest', img, '--tz', 'Nowhere/Town'], { VIGIL_DEVICE_KEY: key }),
    vigil(data, ['ingest', img, '--follow'], { VIGIL_DEVICE_KEY: key }),
    vigil(data, ['ingest', img, img, '--time', '2026-11-27T10:00:00Z'], { VIGIL_DEVICE_KEY: key }),
    vigil(data, ['ingest', img, '--url', 'ftp://example.com'], { VIGIL_DEVICE_KEY: key }),
  ]);
  assert.match(oneLineError(noKey, 2), /VIGIL_DEVICE_KEY/);
  assert.match(oneLineError(badKey, 2), /does not look like a Vigil key/);
  assert.match(oneLineError(badTime, 2), /--time/);
  assert.match(oneLineError(badTz, 2), /--tz/);
  assert.match(oneLineError(followFile, 2), /--follow needs at least one folder/);
  assert.match(oneLineError(timeMany, 2), /exactly one file/);
  assert.match(oneLineError(badUrl, 2), /http/);

  // A port nobody listens on.
  const { createServer } = await import('node:net');
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const port = (probe.address() as net.AddressInfo).port;
  await new Promise((r) => probe.close(r));
  const down = await vigil(data, ['ingest', img, '--url', `http://127.0.0.1:${port}`], { VIGIL_DEVICE_KEY: key });
  assert.match(oneLineError(down, 1), /cannot reach the Vigil server at http:\/\/127\.0\.0\.1:\d+: ECONNREFUSED/);
  // Without --url: the local server on VIGIL_PORT (what `vigil start` listens on), or VIGIL_URL.
  const [byPort, byUrl] = await Promise.all([
    vigil(data, ['ingest', img], { VIGIL_DEVICE_KEY: key, VIGIL_PORT: String(port) }),
    vigil(data, ['ingest', img], { VIGIL_DEVICE_KEY: key, VIGIL_PORT: '1', VIGIL_URL: `http://127.0.0.1:${port}` }),
  ]);
  assert.match(oneLineError(byPort, 1), new RegExp(`cannot reach the Vigil server at http://127\\.0\\.0\\.1:${port}: ECONNREFUSED`));
  assert.match(oneLineError(byUrl, 1), new RegExp(`cannot reach the Vigil server at http://127\\.0\\.0\\.1:${port}: ECONNREFUSED`));
  assert.equal(localServerUrl({}), 'http://127.0.0.1:8080');
  assert.equal(localServerUrl({ VIGIL_PORT: '../x' }), 'http://127.0.0.1:8080');
  assert.equal(localServerUrl({ VIGIL_PORT: '18080' }), 'http://127.0.0.1:18080');
});

test('ingest against the real API server (in-process): folder, duplicates, rejections, --follow', async () => {
  const data = tmpDir('vigil-cli-');
  const store = openStore(data);
  const maxBytes = 5 * 1024 * 1024;
  const server = createApiServer({ store, registry: new DeviceRegistry(data), ingestor: new FrameIngestor(store, { maxBytes }), maxBytes });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  const url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;

  const env = await addAliceCam1(data);
  const { dir, t0, place } = await cameraFolder();
  await place('b.jpg', 'messi5.jpg', t0 + 1000);
  await place('a.png', 'chelsea.png', t0);
  await fsp.writeFile(path.join(dir, 'notes.txt'), 'not an image');

  const first = ok(await vigil(data, ['ingest', dir, '--url', url, '--json'], env));
  const outcomes = JSON.parse(first.stdout) as { file: string; ok: boolean; status: number; frameId: string; tag: string; path: string; duplicate: boolean }[];
  assert.deepEqual(outcomes.map((o) => [path.basename(o.file), o.status, o.duplicate]), [['a.png', 202, false], ['b.jpg', 202, false]]);
  const stamp = (ms: number) => new Date(ms).toISOString().replace(/[-:.]/g, '');
  assert.equal(outcomes[0]!.tag, `alice-cam1-${stamp(t0)}-Europe.Paris`);
  assert.equal(outcomes[0]!.path, `alice-cam1/${stamp(t0)}.json`);
  assert.match(outcomes[1]!.frameId, /^[0-9a-f]{64}$/);
  const repos = JSON.parse(ok(await vigil(data, ['repo', 'list', '--json'])).stdout) as { name: string; files: number }[];
  assert.equal(repos.find((r) => r.name === 'frames')?.files, 2);

  // Again: the server answers duplicate; text mode prints one line per file.
  const again = ok(await vigil(data, ['ingest', path.join(dir, 'a.png'), '--url', url, '--tz', 'Europe/Paris'], env));
  assert.match(again.stdout, /^202 .*a\.png -> alice-cam1-\d{8}T\d{9}Z-Europe\.Paris frame [0-9a-f]{12} \(duplicate\)$/m);

  // Rejections: not an image (local), fake image (server 415), revoked key (401). Each one line; exit 1.
  const fake = path.join(dir, 'fake.jpg');
  await fsp.writeFile(fake, 'this is not a jpeg at all');
  const mixed = await vigil(data, ['ingest', fake, path.join(dir, 'notes.txt'), path.join(dir, 'b.jpg'), '--url', url], env);
  assert.equal(mixed.code, 1);
  const errs = mixed.stderr.trim().split('\n');
  assert.equal(errs.length, 2, mixed.stderr);
  assert.match(errs[0]!, /^vigil: .*fake\.jpg: 415 E_UNSUPPORTED: /);
  assert.match(errs[1]!, /^vigil: .*notes\.txt: E_UNSUPPORTED: not an image file/);
  assert.match(mixed.stdout, /b\.jpg -> alice-cam1-.* \(duplicate\)/);
  await fsp.rm(fake);

  // --follow: existing images are sent, then new ones once written; Ctrl-C (SIGINT) ends it cleanly.
  const follower = followIngest([dir, '--url', url], childEnv(data, env));
  const { lines, waitFor } = follower;
  await waitFor(() => lines().length >= 2, 'the existing images');
  assert.deepEqual(lines().map((l) => [path.basename(l.file), l.duplicate]), [['a.png', true], ['b.jpg', true]]);
  // A new image written in two parts (still growing at first), and a file that is not an image.
  const bytes = await fsp.readFile(path.join(FIXTURES, 'rocket.jpg'));
  const newFile = path.join(dir, 'c.jpg');
  await fsp.writeFile(newFile, bytes.subarray(0, 1000));
  await new Promise((r) => setTimeout(r, 100));
  await fsp.appendFile(newFile, bytes.subarray(1000));
  await fsp.writeFile(path.join(dir, 'other.txt'), 'ignored');
  await waitFor(() => lines().length >= 3, 'the new image');
  const sent = lines()[2]!;
  assert.equal(path.basename(sent.file), 'c.jpg');
  assert.equal(sent.status, 202);
  assert.equal(sent.duplicate, false);
  await new Promise((r) => setTimeout(r, 800));
  assert.equal(lines().length, 3, 'each image is sent once');
  assert.equal(await follower.stop(), 0, follower.err());
  assert.equal(follower.err(), '');
  const framesFiles = JSON.parse(ok(await vigil(data, ['repo', 'inspect', 'frames@main', '--json'])).stdout).files.length;
  assert.equal(framesFiles, 3);

  // A revoked key is refused by the server.
  ok(await vigil(data, ['device', 'revoke', 'alice', 'cam1']));
  const revoked = await vigil(data, ['ingest', path.join(dir, 'a.png'), '--url', url], env);
  assert.match(oneLineError(revoked, 1), /a\.png: 401 E_UNAUTHORIZED: /);
});

test('ingest rides out a server that is down: a cut connection is retried; --follow waits, queues new images and sends them all', async () => {
  const data = tmpDir('vigil-cli-');
  const store = openStore(data);
  const maxBytes = 5 * 1024 * 1024;
  const ingestor = new FrameIngestor(store, { maxBytes });
  const { createServer } = await import('node:net');
  // A port that nothing listens on until the API server is started on it.
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let api: ReturnType<typeof createApiServer> | null = null;
  const startApi = async () => {
    api = createApiServer({ store, registry: new DeviceRegistry(data), ingestor, maxBytes });
    await new Promise<void>((resolve) => api!.listen(port, '127.0.0.1', resolve));
  };
  const stopApi = async () => {
    const s = api!;
    api = null;
    s.closeAllConnections();
    await new Promise((resolve) => s.close(resolve));
  };
  after(async () => {
    if (api) await stopApi();
  });
  const env = await addAliceCam1(data);
  const { dir, t0, place } = await cameraFolder();
  const a = await place('a.png', 'chelsea.png', t0);

  // One-shot: the first connection is cut (reset) by whatever holds the port, then the API starts
  // there; the frame is sent again and accepted.
  const cutter = createServer((socket) => {
    socket.resetAndDestroy();
    cutter.close();
    void startApi();
  });
  await new Promise<void>((r) => cutter.listen(port, '127.0.0.1', r));
  const once = ok(await vigil(data, ['ingest', a, '--url', url, '--json'], env));
  assert.deepEqual((JSON.parse(once.stdout) as FollowLine[]).map((o) => [path.basename(o.file), o.status, o.duplicate]), [['a.png', 202, false]]);
  assert.equal(once.stderr, '');

  // --follow with the server down: one line says it waits; an image written meanwhile queues up
  // behind the existing ones; once the server is back, every image is sent, in order.
  await stopApi();
  await place('b.jpg', 'messi5.jpg', t0 + 1000);
  const follower = followIngest([dir, '--url', url], childEnv(data, env));
  await follower.waitFor(() => /cannot reach the Vigil server at .*ECONNREFUSED.*waiting for it/.test(follower.err()), 'the waiting line');
  await place('c.jpg', 'rocket.jpg', t0 + 2000);
  await new Promise((r) => setTimeout(r, 1000));
  assert.deepEqual(follower.lines(), [], 'nothing is reported sent while the server is down');
  await startApi();
  await follower.waitFor(() => follower.lines().length >= 3, 'the queued images');
  assert.deepEqual(follower.lines().map((l) => [path.basename(l.file), l.status, l.duplicate]), [['a.png', 202, true], ['b.jpg', 202, false], ['c.jpg', 202, false]]);
  assert.match(follower.err(), /the Vigil server answers again/);
  assert.equal(await follower.stop(), 0, follower.err());
  const frames = JSON.parse(ok(await vigil(data, ['repo', 'inspect', 'frames@main', '--json'])).stdout).files.length;
  assert.equal(frames, 3, 'each frame stored once');

  // Ctrl-C while waiting: the image being tried and those queued are named as not sent, exit 1.
  await stopApi();
  await place('d.jpg', 'home.jpg', t0 + 3000);
  const stopped = followIngest([dir, '--url', url], childEnv(data, env));
  await stopped.waitFor(() => /waiting for it/.test(stopped.err()), 'the waiting line');
  assert.equal(await stopped.stop(), 1);
  assert.match(stopped.err(), /a\.png: E_UNAVAILABLE: cannot reach the Vigil server .*stopped while waiting for it; the next run sends this file again/);
  assert.match(stopped.err(), /3 queued image\(s\) not sent: stopped while waiting for the server/);
});
