/**
 * Fault suite: the disk fills up while frames are ingested. The data folder is a small tmpfs
 * (needs root: `mount -t tmpfs`; skipped with the reason otherwise) with a filler file taking most
 * of it. The real API (createApiServer, DeviceRegistry, FrameIngestor, Collector) over real HTTP
 * must answer 503 E_STORAGE, never a 2xx for a frame it did not store, leave nothing half written,
 * and recover once space is freed.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statfsSync, statSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Collector, type BatchSpec } from '../ingest/collector.js';
import { DeviceRegistry } from '../ingest/devices.js';
import { FrameIngestor } from '../ingest/frameIngestor.js';
import type { FrameDoc } from '../lib/schemas.js';
import { fsck, listFiles, openStore, readJson, type RepoStore } from '../repos/index.js';
import { createApiServer } from '../server/index.js';
import { danglingFrames, postFrame } from './helpers/faults.js';
import { FIXTURES } from './helpers/tmp.js';

const SIZE_MB = 8;
const CHELSEA = readFileSync(path.join(FIXTURES, 'chelsea.png'));
const T0 = Date.UTC(2026, 10, 22, 12, 0, 0);

let mountDir = '';
let mounted = false;
let skipReason = '';

before(() => {
  mountDir = mkdtempSync(path.join(os.tmpdir(), 'vigil-diskfull-'));
  if (process.platform !== 'linux') {
    skipReason = 'needs Linux tmpfs';
    return;
  }
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${SIZE_MB}m`, 'tmpfs', mountDir], { stdio: 'pipe' });
    mounted = true;
  } catch (err) {
    skipReason = `cannot mount a ${SIZE_MB} MiB tmpfs (needs root or CAP_SYS_ADMIN): ${String((err as { stderr?: Buffer }).stderr ?? err).trim().split('\n')[0]}`;
  }
});
after(() => {
  if (mounted) execFileSync('umount', ['-l', mountDir], { stdio: 'pipe' });
  rmSync(mountDir, { recursive: true, force: true });
});

/** Every `*.lock` file under `dir` with its size. */
function lockFiles(dir: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const f of readdirSync(dir, { recursive: true, encoding: 'utf8' })) if (f.endsWith('.lock')) out[f] = statSync(path.join(dir, f)).size;
  return out;
}

/** A distinct valid PNG each call: chelsea with random bytes after its end (the ingest API stores bytes as sent). */
const uniqueFrame = () => Buffer.concat([CHELSEA, randomBytes(16)]);

test('a full disk: 503 E_STORAGE, never a 2xx for a frame not stored, nothing half written, and ingest recovers once space is freed', async (t) => {
  if (!mounted) {
    t.skip(skipReason);
    return;
  }
  const dataDir = path.join(mountDir, 'data');
  const store: RepoStore = openStore(dataDir);
  const registry = new DeviceRegistry(dataDir);
  const { key } = await registry.add({ user: 'alice', device: 'cam1', site: 'hq', tz: 'Europe/Paris' });
  const batches: BatchSpec[] = [];
  const collector = new Collector(store, { maxFrames: 1000, maxWaitMs: 3_600_000, start: async (b) => void batches.push(b) });
  await collector.load();
  const ingestor = new FrameIngestor(store, { maxBytes: 20 * 1024 * 1024, onCommitted: (f, c) => collector.add(f, c) });
  const server = createApiServer({ store, registry, ingestor, maxBytes: 20 * 1024 * 1024 });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  const port = (server.address() as AddressInfo).port;

  // A first frame while there is room, then a filler that leaves ~1.5 MiB: room for a few frames.
  const first = await postFrame(port, key, uniqueFrame(), new Date(T0).toISOString());
  assert.equal(first.status, 202, JSON.stringify(first.json));
  const filler = path.join(mountDir, 'filler.bin');
  const free = () => {
    const s = statfsSync(mountDir);
    return s.bavail * s.bsize;
  };
  writeFileSync(filler, Buffer.alloc(Math.max(0, free() - 1.5 * 1024 * 1024)));

  // POST distinct frames until the disk refuses them (bounded), then a few more, one of them tiny.
  const answers: { i: number; status: number; code?: string; message?: string; frameId?: string; path?: string; bytes: Buffer; at: string; type: string }[] = [];
  let refused = 0;
  for (let i = 1; i <= 60 && refused < 4; i++) {
    const tiny = refused === 2;
    const bytes = tiny ? readFileSync(path.join(FIXTURES, 'truncated.jpg')) : uniqueFrame();
    const at = new Date(T0 + i * 1000).toISOString();
    const type = tiny ? 'image/jpeg' : 'image/png';
    const r = await postFrame(port, key, bytes, at, type);
    answers.push({ i, status: r.status, code: r.json?.error?.code, message: r.json?.error?.message, frameId: r.json?.frameId, path: r.json?.path, bytes, at, type });
    if (r.status !== 202) refused++;
  }
  t.diagnostic(`answers: ${answers.map((a) => `${a.status}${a.code ? ` ${a.code}` : ''}`).join(', ')}; free ${free()} bytes`);
  for (const a of answers.filter((x) => x.status !== 202)) t.diagnostic(`frame ${a.i}: ${a.status} ${a.message}`);
  const refusals = answers.filter((a) => a.status !== 202);
  assert.ok(refusals.length > 0, 'the disk filled up');
  assert.deepEqual([...new Set(refusals.map((a) => `${a.status} ${a.code}`))], ['503 E_STORAGE'], 'a full disk is a clear 503 E_STORAGE');

  // Never a 2xx for a frame that was not stored; every stored frame is whole.
  const accepted = [first, ...answers.filter((a) => a.status === 202)].length;
  for (const a of answers.filter((x) => x.status === 202)) {
    const doc = await readJson<FrameDoc>(store, 'frames', a.path!);
    assert.equal(doc?.frameId, a.frameId, `accepted frame ${a.path} is in the frames repo`);
    assert.ok((await store.objects.get(a.frameId!)).equals(a.bytes), `accepted frame ${a.path} has its bytes`);
  }
  assert.deepEqual(await danglingFrames(store), [], 'every frame document points to an object that exists and verifies');
  assert.deepEqual((await fsck(store)).problems, [], 'fsck is clean with the disk full');
  const inRepo = (await listFiles(store, 'frames')).length;
  assert.ok(inRepo >= accepted, `${inRepo} frames in the repo for ${accepted} accepted`);

  // Free the space: a new frame is accepted, and every refused frame can be sent again.
  rmSync(filler);
  const freshBytes = uniqueFrame();
  const freshAt = new Date(T0 + 3_600_000).toISOString();
  await t.test('after freeing space a new frame is accepted at once', {
    todo: 'product bug: a repo lock file created on the full disk stays behind empty (repos/lock.ts acquire: O_EXCL create succeeds, the write fails ENOSPC; breakIfStale cannot parse an empty file and never breaks it), so every later commit to that repo waits 60 s and fails E_LOCKED',
  }, async () => {
    const r = await postFrame(port, key, freshBytes, freshAt, 'image/png', 10_000);
    assert.equal(r.status, 202, JSON.stringify(r.json));
  });
  const locks = lockFiles(dataDir);
  await t.test('no lock file is left behind', { todo: 'same product bug: an empty vigil.lock after ENOSPC' }, () => {
    assert.deepEqual(locks, {});
  });
  // Operator workaround for that bug (no request is in flight now), so the rest can be checked.
  for (const f of Object.keys(locks)) rmSync(path.join(dataDir, f), { force: true });
  const fresh = await postFrame(port, key, freshBytes, freshAt, 'image/png', 30_000);
  assert.equal(fresh.status, 202, `after freeing space: ${JSON.stringify(fresh.json)}`);
  for (const a of refusals) {
    const r = await postFrame(port, key, a.bytes, a.at, a.type);
    assert.equal(r.status, 202, `retry of refused frame ${a.i}: ${JSON.stringify(r.json)}`);
  }
  const total = 1 + answers.length + 1;
  assert.equal((await listFiles(store, 'frames')).length, total, 'every frame is in the repo once');
  assert.deepEqual(await danglingFrames(store), []);
  assert.deepEqual((await fsck(store)).problems, [], 'fsck is clean after recovery');

  // Nothing lost for batching either: a collector restarted from its saved state batches every
  // frame of the repo exactly once.
  const reloaded: BatchSpec[] = [];
  const again = new Collector(store, { maxFrames: 1000, maxWaitMs: 3_600_000, start: async (b) => void reloaded.push(b) });
  await again.load();
  await again.tick(true);
  const batched = reloaded.flatMap((b) => b.frames.map((f) => f.path));
  assert.equal(new Set(batched).size, batched.length, 'no frame batched twice');
  assert.equal(batches.length, 0);
  const missing = (await listFiles(store, 'frames')).map((f) => f.path).filter((p) => !batched.includes(p));
  await t.test('every stored frame reaches a batch', {
    todo: 'product bug: when the frames commit lands but commitChanges then fails (the batch-index append hits ENOSPC), the API answers 503 and never tells the collector; the retry is a duplicate (not re-announced) and the collector diffs from a later head, so the frame is never processed',
  }, () => {
    assert.deepEqual(missing, []);
  });
});
