/**
 * Benchmark 7, commit growth: what one frame's commit to the frames repo costs once a camera has
 * sent frames at 1 frame/s all day, for each layout a repo can have (repos/layout.ts). A commit
 * rewrites every folder on the path of each document it writes, so its cost follows the size of the
 * folder the frame lands in: with day folders that is the whole day so far (86,400 entries by the
 * evening), with hour folders one hour (3,600 at most).
 */
import fs from 'node:fs';
import path from 'node:path';
import { commitChanges, gitdirOf, openStore, type RepoLayout, type RepoStore } from '../repos/index.js';
import { apparentSize, bytes, fmt, now, percentile, round, target, tempDir, type Benchmark, type BenchOptions, type BenchOutcome } from './lib/common.js';

const DAY = Date.UTC(2026, 10, 26);
/** A frame document about the size the ingest API writes; each one differs, as frame documents do. */
const doc = (ms: number) => JSON.stringify({ kind: 'frame', at: ms, pad: 'x'.repeat(300) });
const prov = (batchId: string) => ({ batchId, stage: 'bench', stageVersion: '1', inputs: [] });
const compact = (ms: number) => new Date(ms).toISOString().replace(/[-:.]/g, '');

interface Measured {
  layout: RepoLayout;
  /** Frames the camera sent before the measured commits (1 frame/s from midnight). */
  history: number;
  /** Median and p95 ms of a one-frame journaled commit: the day's last second, then the next day's first. */
  endOfDayMs: { p50: number; p95: number };
  nextDayMs: { p50: number; p95: number };
  /** Git object bytes each of the end-of-day commits added to the repo (compressed, as stored). */
  endOfDayBytesPerCommit: number;
}

/** A frames repo made with `layout`, holding `seconds` frames of one camera at 1 frame/s from midnight. */
async function filledRepo(dir: string, layout: RepoLayout, seconds: number) {
  const store = openStore(dir);
  // The layout file is read when the repo is created: a repo made with this layout.
  fs.mkdirSync(gitdirOf(store, 'frames'), { recursive: true });
  fs.writeFileSync(path.join(gitdirOf(store, 'frames'), 'vigil-layout'), `${layout}\n`);
  for (let from = 0; from < seconds; from += 3600) {
    const changes = [];
    for (let s = from; s < Math.min(seconds, from + 3600); s++) changes.push({ path: `u-cam/${compact(DAY + s * 1000)}.json`, content: doc(DAY + s * 1000) });
    await commitChanges(store, { repo: 'frames', changes, provenance: prov('fill'), summary: 'fill' });
  }
  return store;
}

/**
 * Fills one repo per layout, then times one-frame journaled commits, alternating between the
 * repos so that the disk's state (see tempDir) weighs on every layout alike.
 */
async function measure(layouts: readonly RepoLayout[], seconds: number, commits: number): Promise<Measured[]> {
  const tmps = layouts.map(() => tempDir('growth'));
  try {
    const stores: RepoStore[] = [];
    for (const [i, layout] of layouts.entries()) stores.push(await filledRepo(tmps[i]!.dir, layout, seconds));
    const objectBytes = () => Promise.all(stores.map(async (store) => (await apparentSize(path.join(gitdirOf(store, 'frames'), 'objects'))).bytes));
    const timed = async (at: (i: number) => number) => {
      const ms: number[][] = layouts.map(() => []);
      for (let i = 0; i < commits; i++) {
        for (const [k, store] of stores.entries()) {
          const t = now();
          await commitChanges(store, { repo: 'frames', changes: [{ path: `u-cam/${compact(at(i))}.json`, content: doc(at(i)) }], provenance: prov('one'), summary: 'one', durable: 'journal' });
          ms[k]!.push(now() - t);
        }
      }
      return ms.map((m) => ({ p50: round(percentile(m, 50)!, 2), p95: round(percentile(m, 95)!, 2) }));
    };
    // Still inside the last second of the filled history (milliseconds apart), then the next day.
    const last = DAY + (seconds - 1) * 1000;
    const before = await objectBytes();
    const endOfDay = await timed((i) => last + 1 + i);
    const added = (await objectBytes()).map((b, k) => Math.round((b - before[k]!) / commits));
    const nextDay = await timed((i) => DAY + 86_400_000 + i * 1000);
    return layouts.map((layout, k) => ({ layout, history: seconds, endOfDayMs: endOfDay[k]!, nextDayMs: nextDay[k]!, endOfDayBytesPerCommit: added[k]! }));
  } finally {
    tmps.forEach((t) => t.cleanup());
  }
}

async function run(o: BenchOptions): Promise<BenchOutcome> {
  const seconds = o.quick ? 4 * 3600 : 86_400;
  const commits = o.quick ? 20 : 100;
  o.log(`  one camera at 1 frame/s for ${seconds / 3600} h (${fmt(seconds, 0)} frames, committed an hour at a time), then ${commits} one-frame journaled commits at the end of that time and ${commits} on the next day, per layout`);
  const rows = await measure(['hour-folders', 'day-folders'], seconds, commits);
  for (const m of rows) o.log(`  ${m.layout}: one-frame commit p50 ${m.endOfDayMs.p50} ms (p95 ${m.endOfDayMs.p95}), ${bytes(m.endOfDayBytesPerCommit)} of git objects, after ${fmt(seconds, 0)} frames that day; ${m.nextDayMs.p50} ms (p95 ${m.nextDayMs.p95}) on the next day`);
  const [hour, day] = rows as [Measured, Measured];
  return {
    summary: `one-frame commit after ${seconds / 3600} h at 1 frame/s: hour folders ${hour.endOfDayMs.p50} ms and ${bytes(hour.endOfDayBytesPerCommit)}, day folders ${day.endOfDayMs.p50} ms and ${bytes(day.endOfDayBytesPerCommit)} (next day: ${hour.nextDayMs.p50} and ${day.nextDayMs.p50} ms)`,
    figures: { framesPerSecond: 1, historySeconds: seconds, commits, layouts: rows },
    // Not an issue target: the README's claim that hour folders bound a streaming camera's commits.
    targets: [target(`one-frame commit p50, hour folders, after ${seconds / 3600} h at 1 frame/s`, '<', 10, hour.endOfDayMs.p50, 'ms')],
    markdown: [
      '| layout (repos/layout.ts) | frames that day before the commit | one-frame commit p50 / p95 ms | git objects written per commit | next day\'s first commits p50 / p95 ms |',
      '| --- | --- | --- | --- | --- |',
      ...rows.map((r) => `| ${r.layout} | ${fmt(r.history, 0)} | ${r.endOfDayMs.p50} / ${r.endOfDayMs.p95} | ${bytes(r.endOfDayBytesPerCommit)} | ${r.nextDayMs.p50} / ${r.nextDayMs.p95} |`),
    ],
    notes: [
      'Each layout gets a fresh frames repo in a temp folder. The history is committed an hour (3,600 documents) at a time, without fsync; the measured commits are journaled (`durable: journal`, as the ingest API commits), one document each, alternating between the layouts\' repos so that the disk\'s state weighs on both alike (on ext4 without a journal, file creation is several times slower for minutes after many files were removed, e.g. by the previous bench run\'s clean-up).',
      'Repos made now use hour folders; repos made before keep day folders (or flat folders, which cost what a day folder costs after one day and grow from there).',
      'Each document differs (it names its second), as frame documents do: with identical documents every tree entry named the same blob and the trees compressed to almost nothing (12.5 KiB per commit for the hour folder instead of about 94 KiB).',
    ],
  };
}

/** Benchmark 7. */
export const commitGrowth: Benchmark = { name: 'commit-growth', title: 'Frames repo commit cost after a day of one camera at 1 frame/s, per layout', run };
