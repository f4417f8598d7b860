/**
 * Benchmark 5, storage: bytes on disk per frame for each stage repo (frames, standardized, invalid,
 * detections, threats, alerts) before and after `gcAll` packs them, object-store bytes per frame,
 * and what re-ingesting the same frames adds (same capture times: duplicates; new capture times:
 * new frame documents over the same bytes).
 */
import path from 'node:path';
import { commitChanges, diskUsage, gcAll, gcRepo, gitdirOf, listFiles, listRepoNames, openStore, readJson, type RepoStore } from '../repos/index.js';
import { apparentSize, bytes, fmt, round, target, tempDir, type Benchmark, type BenchOptions, type BenchOutcome } from './lib/common.js';
import { benchFrames, blankJpeg, truncatedJpeg } from './lib/frames.js';
import { CaptureClock, FrameClient, mapLimit } from './lib/http.js';
import { startSystem, writeBenchRules, type RunningSystem } from './lib/system.js';

const STAGES = ['frames', 'standardized', 'invalid', 'detections', 'threats', 'alerts'] as const;

interface RepoSize {
  repo: string;
  docs: number;
  diskBytes: number;
  apparentBytes: number;
  files: number;
}

async function repoSizes(store: RepoStore): Promise<Record<string, RepoSize>> {
  const out: Record<string, RepoSize> = {};
  for (const repo of await listRepoNames(store)) {
    const dir = gitdirOf(store, repo);
    const a = await apparentSize(dir);
    const docs = (await listFiles(store, repo)).filter((f) => !f.path.startsWith('cooldowns/')).length;
    out[repo] = { repo, docs, diskBytes: await diskUsage(dir), apparentBytes: a.bytes, files: a.files };
  }
  return out;
}

async function objectSizes(store: RepoStore) {
  const dir = path.join(store.dataDir, 'objects');
  const a = await apparentSize(dir);
  return { diskBytes: await diskUsage(dir), apparentBytes: a.bytes, files: a.files };
}

async function otherSizes(store: RepoStore) {
  const out: Record<string, number> = {};
  for (const d of ['index', 'ledger', 'warehouse', 'temporal']) out[d] = await diskUsage(path.join(store.dataDir, d));
  return out;
}

/** Disk usage of a packed repo holding one small document: the fixed cost every repo pays. */
async function packedBaseline(): Promise<number> {
  const tmp = tempDir('baseline');
  try {
    const store = openStore(tmp.dir);
    await commitChanges(store, { repo: 'baseline', changes: [{ path: 'a-b/x.json', content: JSON.stringify({ pad: 'x'.repeat(600) }) }], provenance: { batchId: 'b', stage: 'bench', stageVersion: '1', inputs: [] }, summary: 'baseline' });
    await gcRepo(store, 'baseline');
    return await diskUsage(gitdirOf(store, 'baseline'));
  } finally {
    tmp.cleanup();
  }
}

async function post(sys: RunningSystem, frames: readonly Buffer[], times: readonly string[]) {
  const client = new FrameClient(sys.apiUrl, 4);
  try {
    const res = await mapLimit(frames, 4, (b, i) => client.post(sys.keys.get('cam1')!, b, times[i]!));
    const bad = res.find((r) => r.status !== 202);
    if (bad) throw new Error(`POST answered ${bad.status}: ${JSON.stringify(bad.body)}`);
    return { duplicates: res.filter((r) => r.body.duplicate === true).length };
  } finally {
    client.close();
  }
}

async function run(o: BenchOptions): Promise<BenchOutcome> {
  const valid = o.quick ? 16 : 64;
  const tmp = tempDir('storage');
  let sys: RunningSystem | null = null;
  try {
    const good = (await benchFrames(o.cacheDir, 'mixed', 5000, valid)).map((f) => f.bytes);
    const broken = (await benchFrames(o.cacheDir, 'mixed', 6000, 4)).map((f) => truncatedJpeg(f.bytes));
    const blanks = [await blankJpeg(1), await blankJpeg(2)];
    const frames = [...good, ...broken, ...blanks];
    const n = frames.length;
    o.log(`  ${n} frames: ${valid} valid 1280x720 JPEGs, ${broken.length} truncated, ${blanks.length} blank (camera fault)`);
    sys = await startSystem({ dataDir: tmp.dir, rulesDir: writeBenchRules(tmp.dir), threads: o.threads, batchMaxFrames: 32, chunkSize: 16, worker: 'process' });
    const clock = new CaptureClock();
    const times = frames.map(() => clock.take());
    await post(sys, frames, times);
    await sys.waitForFrames(n, 10 * 60_000);
    const store = sys.store;

    const originals = new Set<string>();
    const standardized = new Set<string>();
    let originalBytes = 0;
    let standardizedBytes = 0;
    for (const f of await listFiles(store, 'frames')) {
      const doc = await readJson<{ object: { sha256: string; size: number } }>(store, 'frames', f.path);
      if (doc && !originals.has(doc.object.sha256)) {
        originals.add(doc.object.sha256);
        originalBytes += doc.object.size;
      }
    }
    for (const f of await listFiles(store, 'standardized')) {
      const doc = await readJson<{ object: { sha256: string; size: number } }>(store, 'standardized', f.path);
      if (doc && !standardized.has(doc.object.sha256)) {
        standardized.add(doc.object.sha256);
        standardizedBytes += doc.object.size;
      }
    }
    const before = await repoSizes(store);
    const objectsBefore = await objectSizes(store);
    const others = await otherSizes(store);
    const gc = await gcAll(store);
    const after = await repoSizes(store);

    // Re-ingest 1: the same frames, same capture times.
    const objA = await objectSizes(store);
    const reposA = await repoSizes(store);
    const dupA = await post(sys, frames, times);
    const objA2 = await objectSizes(store);
    const reposA2 = await repoSizes(store);
    // Re-ingest 2: the same bytes with new capture times (new frames over the same bytes), through the pipeline.
    const batchedBefore = sys.batches.reduce((s, b) => s + b.frames, 0);
    const times2 = frames.map(() => clock.take());
    await post(sys, frames, times2);
    await sys.waitForFrames(batchedBefore + n, 10 * 60_000);
    const objB = await objectSizes(store);
    const reposB = await repoSizes(store);
    const repoDelta = (x: Record<string, RepoSize>, y: Record<string, RepoSize>) => Object.keys(y).reduce((s, k) => s + (y[k]!.diskBytes - (x[k]?.diskBytes ?? 0)), 0);

    const baseline = await packedBaseline();
    const rows = STAGES.map((s) => {
      const b = before[s];
      const a = after[s];
      const docs = b?.docs ?? 0;
      return {
        marginalPerDocAfter: docs > 1 ? Math.round(((a?.diskBytes ?? 0) - baseline) / (docs - 1)) : null,
        apparentPerDocAfter: a?.docs ? Math.round(a.apparentBytes / a.docs) : null,
        stage: s, docs: b?.docs ?? 0, filesBefore: b?.files ?? 0,
        diskBefore: b?.diskBytes ?? 0, apparentBefore: b?.apparentBytes ?? 0, diskAfter: a?.diskBytes ?? 0, apparentAfter: a?.apparentBytes ?? 0,
        perDocBefore: b?.docs ? Math.round(b.diskBytes / b.docs) : null, perDocAfter: a?.docs ? Math.round(a.diskBytes / a.docs) : null,
        perFrameBefore: Math.round((b?.diskBytes ?? 0) / n), perFrameAfter: Math.round((a?.diskBytes ?? 0) / n),
        apparentPerDocBefore: b?.docs ? Math.round(b.apparentBytes / b.docs) : null,
      };
    });
    for (const r of rows) o.log(`  ${r.stage.padEnd(12)} ${String(r.docs).padStart(4)} docs: ${bytes(r.diskBefore)} on disk (${fmt(r.perDocBefore, 0)} B/doc, ${r.filesBefore} files) -> after gc ${bytes(r.diskAfter)} (${fmt(r.perDocAfter, 0)} B/doc; ${fmt(r.marginalPerDocAfter, 0)} B/doc above a one-doc packed repo's ${bytes(baseline)})`);
    const objPerFrame = Math.round(objectsBefore.diskBytes / n);
    o.log(`  objects: ${bytes(objectsBefore.diskBytes)} on disk for ${objectsBefore.files} objects (${fmt(objPerFrame, 0)} B/frame): originals ${bytes(originalBytes)} (${originals.size}), standardized ${bytes(standardizedBytes)} (${standardized.size})`);
    o.log(`  other: ${Object.entries(others).map(([k, v]) => `${k} ${bytes(v)}`).join(', ')}`);
    o.log(`  re-ingest same frames and times: ${dupA.duplicates}/${n} duplicates, objects +${objA2.diskBytes - objA.diskBytes} B, repos +${repoDelta(reposA, reposA2)} B`);
    o.log(`  re-ingest same bytes at new times (through the pipeline): objects +${objB.diskBytes - objA2.diskBytes} B (${objB.files - objA2.files} files), repos +${bytes(repoDelta(reposA2, reposB))}`);

    const maxAfter = Math.max(...rows.filter((r) => r.docs > 1).map((r) => r.marginalPerDocAfter ?? 0));
    const meta = rows.reduce((s, r) => s + r.diskBefore, 0);
    const metaAfter = rows.reduce((s, r) => s + r.diskAfter, 0);
    return {
      summary:
        `metadata ${fmt(Math.round(meta / n), 0)} B/frame over 6 stage repos loose -> ${fmt(Math.round(metaAfter / n), 0)} B/frame packed (max ${fmt(maxAfter, 0)} B/doc per stage above the fixed cost of a repo); ` +
        `objects ${fmt(objPerFrame, 0)} B/frame; re-ingest adds ${objA2.diskBytes - objA.diskBytes} B (duplicates) and ${objB.diskBytes - objA2.diskBytes} B (new times) of objects`,
      figures: {
        frames: n, valid, truncated: broken.length, blank: blanks.length, stages: rows, gc, packedRepoBaselineBytes: baseline,
        objects: { ...objectsBefore, perFrame: objPerFrame, originals: { count: originals.size, bytes: originalBytes }, standardized: { count: standardized.size, bytes: standardizedBytes } },
        otherDiskBytes: others,
        reingestSame: { duplicates: dupA.duplicates, objectBytesAdded: objA2.diskBytes - objA.diskBytes, repoBytesAdded: repoDelta(reposA, reposA2) },
        reingestNewTimes: { objectBytesAdded: objB.diskBytes - objA2.diskBytes, objectFilesAdded: objB.files - objA2.files, repoBytesAdded: repoDelta(reposA2, reposB) },
      },
      targets: [
        target('object bytes added by re-ingesting the same frames', '<', 1, objA2.diskBytes - objA.diskBytes, 'B'),
        target('object bytes added by the same bytes at new capture times', '<', 1, objB.diskBytes - objA2.diskBytes, 'B'),
        target('largest per-stage metadata per doc after gc, above a repo\'s fixed cost (README: well under 1 KB)', '<', 1024, maxAfter, 'B'),
      ],
      markdown: [
        '| stage repo | docs | loose files | on disk before gc | per doc | apparent per doc | after gc | per doc after gc | per doc above fixed cost | apparent per doc after gc |',
        '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
        ...rows.map((r) => `| ${r.stage} | ${r.docs} | ${r.filesBefore} | ${bytes(r.diskBefore)} | ${fmt(r.perDocBefore, 0)} B | ${fmt(r.apparentPerDocBefore, 0)} B | ${bytes(r.diskAfter)} | ${fmt(r.perDocAfter, 0)} B | ${fmt(r.marginalPerDocAfter, 0)} B | ${fmt(r.apparentPerDocAfter, 0)} B |`),
        '',
        `Objects: ${bytes(objectsBefore.diskBytes)} on disk for ${n} frames (${fmt(objPerFrame, 0)} B per frame): ${originals.size} originals ${bytes(originalBytes)}, ${standardized.size} standardized ${bytes(standardizedBytes)}. ` +
          `Other data: ${Object.entries(others).map(([k, v]) => `${k} ${bytes(v)}`).join(', ')}.`,
        '',
        `Re-ingest, same frames and capture times: ${dupA.duplicates}/${n} answered duplicate, +${objA2.diskBytes - objA.diskBytes} B objects, +${repoDelta(reposA, reposA2)} B repos. ` +
          `Same bytes at new capture times, through the pipeline: +${objB.diskBytes - objA2.diskBytes} B objects, +${bytes(repoDelta(reposA2, reposB))} repo metadata (new frame, detection, threat… documents, loose again until the next gc).`,
      ],
      notes: [
        'On disk = allocated blocks (st_blocks x 512, as repos diskUsage counts): isomorphic-git writes one zlib file per git object, each taking at least one 4 KiB block, which is what gc packs away. Apparent = file sizes.',
        'Per doc divides a repo by the documents at its head (alerts: without the cooldown files); per frame (in the figures) divides by every frame ingested. "Above fixed cost" subtracts the size of a packed repo holding one document (HEAD, config, refs, pack and index files, each a 4 KiB block at least) and divides by the other documents: what each further frame costs.',
        'The benchmark user has a rule on cats, so the cat frames make alerts (delivered to the outbox); blank frames make camera-fault alerts.',
      ],
    };
  } finally {
    await sys?.stop();
    tmp.cleanup();
  }
}

/** Benchmark 5. */
export const storage: Benchmark = { name: 'storage', title: 'Bytes on disk per frame and stage, before and after gc', run };
