/**
 * Benchmark 2, ingest-api: sustained accepted frames/s and client-side latency of POST /v1/frames
 * for ~100 KB JPEGs from 8 concurrent camera clients on loopback, for a bounded time, measured
 * twice: with the collector starting batch workflows on the embedded Temporal but no worker
 * (ingest path alone), and with the whole pipeline running (a worker process, as `vigil start` runs
 * it, processing the batches while frames arrive). The load generator is a separate process.
 */
import { fork } from 'node:child_process';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { loadConfig } from '../lib/config.js';
import { commitChanges, diskUsage, gitdirOf, listFiles, lookupBlobs, readBranchHead, readJson } from '../repos/index.js';
import { bytes, fmt, now, procCpuMs, round, selfCpuMs, stats, target, tempDir, type Benchmark, type BenchOptions, type BenchOutcome } from './lib/common.js';
import type { LoadRequest, LoadResult } from './lib/loadgen.js';
import { startSystem, writeBenchRules } from './lib/system.js';

/** The embedded defaults (no environment). */
const DEFAULTS = loadConfig({});

const CLIENTS = 8;

type Mode = 'collector' | 'pipeline';

function runLoadgen(req: LoadRequest): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const child = fork(path.join(import.meta.dirname, 'lib', 'loadgen.ts'), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let done = false;
    child.once('message', (m: { ok: boolean; result?: LoadResult; error?: string }) => {
      done = true;
      if (m.ok && m.result) resolve(m.result);
      else reject(new Error(`load generator failed: ${m.error}`));
    });
    child.once('exit', (code) => {
      if (!done) reject(new Error(`load generator exited with ${code}`));
    });
    child.send(req);
  });
}

/** Open-loop run: frames/s offered in total and the cameras sending them. */
const OPEN_LOOP = { ratePerSec: 300, cameras: 30 };

/** A pipeline run whose worker committed nothing (neither validated nor detected a frame) during the window. */
function workerIdle(worked: { validated: number; detected: number } | null): boolean {
  return worked !== null && worked.validated + worked.detected === 0;
}

async function measure(o: BenchOptions, mode: Mode, durationMs: number, warmupMs: number, clients = CLIENTS, ratePerSec?: number) {
  const tmp = tempDir(`ingest-${mode}`);
  const devices = Array.from({ length: clients }, (_, i) => `cam${i + 1}`);
  const sys = await startSystem({
    // Batches as `vigil start` cuts them by default.
    dataDir: tmp.dir, rulesDir: writeBenchRules(tmp.dir), threads: o.threads, batchMaxFrames: DEFAULTS.VIGIL_BATCH_MAX_FRAMES, chunkSize: DEFAULTS.VIGIL_CHUNK_SIZE,
    worker: mode === 'pipeline' ? 'process' : 'none', devices,
  });
  try {
    // How long the API's event loop was kept from running.
    const loopDelay = monitorEventLoopDelay({ resolution: 10 });
    loopDelay.enable();
    const cpu0 = { self: selfCpuMs(), temporal: procCpuMs(sys.temporalPid) ?? 0, worker: sys.workerPid ? procCpuMs(sys.workerPid) ?? 0 : 0 };
    const t0 = now();
    const r = await runLoadgen({
      apiUrl: sys.apiUrl, keys: devices.map((d) => sys.keys.get(d)!), cacheDir: o.cacheDir, baseFrom: 1000, baseCount: 16,
      warmupMs, durationMs, captureStartMs: Date.now() - 5 * 86_400_000, ...(ratePerSec ? { ratePerSec } : {}),
    });
    const runMs = now() - t0;
    loopDelay.disable();
    const eventLoopDelayMs = { p99: round(loopDelay.percentile(99) / 1e6, 1), max: round(loopDelay.max / 1e6, 1) };
    const cpu = {
      vigilProcessCores: round((selfCpuMs() - cpu0.self) / runMs, 2),
      temporalServerCores: round(((procCpuMs(sys.temporalPid) ?? 0) - cpu0.temporal) / runMs, 2),
      workerProcessCores: sys.workerPid ? round(((procCpuMs(sys.workerPid) ?? 0) - cpu0.worker) / runMs, 2) : null,
      loadGeneratorCores: round(r.cpuMs / runMs, 2),
    };
    const files = await listFiles(sys.store, 'frames');
    const framesInRepo = files.length;
    // What the pipeline did next to the ingest (fresh data folder: everything in it is this run's).
    const count = async (repo: string) => (await listFiles(sys.store, repo).catch(() => [])).length;
    const worked = mode === 'pipeline' ? { validated: (await count('standardized')) + (await count('invalid')), detected: await count('detections') } : null;
    // The ingest path's parts, on the repo as the run left it: a repo read by path (readJson, a
    // full path walk), the conflict/duplicate check as the ingestor does it (head re-read, which
    // the ingestor does at most every 200 ms, then a lookup through the tree cache), a durable
    // object put (the ingest path stages its bytes and publishes them in the group commit
    // instead) and a durable group commit of 8 frame documents.
    const probe = { readJsonMs: 0, lookupMs: 0, objectPutMs: 0, commit8Ms: 0 };
    {
      let t = now();
      const sample = files.filter((_, i) => i % Math.max(1, Math.floor(files.length / 20)) === 0).slice(0, 20);
      for (const f of sample) await readJson(sys.store, 'frames', f.path);
      probe.readJsonMs = round((now() - t) / Math.max(1, sample.length), 2);
      t = now();
      for (const f of sample) await lookupBlobs(sys.store, 'frames', await readBranchHead(sys.store, 'frames'), [f.path]);
      probe.lookupMs = round((now() - t) / Math.max(1, sample.length), 2);
      t = now();
      for (let i = 0; i < 10; i++) await sys.store.objects.put(randomBytes(100_000));
      probe.objectPutMs = round((now() - t) / 10, 2);
      const doc = await readJson(sys.store, 'frames', files[files.length - 1]!.path);
      const dir = files[files.length - 1]!.path.split('/')[0]!;
      t = now();
      await commitChanges(sys.store, {
        repo: 'frames', changes: Array.from({ length: 8 }, (_, i) => ({ path: `${dir}/99991231T0000000${i}0Z.json`, content: JSON.stringify(doc, null, 1) + '\n' })),
        provenance: { batchId: 'bench-probe', stage: 'ingest', stageVersion: '1', inputs: [] }, summary: 'bench probe', durable: true,
      });
      probe.commit8Ms = round(now() - t, 1);
    }
    o.log(`    ingest parts at the end (frames repo of ${framesInRepo} docs): repo read ${probe.readJsonMs} ms, frame lookup at head ${probe.lookupMs} ms, 100 KB object put ${probe.objectPutMs} ms, durable commit of 8 frame docs ${probe.commit8Ms} ms`);
    const repoBytes = await diskUsage(gitdirOf(sys.store, 'frames'));
    const batchesStarted = sys.batches.length;
    const batchesDone = sys.batches.filter((b) => b.completedAt).length;
    const rate = round((r.accepted * 1000) / durationMs, 1);
    const lat = stats(r.latencies);
    const tl = r.timeline;
    const third = Math.max(1, Math.floor(tl.length / 3));
    const firstRate = round(tl.slice(0, third).reduce((a, b) => a + b, 0) / third, 1);
    const lastRate = round(tl.slice(-third).reduce((a, b) => a + b, 0) / third, 1);
    o.log(`  ${mode}, ${clients} clients${ratePerSec ? ` (open loop, ${ratePerSec} frames/s offered)` : ''}: ${fmt(rate)} accepted frames/s (${r.accepted} in ${durationMs / 1000} s, mean ${bytes(r.meanBytes)}), latency p50 ${lat.p50} p95 ${lat.p95} p99 ${lat.p99} max ${lat.max} ms; first third ${firstRate}/s, last third ${lastRate}/s; statuses ${JSON.stringify(r.statuses)}`);
    if (worked) o.log(`    the worker validated ${worked.validated} and detected ${worked.detected} frame(s) during the run${workerIdle(worked) ? ': it processed nothing, so this run is not a measurement next to the pipeline (its targets are left unmeasured)' : ''}`);
    o.log(`    CPU (cores busy on average): API/collector process ${cpu.vigilProcessCores}${cpu.workerProcessCores !== null ? `, worker process ${cpu.workerProcessCores}` : ''}, Temporal server ${cpu.temporalServerCores}, load generator ${cpu.loadGeneratorCores}; event loop delay p99 ${eventLoopDelayMs.p99} ms, max ${eventLoopDelayMs.max} ms`);
    if (r.errors.length) o.log(`    errors: ${r.errors.join(' | ')}`);
    if (r.sendLag) o.log(`    the load generator sent the frames p50 ${r.sendLag.p50} p99 ${r.sendLag.p99} max ${r.sendLag.max} ms after they were due (included in the latency)`);
    if (r.resetRetries) o.log(`    ${r.resetRetries} request(s) sent again: the server had closed their idle kept-alive connection as they were sent (see bench/lib/http.ts)`);
    return {
      mode, clients, ratePerSec: ratePerSec ?? null, cpu, eventLoopDelayMs, probe, durationMs, warmupMs, accepted: r.accepted, framesPerSec: rate, latencyMs: lat, statuses: r.statuses,
      meanFrameBytes: r.meanBytes, timeline: tl, firstThirdPerSec: firstRate, lastThirdPerSec: lastRate,
      framesInRepo, worked, framesRepoBytes: repoBytes, batchesStarted, batchesCompleted: batchesDone, collector: sys.collector.stats(), errors: r.errors, resetRetries: r.resetRetries, sendLagMs: r.sendLag,
    };
  } finally {
    await sys.stop();
    tmp.cleanup();
  }
}

async function run(o: BenchOptions): Promise<BenchOutcome> {
  const durationMs = o.quick ? 4000 : 15_000;
  const warmupMs = o.quick ? 1000 : 2000;
  o.log(`  ${CLIENTS} clients (one device each), ${durationMs / 1000} s measured after ${warmupMs / 1000} s warm-up, per mode`);
  const collector = await measure(o, 'collector', durationMs, warmupMs);
  const pipeline = await measure(o, 'pipeline', durationMs, warmupMs);
  // Group commit: one flush commits every request waiting, so more concurrent clients means bigger groups.
  const wide = o.quick ? null : await measure(o, 'collector', durationMs, warmupMs, 32);
  // Cameras send on their own clock, not when the last frame was answered: the open-loop run
  // offers the target rate and shows the latency at it (counted from when each frame was due).
  const open = o.quick ? null : await measure(o, 'pipeline', durationMs, warmupMs, OPEN_LOOP.cameras, OPEN_LOOP.ratePerSec);
  const p99 = (m: typeof collector) => m.latencyMs.p99;
  // A pipeline run in which the worker committed nothing measured the ingest path alone.
  const nextToPipeline = (m: typeof collector, v: number | null) => (workerIdle(m.worked) ? null : v);
  return {
    summary:
      `collector only: ${collector.framesPerSec} frames/s, p99 ${collector.latencyMs.p99} ms; ` +
      `with the pipeline running: ${pipeline.framesPerSec} frames/s, p99 ${pipeline.latencyMs.p99} ms` +
      (open ? `; ${OPEN_LOOP.ratePerSec}/s offered with the pipeline running: p99 ${open.latencyMs.p99} ms` : '') + ' (targets >= 300/s, p99 < 100 ms)',
    figures: { collector, pipeline, collector32Clients: wide, openLoop: open },
    targets: [
      target('accepted frames/s, collector running (no worker)', '>=', 300, collector.framesPerSec, 'frames/s'),
      target('p99 latency, collector running (no worker)', '<', 100, p99(collector), 'ms'),
      target('accepted frames/s, whole pipeline running', '>=', 300, nextToPipeline(pipeline, pipeline.framesPerSec), 'frames/s'),
      target('p99 latency, whole pipeline running', '<', 100, nextToPipeline(pipeline, p99(pipeline)), 'ms'),
      ...(open ? [target(`p99 latency at ${OPEN_LOOP.ratePerSec} frames/s offered (open loop, ${OPEN_LOOP.cameras} cameras), whole pipeline running`, '<', 100, nextToPipeline(open, p99(open)), 'ms')] : []),
    ],
    markdown: [
      '| mode | clients | accepted frames/s | p50 ms | p95 ms | p99 ms | max ms | first third /s | last third /s | cores busy: API / worker / temporal / load gen | event loop delay p99 / max ms | frames in repo | worker during the run: validated / detected | frames repo on disk | sent again (keep-alive race) | load gen sent late: p99 / max ms |',
      '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
      ...[collector, pipeline, wide, open].filter((m) => m !== null).map((m) => `| ${m.mode === 'collector' ? 'collector + Temporal, no worker' : 'whole pipeline (worker process)'}${m.ratePerSec ? `, open loop: ${m.ratePerSec} frames/s offered` : ''} | ${m.clients} | ${m.framesPerSec} | ${m.latencyMs.p50} | ${m.latencyMs.p95} | ${m.latencyMs.p99} | ${m.latencyMs.max} | ${m.firstThirdPerSec} | ${m.lastThirdPerSec} | ${m.cpu.vigilProcessCores} / ${m.cpu.workerProcessCores ?? '-'} / ${m.cpu.temporalServerCores} / ${m.cpu.loadGeneratorCores} | ${m.eventLoopDelayMs.p99} / ${m.eventLoopDelayMs.max} | ${m.framesInRepo} | ${m.worked ? `${m.worked.validated} / ${m.worked.detected}` : '-'} | ${bytes(m.framesRepoBytes)} | ${m.resetRetries} | ${m.sendLagMs ? `${m.sendLagMs.p99} / ${m.sendLagMs.max}` : '-'} |`),
      '',
      '| parts of the ingest path, after the run | frames in repo | repo read by path | frame lookup at head (as ingest does) | 100 KB object put (fsync) | durable commit of 8 frame docs |',
      '| --- | --- | --- | --- | --- | --- |',
      ...[collector, pipeline, wide, open].filter((m) => m !== null).map((m) => `| ${m.mode}, ${m.clients} clients${m.ratePerSec ? `, ${m.ratePerSec}/s offered` : ''} | ${m.framesInRepo} | ${m.probe.readJsonMs} ms | ${m.probe.lookupMs} ms | ${m.probe.objectPutMs} ms | ${m.probe.commit8Ms} ms |`),
    ],
    notes: [
      `${CLIENTS} concurrent clients in a separate process, one keep-alive connection and one registered device each, POSTing back to back; mean body ${bytes(collector.meanFrameBytes)} (1280x720 JPEGs, each made unique with a JPEG comment segment so no request is a duplicate).`,
      '"collector" mode: API + collector + embedded Temporal dev server; batch workflows are started but no worker polls, so it measures the ingest path alone. "pipeline" mode: the same plus one worker process at nice 10 (VIGIL_WORKER_NICE) processing batches during the run (what `vigil start` does from 2026-11-29; before, the worker ran in the API\'s process). "Worker during the run" counts the frames the worker committed to standardized or invalid (validate stage) and to detections (the data folder is fresh per run). Validate and detect have task queues of their own (lanes, from the night of 2026-11-28; before, they shared one queue, and while frames arrived far faster than the detector runs, about 8 frames/s here, the worker validated and did not detect: 288 / 0 in the 21:35 run); a pipeline run in which it committed nothing measured the ingest path alone, and its targets are left unmeasured.',
      'Latency is client-side, from sending the request to the end of the 202 answer, which comes after the durable group commit of the frame documents: on Linux (this run) the frames\' bytes, the commit\'s git objects, its batch index line and its branch move are appended to the frames repo\'s write-ahead journal with one fdatasync before the branch moves (repos/journal.ts; a checkpoint every 30 s or 256 MB runs `sync -f` and drops the journal, and is part of the measured window when it falls in it); the collector records the frames in memory and saves its state behind the answer (the frames commit is the durable record).',
      'Event loop delay: perf_hooks.monitorEventLoopDelay in the API process during the run. The worker runs in a process of its own at a lower priority (temporal/workerProcess.ts), so the API\'s event loop serves HTTP only, and the API gets the cores first; the two still share 2 cores with the Temporal server and the load generator. Until 2026-11-29 the worker ran in the API\'s process and its activities\' JavaScript (git writes, Temporal workflow tasks) ran on the event loop that serves HTTP: 230-239 frames/s there against 261-323 with the worker process, in alternated 20 s test-harness runs (8 clients, closed loop).',
      'Each run has a fresh data folder, removed when the bench process exits rather than after the run: on ext4 without a journal (see the machine line) the inode allocator skips, and looks up, every inode freed in the last 60-300 s, so removing a run\'s tens of thousands of files made creating a file take ~0.6 ms instead of 0.04-0.14 ms (measured with a create loop after removing 20,000 files). Vigil frees inodes on this path too (the collector\'s state file, replaced up to 10 times a second, and the packer\'s removal of what it packed: since 2026-11-29 two files per frames commit instead of about 20 loose objects), so on such a disk its own churn counts against it in every run. (On 2026-11-29 the same create loop right after removing 28,000 files took 0.05 ms per file: the effect does not always show.)',
      'Sent again: requests the load generator sent a second time because the server closed their idle kept-alive connection just as they went out (ECONNRESET or "socket hang up" on a reused socket, before the server read them). node:http\'s Agent does not heed the server\'s `Keep-Alive: timeout=5` (closed at 6 s by Node 20), so the load generator\'s agent closes idle sockets after 3 s itself; what is left of the race is answered as Node\'s documentation says (`req.reusedSocket`): one resend, on a new connection. Their latency counts from the first try. Before 2026-11-29 they were counted as errors (the "read ECONNRESET" seen now and then); until 2026-11-29 the resend reused the pool and could hit the same race ("socket hang up").',
      '"worker during the run: validated / detected" counts frames whose stage commit landed inside the window. Each stage commits a whole chunk (32 frames) at once, and a chunk\'s inference takes several seconds at the CPU share the worker gets here, so a detected count of 0 means no chunk\'s detection finished within the window, not that nothing was inferred: the worker\'s cores (the cores column) show its load. A run whose worker committed nothing at all is not counted as next to the pipeline.',
      'Closed loop (the first three rows): only requests that started and ended inside the measured window are counted. A third run with 32 clients (collector mode; not with --quick) shows how the group commit scales with concurrency.',
      `Open loop (last row; not with --quick): ${OPEN_LOOP.cameras} cameras each send ${OPEN_LOOP.ratePerSec / OPEN_LOOP.cameras} frames/s on a fixed schedule, whether or not their earlier frames were answered (as cameras do), ${OPEN_LOOP.ratePerSec} frames/s in all, with the whole pipeline running; latency counts from when each frame was due, and every frame due in the window counts however late its answer, so a server that falls behind shows it in the latency (no coordinated omission). The generator's own lateness (when it sent each frame, against when it was due; its timers share the cores too) is part of that latency and shown in its own column. Its "accepted frames/s" is the frames due in the window that were accepted, per second of the window. A journal checkpoint falling in the window slows it: while its \`sync -f\` runs, file creation and the group commits' fdatasync wait on the disk. Before the journal wrote frames' bytes back in the background (from the evening of 2026-11-28), a checkpoint flushed ~250 MB at once in 0.5-1.6 s and stalled commits for up to a second; in alternated test-harness runs at 300 frames/s offered, p99 was 0.76-0.80 s without write-back and 0.17-0.52 s with it (0.28-0.37 s against 0.09-0.16 s at 200 frames/s). Outside checkpoints the row is near this machine's capacity (p95 ~100-200 ms): the API, the worker and the load generator share 2 cores. With the worker in a process of its own (from 2026-11-29), alternated 20 s test-harness runs of this row gave p99 from 0.21 s to 3.9 s (p50 26 ms to 3.3 s) on this disk, which session 14 put down to earlier runs' removals. Latency by due time (test harness, 2026-11-29 midday) showed instead a backlog built in the first second of load and drained only seconds later: the first frames waited 0.3-1 s for the API's writer thread to load (it started on first use) and for the first group commits, and at 300/s offered the spare capacity to catch up is small. Since then the API starts the thread before it listens, and a group commit writes its git objects as one pack and index instead of about 20 loose files; in 4 alternated 15 s harness runs, the code before gave p99 1192-1334 ms (p50 87-509) and the code after 131-298 ms (p50 30-60), the API process busy 0.77 cores instead of 0.83. What is left, in 40 s harness runs: p99 132-137 ms with the packer kept from the frames repo, 222-600 ms with it rolling up the small packs every 10 s (its deletions in the folder where the commits create their packs: 1,000 deletions every 10 s in the object store's tmp folder raised p99 to 191-274 ms, in another folder to 150-152 ms), and 1 s stalls now and then whose cause was not found.`,
      'Tried on 2026-11-29, not adopted: bigger batches. At 300 frames/s the collector starts a batch workflow about every 0.1 s (32 frames each, VIGIL_BATCH_MAX_FRAMES), far ahead of the pipeline (about 12 frames/s here), and the Temporal server spends about 0.3 cores starting them. With batches of 256 (8 chunks, run 4 at a time), in 30 s harness runs of this row, Temporal took 0.14-0.16 cores instead of 0.30-0.33 and p50 fell from 21-26 ms to 9-13 ms, but p99 was 91-296 ms in 4 runs against 147-189 ms in 3: the tail is set by stalls, not by the CPU. Not made the default because, under a backlog, a big batch\'s later chunks start only after its first 4 are done, behind later batches\' first chunks (the oldest frames are no longer detected first), and one chunk failing for good fails the whole batch: 256 frames instead of 32. The stalls left are mostly the journal\'s fdatasync taking 200-340 ms now and then, outside checkpoints and packer runs (instrumented harness run); the disk writes 711 MB/s sequentially (dd, conv=fdatasync), so it is not its bandwidth. On 2026-11-29 a kernel stack sampler put the waiting threads in folio_wait_writeback (fdatasync waiting for pages under writeback) while a block trace of the same kind of run saw every write done by the device in under 22 ms (p99.9 4 ms): the wait is in the kernel\'s writeback path on a CPU-saturated machine, not in the device. Journal segments pre-filled with zeros (appends then allocate no blocks) made it no better (p99 0.34 and 0.73 s in 2 runs, 0.19 s in a run without). Not found further.',
      'After each run, the parts of the ingest path are timed on the repo as the run left it (figures.*.probe): one frames-repo read by path (readJson; no longer on the ingest path), the duplicate/conflict lookup the ingestor does (lookup through the tree cache; the probe re-reads the head every time, the ingestor at most every 200 ms), one durable 100 KB object put (put(): stage, fdatasync, rename, folder fsync; what the validate stage uses, no longer on the ingest path), one durable commit of 8 frame documents.',
    ],
  };
}

/** Benchmark 2. */
export const ingestApi: Benchmark = { name: 'ingest-api', title: 'Ingest API sustained rate and latency', run };
