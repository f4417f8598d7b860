import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import fs, { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { batchCommits, fsck, gitdirOf, listFiles, readJson, resolveRef, sha256Hex, type RepoStore } from '../repos/index.js';
import type { DetectionDoc, InvalidDoc } from '../stages/schema.js';
import { makeBatchStarter, batchWorkflowId } from '../temporal/starter.js';
import type { BatchSummary } from '../workflows/index.js';
import type { Device } from '../ingest/devices.js';
import { ingestFixtures, runWorker, setupDevice, startTemporal, testConfig } from './helpers/pipeline.js';
import { FIXTURES, tmpDir } from './helpers/tmp.js';

const FILES = ['chelsea.png', 'astronaut.png', 'camera.png', 'messi5.jpg', 'coffee.png', 'rocket.jpg', 'truncated.jpg'];
const ANIMALS = new Set(['bird', 'cat', 'dog', 'horse', 'sheep', 'cow', 'elephant', 'bear', 'zebra', 'giraffe']);

let env: TestWorkflowEnvironment;
let stopWorker: (() => Promise<void>) | undefined;
let store: RepoStore;
let device: Device;
let config: ReturnType<typeof testConfig>;

before(async () => {
  env = await startTemporal();
  const dir = tmpDir();
  ({ store, device } = await setupDevice(dir));
  config = testConfig(dir, env.address, 'pipeline-test');
  stopWorker = (await runWorker(env, config, store)).stop;
});

after(async () => {
  await stopWorker?.();
  await env?.teardown();
});

async function runBatch(batch: Awaited<ReturnType<typeof ingestFixtures>>): Promise<BatchSummary> {
  await makeBatchStarter(env.client, config)(batch);
  return env.client.workflow.result(batchWorkflowId(batch.batchId));
}

async function countObjects(s: RepoStore): Promise<number> {
  let n = 0;
  for await (const _ of s.objects.list()) n++;
  return n;
}

/** Loose object files of a repo. */
function looseObjects(s: RepoStore, repo: string): string[] {
  const dir = path.join(gitdirOf(s, repo), 'objects');
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((d) => /^[0-9a-f]{2}$/.test(d)).flatMap((d) => readdirSync(path.join(dir, d)).map((f) => path.join(dir, d, f)));
}

/**
 * Records the path of every file and folder fsync'd or fdatasync'd in this process (the worker
 * runs in it) until the returned stop() (Linux: the path comes from /proc/self/fd).
 */
function recordSyncs(): { synced: Set<string>; stop: () => void } {
  const synced = new Set<string>();
  const orig = { fsync: fs.fsync, fdatasync: fs.fdatasync };
  for (const k of ['fsync', 'fdatasync'] as const) {
    (fs as unknown as Record<string, unknown>)[k] = (fd: number, cb: (err: NodeJS.ErrnoException | null) => void) => {
      try {
        synced.add(fs.readlinkSync(`/proc/self/fd/${fd}`));
      } catch {
        // not on Linux: nothing recorded
      }
      return orig[k](fd, cb);
    };
  }
  return { synced, stop: () => Object.assign(fs, orig) };
}

test('a batch of real frames runs validate -> detect on the real Temporal server', async () => {
  const batch = await ingestFixtures(store, device, FILES);
  const stageRepos = ['standardized', 'invalid', 'detections', 'threats', 'alerts', 'rules'];
  const before = new Set(stageRepos.flatMap((r) => looseObjects(store, r)));
  const syncs = process.platform === 'linux' ? recordSyncs() : null;
  const summary = await runBatch(batch).finally(() => syncs?.stop());
  if (syncs) {
    // Every stage's commit is durable before its activity completes: a power loss cannot leave
    // Temporal past a stage whose output is gone.
    const written = stageRepos.flatMap((r) => looseObjects(store, r)).filter((f) => !before.has(f));
    assert.ok(written.length > 20, `${written.length} git objects written by the stages`);
    const unsynced = written.filter((f) => !syncs.synced.has(f) || !syncs.synced.has(path.dirname(f)));
    assert.deepEqual(unsynced.map((f) => path.relative(store.dataDir, f)), [], 'every git object a stage wrote, and its folder, was fsync\'d');
    for (const r of ['standardized', 'invalid', 'detections', 'threats']) {
      assert.ok(syncs.synced.has(path.join(gitdirOf(store, r), 'refs', 'heads')), `${r}: its branch move was fsync'd`);
    }
  }
  assert.equal(summary.frames, FILES.length);
  assert.equal(summary.standardized, FILES.length - 1);
  assert.equal(summary.invalid, 1);

  const byFile = new Map(FILES.map((f) => [f, batch.frames.find((r) => r.frameId === sha256Hex(readFileSync(path.join(FIXTURES, f))))!.path]));
  const std = new Set((await listFiles(store, 'standardized')).map((f) => f.path));
  const inv = new Set((await listFiles(store, 'invalid')).map((f) => f.path));
  const det = new Set((await listFiles(store, 'detections')).map((f) => f.path));
  for (const ref of batch.frames) {
    assert.ok(std.has(ref.path) !== inv.has(ref.path), `${ref.path} is in exactly one of standardized/invalid`);
    if (std.has(ref.path)) assert.ok(det.has(ref.path), `${ref.path} has a detection`);
  }
  const detection = async (file: string) => (await readJson<DetectionDoc>(store, 'detections', byFile.get(file)!))!;
  const cat = (await detection('chelsea.png')).objects.find((o) => o.class === 'cat');
  assert.ok(cat && cat.score >= 0.8, `cat >= 0.8 in chelsea.png (got ${cat?.score})`);
  for (const f of ['astronaut.png', 'camera.png', 'messi5.jpg']) {
    assert.ok((await detection(f)).objects.some((o) => o.class === 'person'), `person in ${f}`);
  }
  for (const f of ['coffee.png', 'rocket.jpg']) {
    assert.ok(!(await detection(f)).objects.some((o) => o.class === 'person' || ANIMALS.has(o.class)), `no person or animal in ${f}`);
  }
  const d = await detection('chelsea.png');
  assert.equal(d.frameId, sha256Hex(readFileSync(path.join(FIXTURES, 'chelsea.png'))));
  assert.equal(d.model.name, 'yolov8n');
  assert.ok(d.objects.every((o) => o.box.x >= 0 && o.box.x + o.box.width <= d.image.width + 0.5), 'boxes in original pixels');
  const bad = await readJson<InvalidDoc>(store, 'invalid', byFile.get('truncated.jpg')!);
  assert.equal(bad?.reason, 'truncated');

  const report = await fsck(store);
  assert.deepEqual(report.problems, []);
  const chain = await batchCommits(store, batch.batchId);
  assert.deepEqual(new Set(chain.map((c) => c.repo)), new Set(['standardized', 'invalid', 'detections', 'threats']));
  // Chunks of 4: two chunks, each with its own commits, whose activities finish in either order.
  const stdCommits = chain.filter((c) => c.repo === 'standardized');
  const detCommits = chain.filter((c) => c.repo === 'detections');
  assert.equal(stdCommits.length, 2);
  assert.equal(detCommits.length, 2);
  for (const dc of detCommits) {
    assert.equal(dc.provenance?.inputs.length, 1);
    assert.equal(dc.provenance?.inputs[0]?.repo, 'standardized');
    assert.ok(stdCommits.some((sc) => sc.commit === dc.provenance?.inputs[0]?.commit), 'a detections commit names a standardized commit of its batch');
    assert.equal(dc.provenance?.model?.sha256, d.model.sha256);
  }
  assert.equal(new Set(detCommits.map((dc) => dc.provenance?.inputs[0]?.commit)).size, 2, 'one per chunk');
  for (const sc of stdCommits) assert.equal(sc.provenance?.inputs[0]?.repo, 'frames');
});

test('re-sending the same frames stores nothing new; re-running their batch runs no inference', async () => {
  const objectsBefore = await countObjects(store);
  const framesHead = await listFiles(store, 'frames');
  const again = await ingestFixtures(store, device, FILES, Date.UTC(2026, 10, 27, 21, 0, 0)).catch((e: Error) => e);
  assert.match(String(again), /expected one batch, got 0/, 'duplicates are not batched again');
  assert.equal(await countObjects(store), objectsBefore, 'same bytes, same objects');
  assert.deepEqual(await listFiles(store, 'frames'), framesHead);

  const first = (await listFiles(store, 'frames')).slice(0, 4);
  const replay = {
    batchId: 'replay-1', site: 'hq', framesCommit: (await resolveRef(store, 'frames', 'main'))!,
    frames: await Promise.all(first.map(async (f) => ({ path: f.path, frameId: (await readJson<{ frameId: string }>(store, 'frames', f.path))!.frameId, site: 'hq' }))),
  };
  const detBefore = await listFiles(store, 'detections');
  const summary = await runBatch(replay);
  assert.equal(summary.detected, 0, 'no inference');
  assert.equal(summary.skippedDetections + summary.invalid, 4);
  assert.equal(await countObjects(store), objectsBefore);
  assert.deepEqual(await listFiles(store, 'detections'), detBefore);
  await assert.rejects(batchCommits(store, 'replay-1'), /no commits/, 'a batch that changed nothing commits nothing');
});

test('a big batch fans out into child workflows and continues as new, each frame processed once', async () => {
  const files = ['chelsea.png', 'coffee.png', 'rocket.jpg', 'home.jpg', 'motorcycle_left.png'];
  const batch = await ingestFixtures(store, device, files, Date.UTC(2026, 10, 27, 22, 0, 0));
  const handle = await env.client.workflow.start('batchWorkflow', {
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    workflowId: batchWorkflowId(batch.batchId),
    args: [{ ...batch, chunkSize: 1, chunksPerRun: 2 }],
  });
  const summary: BatchSummary = await handle.result();
  assert.equal(summary.frames, files.length);
  assert.equal(summary.standardized, files.length);
  assert.equal(summary.detected, files.length);
  // Visibility is eventually consistent: look again for a few seconds.
  let runs: string[] = [];
  for (let i = 0; i < 50 && runs.filter((r) => r.startsWith('chunkWorkflow:')).length < files.length; i++) {
    runs = [];
    for await (const w of env.client.workflow.list({ query: `WorkflowId STARTS_WITH "${batchWorkflowId(batch.batchId)}"` })) runs.push(`${w.type}:${w.workflowId}`);
    if (runs.filter((r) => r.startsWith('chunkWorkflow:')).length < files.length) await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(runs.filter((r) => r.startsWith('chunkWorkflow:')).length === files.length, `one child per chunk: ${runs.join(', ')}`);
  const desc = await handle.describe();
  assert.notEqual(desc.runId, handle.firstExecutionRunId, 'the batch continued as new');
});
