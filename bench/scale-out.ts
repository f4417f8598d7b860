/**
 * Benchmark 6, scale-out: benchmark 1(b) with two worker processes (`node bin/vigil.js worker`)
 * on one embedded Temporal server, same data folder and task queue, the API and collector in this
 * process and no worker of its own. Each worker gets half the cores as intra-op threads. Frames
 * per worker come from the workflow histories (which worker identity ran each detect activity).
 * On a 2-core machine this measures contention, not scale.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import { fmt, procCpuMs, round, tempDir, type Benchmark, type BenchOptions, type BenchOutcome } from './lib/common.js';
import { benchFrames } from './lib/frames.js';
import { CaptureClock } from './lib/http.js';
import { VIGIL_BIN } from './lib/paths.js';
import { timedRun, warmUp } from './lib/pipeline.js';
import { startSystem, writeBenchRules, type RunningSystem } from './lib/system.js';
import { BATCH_FRAMES, CHUNK_SIZE, pipelineSizes } from './pipeline-vs-detector.js';

const WORKERS = 2;

/** Spawns one `vigil worker` and resolves once it is polling (it prints its ready line). */
function spawnWorker(sys: RunningSystem, threads: number, rulesDir: string): Promise<ChildProcess> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    VIGIL_DATA: sys.config.VIGIL_DATA, TEMPORAL_ADDRESS: sys.address, TEMPORAL_TASK_QUEUE: sys.config.TEMPORAL_TASK_QUEUE,
    VIGIL_THREADS: String(threads), VIGIL_RULES: rulesDir, VIGIL_MODEL: sys.config.VIGIL_MODEL, VIGIL_ALERT_COOLDOWN_MS: '0', VIGIL_LOG_LEVEL: 'WARN',
  };
  const child = spawn(process.execPath, [VIGIL_BIN, 'worker'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`worker ${child.pid} not ready after 120 s: ${out.slice(-300)}`)), 120_000);
    const onData = (b: Buffer) => {
      out += b.toString();
      if (out.includes('vigil worker: task queue')) {
        clearTimeout(timer);
        resolve(child);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (b: Buffer) => (out += b.toString()));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`worker exited with ${code}: ${out.slice(-300)}`));
    });
  });
}

async function stopWorker(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(t);
}

async function run(o: BenchOptions): Promise<BenchOutcome> {
  const size = pipelineSizes(o.quick);
  const threads = Math.max(1, Math.floor(o.threads / WORKERS));
  const warm = await benchFrames(o.cacheDir, 'mixed', 0, size.warmup);
  const frames = await benchFrames(o.cacheDir, 'mixed', 1000, size.frames);
  const tmp = tempDir('scaleout');
  let sys: RunningSystem | null = null;
  const workers: ChildProcess[] = [];
  try {
    const rulesDir = writeBenchRules(tmp.dir);
    sys = await startSystem({ dataDir: tmp.dir, rulesDir, threads: o.threads, batchMaxFrames: BATCH_FRAMES, chunkSize: CHUNK_SIZE, worker: 'none' });
    o.log(`  starting ${WORKERS} worker processes (${threads} intra-op thread(s) each)…`);
    const s = sys;
    workers.push(...(await Promise.all(Array.from({ length: WORKERS }, () => spawnWorker(s, threads, rulesDir)))));
    const clock = new CaptureClock();
    await warmUp(sys, warm, clock);
    const cpu0 = workers.map((w) => procCpuMs(w.pid!) ?? 0);
    o.log(`  warmed up; timing ${frames.length} frames…`);
    const r = await timedRun(sys, frames, clock);
    const cpu = workers.map((w, i) => round(((procCpuMs(w.pid!) ?? 0) - cpu0[i]!) / r.wallMs, 2));
    const perWorker = workers.map((w, i) => {
      const id = Object.keys(r.breakdown.detectFramesByWorker).find((k) => k.startsWith(`${w.pid}@`));
      const detected = id ? r.breakdown.detectFramesByWorker[id]! : 0;
      return { pid: w.pid, identity: id ?? null, framesDetected: detected, framesPerSec: round((detected * 1000) / r.wallMs, 2), coresBusy: cpu[i] };
    });
    o.log(`  ${r.framesPerSec} frames/s total; per worker: ${perWorker.map((p) => `${p.framesDetected} frames (${p.framesPerSec}/s, ${p.coresBusy} cores busy)`).join(', ')}`);
    const single = o.earlier.get('pipeline-vs-detector')?.figures as { pipeline?: { framesPerSec?: number }; bare?: { framesPerSec?: number } } | undefined;
    const ref = single?.pipeline?.framesPerSec;
    const vs = ref ? ` (one worker process with ${o.threads} threads: ${ref} frames/s in this run)` : '';
    return {
      summary: `${WORKERS} worker processes x ${threads} thread(s): ${r.framesPerSec} frames/s total, ${perWorker.map((p) => `${p.framesPerSec}`).join(' + ')} per worker${vs}; ${os.availableParallelism()} cores: contention, not scale`,
      figures: { workers: WORKERS, threadsPerWorker: threads, batchMaxFrames: BATCH_FRAMES, chunkSize: CHUNK_SIZE, run: r, perWorker, singleWorkerReference: ref ?? null },
      targets: [],
      markdown: [
        '| | frames | frames/s | detect activities\' frames | cores busy |',
        '| --- | --- | --- | --- | --- |',
        `| total (${WORKERS} workers) | ${r.frames} | ${r.framesPerSec} | ${perWorker.reduce((a, p) => a + p.framesDetected, 0)} | ${round(cpu.reduce((a, b) => a + b, 0), 2)} |`,
        ...perWorker.map((p, i) => `| worker ${i + 1} (pid ${p.pid}) | | ${p.framesPerSec} | ${p.framesDetected} | ${p.coresBusy} |`),
        ...(ref ? [`| reference: one worker process, ${o.threads} threads (pipeline-vs-detector, same run) | | ${ref} | | |`] : []),
        '',
        `Activity time per frame (ms): ${Object.entries(r.msPerFrameByStage).map(([k, v]) => `${k} ${v}`).join(', ')}.`,
      ],
      notes: [
        `Two \`node bin/vigil.js worker\` processes against the embedded Temporal dev server (TEMPORAL_ADDRESS), same VIGIL_DATA and task queue, VIGIL_THREADS=${threads} each; API and collector in the benchmark process, no other worker. Batch ${BATCH_FRAMES}, chunk ${CHUNK_SIZE}; same ${frames.length} frames as pipeline-vs-detector (b), after a ${warm.length}-frame warm-up.`,
        `Per-worker frames come from the detect activities' worker identity (pid@host) in the workflow histories; cores busy = the worker process's CPU time / wall time.`,
        `The machine has ${os.availableParallelism()} cores shared by both workers, the Temporal server, the API and the collector: this measures contention between workers, not scale-out.`,
      ],
    };
  } finally {
    await Promise.all(workers.map(stopWorker));
    await sys?.stop();
    tmp.cleanup();
  }
}

/** Benchmark 6. */
export const scaleOut: Benchmark = { name: 'scale-out', title: 'Two worker processes on one Temporal', run };
