/**
 * Fault suite: the disk fills up while frames are ingested. The data folder is a small tmpfs
 * (`mount -t tmpfs`: with CAP_SYS_ADMIN, as root has on CI, it must work, so a failed mount fails the
 * tests; without that capability they are skipped with the reason). The real API
 * (createApiServer, DeviceRegistry, FrameIngestor, Collector) over real HTTP must answer 503
 * E_STORAGE, never a 2xx for a frame it did not store, leave nothing half written, and recover
 * once space is freed.
 *
 * To reach every step of an ingest (object bytes, lock file, git blob/trees/commit, ref, batch
 * index, collector state) with the disk full, a filler file takes all the space, then gives back
 * exactly N pages for N = 0, 1, 2, … before each frame: each N makes a different write the first
 * to fail.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, ftruncateSync, fstatSync, mkdtempSync, openSync, readFileSync, rmSync, statfsSync, writeFileSync, writeSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Collector, type BatchSpec } from '../ingest/collector.js';
import { DeviceRegistry } from '../ingest/devices.js';
import { FrameIngestor } from '../ingest/frameIngestor.js';
import { compactTimestamp, framePath } from '../ingest/frameTag.js';
import type { FrameDoc } from '../lib/schemas.js';
import { fsck, listFiles, openStore, readJson, type RepoStore } from '../repos/index.js';
import { createApiServer } from '../server/index.js';
import { danglingFrames, emptyRefs, followIngest, orphanLocks, postFrame, seenTwice } from './helpers/faults.js';
import { FIXTURES } from './helpers/tmp.js';

const SIZE_MB = 8;
const CHELSEA = readFileSync(path.join(FIXTURES, 'chelsea.png'));
const TINY = readFileSync(path.join(FIXTURES, 'truncated.jpg'));
const T0 = Date.UTC(2026, 10, 22, 12, 0, 0);
/** Free pages given back before each frame of the sweep. */
const SWEEP_PAGES = 14;

/** Whether this process has CAP_SYS_ADMIN (bit 21 of its effective capabilities), which mount needs. */
function canMount(): boolean {
  const hex = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
  return hex !== undefined && (BigInt(`0x${hex}`) & (1n << 21n)) !== 0n;
}

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
    const why = `cannot mount a ${SIZE_MB} MiB tmpfs: ${String((err as { stderr?: Buffer }).stderr ?? err).trim().split('\n')[0]}`;
    // Allowed to mount (CI runs as root): a failed mount is a failure, not a reason to skip.
    if (canMount()) throw new Error(why);
    skipReason = `${why} (needs CAP_SYS_ADMIN, e.g. root outside a container)`;
  }
});
after(() => {
  if (mounted) execFileSync('umount', ['-l', mountDir], { stdio: 'pipe' });
  rmSync(mountDir, { recursive: true, force: true });
});

/** A distinct valid PNG each call: chelsea with random bytes after its end (the ingest API stores bytes as sent). */
const uniqueFrame = () => Buffer.concat([CHELSEA, randomBytes(16)]);
/** A distinct small JPEG each call (one page of object store). */
const uniqueTiny = () => Buffer.concat([TINY, randomBytes(8)]);

/** A file that takes all the free space of its file system, and gives back exact amounts. */
class Filler {
  private fd: number;
  readonly page: number;
  constructor(readonly file: string) {
    this.fd = openSync(file, 'w');
    this.page = statfsSync(path.dirname(file)).bsize;
  }
  free(): number {
    const s = statfsSync(path.dirname(this.file));
    return s.bavail * s.bsize;
  }
  /** Writes until the file system is full. */
  fill(): void {
    const chunk = Buffer.alloc(64 * 1024);
    for (;;) {
      try {
        if (writeSync(this.fd, chunk, 0, chunk.length, fstatSync(this.fd).size) < chunk.length) return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOSPC') return;
        throw err;
      }
    }
  }
  /** Fills the disk, then frees exactly `pages` pages. */
  leave(pages: number): void {
    this.fill();
    ftruncateSync(this.fd, Math.max(0, fstatSync(this.fd).size - pages * this.page));
  }
  remove(): void {
    closeSync(this.fd);
    rmSync(this.file);
  }
}

test('a full disk: 503 E_STORAGE, never a 2xx for a frame not stored, nothing half written, and ingest recovers once space is freed', { timeout: 5 * 60_000 }, async (t) => {
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

  type Answer = { i: number; pages: number; status: number; code?: string; message?: string; frameId?: string; path?: string; bytes: Buffer; at: string; type: string };
  const answers: Answer[] = [];
  const send = async (i: number, pages: number, bytes: Buffer, type: string) => {
    const at = new Date(T0 + i * 1000).toISOString();
    const r = await postFrame(port, key, bytes, at, type, 70_000);
    const a: Answer = { i, pages, status: r.status, code: r.json?.error?.code, message: r.json?.error?.message, frameId: r.json?.frameId, path: r.json?.path, bytes, at, type };
    answers.push(a);
    return a;
  };

  // Two frames while there is room (one of them the small image), then the disk full: a big frame is refused.
  assert.equal((await send(0, -1, uniqueFrame(), 'image/png')).status, 202);
  assert.equal((await send(1, -1, TINY, 'image/jpeg')).status, 202);
  const filler = new Filler(path.join(mountDir, 'filler.bin'));
  filler.leave(0);
  const big = await send(2, 0, uniqueFrame(), 'image/png');
  assert.equal(big.status, 503, JSON.stringify(big));

  // The sweep: N free pages before each frame; the same small image again (its bytes are already
  // stored, so the commit is the first write) and a new one. A torn lock left by a failed write
  // would block every later commit to its repo: none may be left.
  let i = 3;
  for (let pages = 0; pages <= SWEEP_PAGES; pages++) {
    for (const bytes of [TINY, uniqueTiny()]) {
      filler.leave(pages);
      await send(i++, pages, bytes, 'image/jpeg');
      // Seen empty twice, 200 ms apart (a live holder's lock is empty only for microseconds).
      const torn = await seenTwice(() => orphanLocks(dataDir, 0), 200);
      assert.deepEqual(torn.map((f) => path.relative(dataDir, f)), [], `no lock file is left behind by frame ${i - 1} (${pages} free pages)`);
    }
  }
  filler.leave(0);
  for (const a of answers) t.diagnostic(`frame ${a.i} (${a.bytes.length} bytes, ${a.pages < 0 ? 'room' : `${a.pages} free pages`}): ${a.status}${a.message ? ` ${a.message}` : ''}`);
  const refusals = answers.filter((a) => a.status !== 202);
  assert.ok(answers.some((a) => a.pages >= 0 && a.status === 202), 'some frames fit in the pages given back');

  // A full disk is a clear 503 E_STORAGE, whichever write fails.
  const unclear = refusals.filter((a) => a.status !== 503 || a.code !== 'E_STORAGE');
  assert.deepEqual(unclear.map((a) => `frame ${a.i}: ${a.status} ${a.code} ${a.message}`), [], 'every refusal is 503 E_STORAGE');

  // Never a 2xx for a frame that was not stored; every stored frame is whole.
  for (const a of answers.filter((x) => x.status === 202)) {
    const doc = await readJson<FrameDoc>(store, 'frames', a.path!);
    assert.equal(doc?.frameId, a.frameId, `accepted frame ${a.path} is in the frames repo`);
    assert.ok((await store.objects.get(a.frameId!)).equals(a.bytes), `accepted frame ${a.path} has its bytes`);
  }
  assert.deepEqual(await emptyRefs(dataDir), [], 'no ref is left empty or half-written by a write that failed');
  assert.deepEqual(await danglingFrames(store), [], 'every frame document points to an object that exists and verifies');
  assert.deepEqual((await fsck(store)).problems, [], 'fsck is clean with the disk full');
  const inRepo = new Set((await listFiles(store, 'frames')).map((f) => f.path));
  const pathOf = (a: Answer) => framePath('alice', 'cam1', compactTimestamp(new Date(a.at)));
  assert.deepEqual(answers.filter((a) => a.status === 202 && !inRepo.has(pathOf(a))).map((a) => a.i), [], 'every accepted frame is in the repo');
  // Refused, yet stored: the commit landed and a later write failed (allowed: the retry is a duplicate).
  const storedButRefused = refusals.filter((a) => inRepo.has(pathOf(a)));
  t.diagnostic(`refused but stored: ${storedButRefused.map((a) => `frame ${a.i}`).join(', ') || 'none'}`);

  // Free the space: a new frame is accepted at once, and every refused frame can be sent again.
  filler.remove();
  const fresh = await postFrame(port, key, uniqueFrame(), new Date(T0 + 3_600_000).toISOString(), 'image/png', 10_000);
  assert.equal(fresh.status, 202, `after freeing space: ${JSON.stringify(fresh.json)}`);
  for (const a of refusals) {
    const r = await postFrame(port, key, a.bytes, a.at, a.type, 10_000);
    assert.equal(r.status, 202, `retry of refused frame ${a.i}: ${JSON.stringify(r.json)}`);
  }
  const total = answers.length + 1;
  assert.equal((await listFiles(store, 'frames')).length, total, 'every frame is in the repo once');
  assert.deepEqual(await danglingFrames(store), []);
  assert.deepEqual((await fsck(store)).problems, [], 'fsck is clean after recovery');

  // Nothing lost for batching either: a collector restarted from its saved state batches every
  // frame of the repo exactly once.
  await collector.stop();
  const reloaded: BatchSpec[] = [];
  const again = new Collector(store, { maxFrames: 1000, maxWaitMs: 3_600_000, start: async (b) => void reloaded.push(b) });
  await again.load();
  await again.tick(true);
  const batched = reloaded.flatMap((b) => b.frames.map((f) => f.path));
  assert.equal(new Set(batched).size, batched.length, 'no frame batched twice');
  assert.equal(batches.length, 0);
  const missing = (await listFiles(store, 'frames')).map((f) => f.path).filter((p) => !batched.includes(p));
  assert.deepEqual(missing, [], 'every stored frame reaches a batch, refused-yet-stored ones too');
});

test('vigil ingest --follow waits out a full disk (503 E_STORAGE), queues new images and sends them all once space is freed', { timeout: 5 * 60_000 }, async (t) => {
  if (!mounted) {
    t.skip(skipReason);
    return;
  }
  const dataDir = path.join(mountDir, 'follow');
  const store = openStore(dataDir);
  const registry = new DeviceRegistry(dataDir);
  const { key } = await registry.add({ user: 'bob', device: 'cam1', site: 'hq', tz: 'UTC' });
  const server = createApiServer({ store, registry, ingestor: new FrameIngestor(store, { maxBytes: 20 * 1024 * 1024 }), maxBytes: 20 * 1024 * 1024 });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  const filler = new Filler(path.join(mountDir, 'filler-follow.bin'));
  filler.leave(0);
  // The camera folder is on the real disk; only the server's data folder is full.
  const cam = mkdtempSync(path.join(os.tmpdir(), 'vigil-follow-cam-'));
  t.after(() => rmSync(cam, { recursive: true, force: true }));
  const frames = { 'a.png': uniqueFrame(), 'b.png': uniqueFrame() };
  writeFileSync(path.join(cam, 'a.png'), frames['a.png']);
  const follower = followIngest([cam, '--url', `http://127.0.0.1:${(server.address() as AddressInfo).port}`], { ...process.env, VIGIL_DEVICE_KEY: key });
  t.after(() => void follower.stop());
  await follower.waitFor(() => /answers 503 E_STORAGE: .*waiting for it, new images queue up/.test(follower.err()), 'the waiting line', 60_000);
  writeFileSync(path.join(cam, 'b.png'), frames['b.png']);
  await new Promise((r) => setTimeout(r, 1000));
  assert.deepEqual(follower.lines(), [], 'nothing reported sent while the disk is full');

  filler.remove();
  await follower.waitFor(() => follower.lines().length >= 2, 'both images sent', 60_000);
  assert.deepEqual(follower.lines().map((l) => [path.basename(l.file), l.status]), [['a.png', 202], ['b.png', 202]]);
  assert.match(follower.err(), /the Vigil server answers again/);
  assert.equal(await follower.stop(), 0, follower.err());
  for (const l of follower.lines()) {
    const name = path.basename(l.file) as keyof typeof frames;
    assert.ok((await store.objects.get(l.frameId)).equals(frames[name]), `${name}: its bytes are stored`);
    assert.equal((await readJson<FrameDoc>(store, 'frames', l.path))?.frameId, l.frameId, `${name}: its document is committed`);
  }
  assert.equal((await listFiles(store, 'frames')).length, 2, 'each frame stored once');
});
