import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { Collector, type BatchSpec } from '../ingest/collector.js';
import type { FrameDoc } from '../lib/schemas.js';
import { DeviceRegistry } from '../ingest/devices.js';
import { FrameIngestor } from '../ingest/frameIngestor.js';
import { openStore, readBranchHead } from '../repos/index.js';
import { FIXTURES, tmpDir } from './helpers/tmp.js';

const frame = (name: string) => readFileSync(path.join(FIXTURES, name));
const at = (i: number) => new Date(Date.UTC(2026, 10, 27, 20, 0, i)).toISOString();

test('frames accepted while Temporal is down are batched once it is back, across a restart', async () => {
  const dir = tmpDir();
  const store = openStore(dir);
  const { device } = await new DeviceRegistry(dir).add({ user: 'bob', device: 'cam', site: 'north' });
  let down = true;
  const started: BatchSpec[] = [];
  const start = async (b: BatchSpec) => {
    if (down) throw new Error('connection refused');
    started.push(b);
  };
  const c1 = new Collector(store, { maxFrames: 2, maxWaitMs: 60_000, start });
  await c1.load();
  const ing = new FrameIngestor(store, { maxBytes: 1 << 24, onCommitted: (f, c) => c1.add(f, c) });
  for (const [i, f] of ['chelsea.png', 'coffee.png', 'rocket.jpg'].entries()) await ing.accept(device, frame(f), at(i));
  await c1.tick();
  const s1 = c1.stats();
  assert.deepEqual([s1.pending, s1.unstarted], [1, 1], 'a full batch waits for Temporal; one frame still pending');
  assert.equal(s1.startError?.message, 'connection refused', 'the health endpoint sees why');
  assert.ok(s1.waitingSince && Date.parse(s1.waitingSince) <= Date.parse(s1.startError!.since), 'waiting since the batch was cut, before its start failed');
  assert.equal(started.length, 0);

  // Restart: the first process ends; a new collector reads the saved state; Temporal is back.
  await c1.stop();
  down = false;
  const c2 = new Collector(store, { maxFrames: 2, maxWaitMs: 60_000, start });
  await c2.load();
  await c2.tick(true);
  assert.equal(started.length, 2);
  const paths = started.flatMap((b) => b.frames.map((f) => f.path)).sort();
  assert.equal(paths.length, 3);
  assert.equal(new Set(paths).size, 3, 'no frame batched twice');
  assert.deepEqual(c2.stats(), { pending: 0, unstarted: 0, waitingSince: null, startError: null }, 'a start that succeeds clears the error');
});

test('frames committed but not recorded by the collector (a crash in between) are found again on load', async () => {
  const dir = tmpDir();
  const store = openStore(dir);
  const { device } = await new DeviceRegistry(dir).add({ user: 'bob', device: 'cam', site: 'north' });
  const started: BatchSpec[] = [];
  const c1 = new Collector(store, { maxFrames: 10, maxWaitMs: 60_000, start: async (b) => void started.push(b) });
  await c1.load();
  const withCollector = new FrameIngestor(store, { maxBytes: 1 << 24, onCommitted: (f, c) => c1.add(f, c) });
  await withCollector.accept(device, frame('chelsea.png'), at(0));
  // The process dies after committing these frames, before the collector recorded them.
  const crashing = new FrameIngestor(store, { maxBytes: 1 << 24 });
  await crashing.accept(device, frame('coffee.png'), at(1));
  await crashing.accept(device, frame('home.jpg'), at(2));
  const c2 = new Collector(store, { maxFrames: 10, maxWaitMs: 60_000, start: async (b) => void started.push(b) });
  await c2.load();
  await c2.tick(true);
  assert.equal(started.length, 1);
  assert.equal(started[0]!.frames.length, 3);
  assert.equal(started[0]!.site, 'north');
});

test('recording committed frames never waits for a batch start in progress (a slow Temporal)', { timeout: 30_000 }, async () => {
  const dir = tmpDir();
  const store = openStore(dir);
  const { device } = await new DeviceRegistry(dir).add({ user: 'bob', device: 'cam', site: 'north' });
  const started: BatchSpec[] = [];
  let release!: () => void;
  const slow = new Promise<void>((r) => (release = r));
  const collector = new Collector(store, {
    maxFrames: 1,
    maxWaitMs: 60_000,
    start: async (b) => {
      await slow;
      started.push(b);
    },
  });
  await collector.load();
  const ing = new FrameIngestor(store, { maxBytes: 1 << 24, onCommitted: (f, c) => collector.add(f, c) });
  await ing.accept(device, frame('chelsea.png'), at(0)); // its batch's start now hangs
  const t0 = Date.now();
  const second = await ing.accept(device, frame('coffee.png'), at(1));
  assert.equal(second.duplicate, false);
  assert.ok(Date.now() - t0 < 5_000, 'the second frame was answered while the first batch was still starting');
  assert.equal(started.length, 0);
  const hung = collector.stats();
  assert.deepEqual([hung.pending, hung.unstarted, hung.startError], [0, 2, null], 'a hanging start has no error yet');
  assert.ok(hung.waitingSince !== null, 'but its batch is waiting (the health endpoint reports it after 30 s)');
  release();
  await collector.startQueued();
  assert.equal(started.length, 2);
  assert.deepEqual(started.map((b) => b.frames.map((f) => f.path)), [['bob-cam/20261127T200000000Z.json'], ['bob-cam/20261127T200001000Z.json']], 'started in order, each once');
  assert.deepEqual(collector.stats(), { pending: 0, unstarted: 0, waitingSince: null, startError: null });
});

test('a batch is started only once the saved state holds it, and stop() leaves every frame in the saved state', async () => {
  const dir = tmpDir();
  const store = openStore(dir);
  const { device } = await new DeviceRegistry(dir).add({ user: 'bob', device: 'cam', site: 'north' });
  const files = ['chelsea.png', 'coffee.png', 'rocket.jpg', 'home.jpg', 'astronaut.png'];
  const seenOnDisk: boolean[] = [];
  let ing!: FrameIngestor;
  const collector = new Collector(store, {
    maxFrames: 2,
    maxWaitMs: 60_000,
    start: async (b) => {
      // What a restart at this instant would find: the batch must be in the saved state already,
      // or a restart would cut its frames into a second batch.
      const saved = JSON.parse(readFileSync(collector.file, 'utf8')) as { unstarted: BatchSpec[] };
      seenOnDisk.push(saved.unstarted.some((u) => u.batchId === b.batchId));
      // While the first batch starts, two more frames arrive: the second batch is cut, and the
      // starter reaches it the moment this start returns, before its save can have finished.
      if (seenOnDisk.length === 1) for (const i of [2, 3]) await ing.accept(device, frame(files[i]!), at(i));
    },
  });
  await collector.load();
  ing = new FrameIngestor(store, { maxBytes: 1 << 24, onCommitted: (f, c) => collector.add(f, c) });
  for (const i of [0, 1]) await ing.accept(device, frame(files[i]!), at(i));
  await collector.flush();
  await collector.startQueued();
  await ing.accept(device, frame(files[4]!), at(4));
  await collector.stop();
  assert.deepEqual(seenOnDisk, [true, true], 'two full batches started, each after a save that holds it');
  const saved = JSON.parse(readFileSync(collector.file, 'utf8')) as { pending: Array<{ path: string }>; unstarted: BatchSpec[]; framesCommit: string };
  assert.deepEqual(saved.pending.map((p) => p.path), ['bob-cam/20261127T200004000Z.json'], 'the fifth frame is pending in the saved state');
  assert.deepEqual(saved.unstarted, [], 'started batches are gone from the saved state');
  assert.equal(saved.framesCommit, await readBranchHead(store, 'frames'));
});

test('startQueued: calls while a start is running join that run; each batch starts once, in order; a batch queued after it ends gets a run of its own', async () => {
  const dir = tmpDir();
  const store = openStore(dir);
  const { device } = await new DeviceRegistry(dir).add({ user: 'bob', device: 'cam', site: 'north' });
  let release!: () => void;
  const slow = new Promise<void>((r) => (release = r));
  const started: string[] = [];
  const collector = new Collector(store, {
    maxFrames: 1,
    maxWaitMs: 60_000,
    start: async (b) => {
      await slow;
      started.push(b.frames[0]!.path);
    },
  });
  await collector.load();
  const ing = new FrameIngestor(store, { maxBytes: 1 << 24, onCommitted: (f, c) => collector.add(f, c) });
  const files = ['chelsea.png', 'coffee.png', 'rocket.jpg', 'home.jpg'];
  for (const i of [0, 1, 2]) await ing.accept(device, frame(files[i]!), at(i)); // a batch each; the first start hangs
  const calls = Array.from({ length: 200 }, () => collector.startQueued());
  assert.equal(new Set(calls).size, 1, 'every call made while a run is going joins it');
  release();
  const counts = await Promise.all(calls);
  assert.deepEqual(started, [0, 1, 2].map((i) => `bob-cam/20261127T20000${i}000Z.json`), 'started in order, each once');
  assert.deepEqual(new Set(counts), new Set([counts[0]]));
  assert.deepEqual(collector.stats(), { pending: 0, unstarted: 0, waitingSince: null, startError: null });
  await ing.accept(device, frame(files[3]!), at(3));
  await collector.startQueued();
  assert.deepEqual(started.slice(3), ['bob-cam/20261127T200003000Z.json'], 'the run had ended: the new batch got its own');
  await collector.stop();
});

test('under steady ingest, batches start as soon as a save holds them, not when ingest pauses; never before', async () => {
  const store = openStore(tmpDir());
  const c = new Collector(store, { maxFrames: 2, maxWaitMs: 60_000, start: async (b) => {
    const saved = JSON.parse(readFileSync(c.file, 'utf8')) as { unstarted: BatchSpec[] };
    assert.ok(saved.unstarted.some((s) => s.batchId === b.batchId), `batch ${b.batchId} started before a save held it`);
    startedAt.push(performance.now());
  } });
  const startedAt: number[] = [];
  await c.load();
  // A frame committed every 10 ms for 2 s: the state changes far more often than it is saved (every 100 ms).
  const t0 = Date.UTC(2026, 10, 27, 20, 0, 0);
  let i = 0;
  for (const end = performance.now() + 2_000; performance.now() < end; i++) {
    const timestamp = new Date(t0 + i * 1000).toISOString().replace(/[-:]/g, '').replace('.', '');
    const doc = { kind: 'frame', frameId: String(i).padStart(64, '0'), user: 'bob', device: 'cam', site: 'north', timestamp } as unknown as FrameDoc;
    await c.add([doc], 'c'.repeat(40));
    await new Promise((r) => setTimeout(r, 10));
  }
  const addsEnded = performance.now();
  const during = startedAt.filter((t) => t < addsEnded).length;
  await c.tick();
  await c.stop();
  assert.ok(i >= 40, `only ${i} frames added`);
  assert.ok(during >= Math.floor(i / 2 / 2), `only ${during} of ${Math.floor(i / 2)} batches started while frames kept coming`);
  assert.equal(startedAt.length, Math.floor(i / 2), 'every full batch started in the end');
});
