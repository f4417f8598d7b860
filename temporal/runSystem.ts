import type { Server } from 'node:http';
import { loadChannelSettings } from '../alerts/index.js';
import type { Config } from '../lib/config.js';
import { formatBytes } from '../lib/format.js';
import { Collector } from '../ingest/collector.js';
import { DeviceRegistry } from '../ingest/devices.js';
import { FrameIngestor } from '../ingest/frameIngestor.js';
import { AutoPacker, ensureRepo, journalOf, openStore, recoverJournal, STAGE_REPOS, sweepTempFiles } from '../repos/index.js';
import { privateDataDir } from '../lib/privateDir.js';
import { laneQueues } from '../lib/taskQueues.js';
import { createApiServer } from '../server/index.js';
import { healthStatus } from '../server/health.js';
import { connectClient } from './connection.js';
import { startDevServer, type DevServer } from './devServer.js';
import { ensureReprocessSchedule } from './schedule.js';
import { makeBatchStarter } from './starter.js';
import { countPollers } from './pollers.js';
import { findStuckActivities, type StuckActivity } from './stuck.js';
import { installTemporalRuntime } from './worker.js';
import { WorkerProcess, workersState } from './workerProcess.js';

/** An activity failing this many tries in a row (about 15 s of retries) makes health report its batch held. */
const STUCK_ATTEMPTS = 5;

/**
 * `vigil start`: the whole system in one process tree — the embedded Temporal dev server (unless
 * TEMPORAL_ADDRESS names a cluster), the worker processes (VIGIL_WORKERS, default one; see
 * workerProcess.ts), the collector and the HTTP API. Resolves when a SIGINT/SIGTERM has stopped
 * everything cleanly. Unfinished workflows resume on the next start
 * (Temporal's state is a SQLite file in the data folder; the collector's is a JSON file).
 */
export async function runSystem(config: Config, log: (msg: string) => void = console.log): Promise<void> {
  // Broken alert channel settings (e.g. SMS credentials without SMS_FROM) stop the start now:
  // found by the first batch with an alert, they failed that batch and its frames were never recorded.
  loadChannelSettings();
  // Camera images, alert contacts and webhook URLs live here: readable by this user only.
  const shared = privateDataDir(config.VIGIL_DATA);
  if (shared) log(`vigil: warning: ${shared}`);
  const store = openStore(config.VIGIL_DATA);
  for (const r of STAGE_REPOS) await ensureRepo(store, r);
  await store.objects.prepare();
  // After a crash or power loss: what the frames journal holds is put back before anything reads.
  const recovered = await recoverJournal(store, 'frames');
  if (recovered.restored || recovered.appended || recovered.ref) {
    log(`vigil: frames journal replayed (${recovered.entries} commit(s)): ${recovered.restored} file(s) restored${recovered.ref ? `, branch moved to ${recovered.ref.slice(0, 12)}` : ''}`);
  }
  // Temp files of writers that died mid-write (an earlier run killed, a crash): never read.
  const swept = await sweepTempFiles(store);
  if (swept.removed) log(`vigil: removed ${swept.removed} temp file(s) (${formatBytes(swept.bytes)}) left by writers that stopped mid-write`);
  installTemporalRuntime();
  let dev: DevServer | null = null;
  let workers: WorkerProcess[] = [];
  let stopping = false;
  const stops: Array<() => Promise<void> | void> = [];
  const stopAll = async () => {
    for (const s of stops.reverse()) await Promise.resolve(s()).catch((e) => log(`vigil: while stopping: ${(e as Error).message}`));
  };
  // SIGINT/SIGTERM from the start: the first stops everything cleanly (during the start too, once
  // the step under way ends); a second one stops at once, killing the worker processes and the
  // embedded server (its own process group: a terminal's Ctrl-C does not reach it) rather than
  // leaving them behind. The journal of frames not yet checkpointed is replayed at the next start.
  let signals = 0;
  let ready = false;
  let requestStop = () => undefined as void;
  const stopRequested = new Promise<void>((r) => (requestStop = r));
  const onSignal = (sig: NodeJS.Signals) => {
    if (++signals === 1) return requestStop();
    log(`vigil: ${sig} again: stopping now, without waiting`);
    for (const w of workers) w.kill();
    if (dev?.process.pid && dev.process.exitCode === null) dev.process.kill('SIGKILL');
    process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const stoppedWhileStarting = () => {
    if (signals) throw new StartInterrupted();
  };
  try {
    if (!config.TEMPORAL_ADDRESS) {
      dev = await startDevServer({ dataDir: config.VIGIL_DATA, port: config.VIGIL_TEMPORAL_PORT, uiPort: config.VIGIL_TEMPORAL_UI_PORT });
      const d = dev;
      stops.push(() => d.stop());
    }
    stoppedWhileStarting();
    const address = config.TEMPORAL_ADDRESS ?? dev!.address;
    const client = await connectClient(config, address);
    stops.push(() => client.connection.close());
    stoppedWhileStarting();
    const schedule = await ensureReprocessSchedule(client, config).catch((e: Error) => {
      log(`vigil: nightly reprocessing schedule not set: ${e.message.split('\n')[0]} (a schedule set by an earlier start, if any, is unchanged)`);
      return undefined;
    });
    // The workers run in child processes at a lower priority (see workerProcess.ts), started
    // together; each is stopped (and waited for) before the embedded server.
    workers = Array.from({ length: config.VIGIL_WORKERS }, (_, i) => new WorkerProcess({ config: { ...config, TEMPORAL_ADDRESS: address }, nice: config.VIGIL_WORKER_NICE, name: `worker ${i + 1}`, log }));
    stops.push(() => Promise.all(workers.map((w) => w.stop())).then(() => undefined));
    // They load while the rest starts; `ready` waits for them (one that cannot start stops the start).
    const workersReady = Promise.all(workers.map((w) => w.start()));
    workersReady.catch(() => undefined);

    let lastError = '';
    const collector = new Collector(store, {
      maxFrames: config.VIGIL_BATCH_MAX_FRAMES,
      maxWaitMs: config.VIGIL_BATCH_MAX_WAIT_MS,
      start: makeBatchStarter(client, config),
      onError: (e) => {
        const msg = (e as Error).message.split('\n')[0] ?? '';
        if (msg !== lastError) log(`vigil: batches wait for Temporal: ${msg}`);
        lastError = msg;
      },
    });
    await collector.load();
    collector.run(500);
    stops.push(() => collector.stop());
    // Loose objects packed in the background (replay reads packed repos about twice as fast).
    const packer = new AutoPacker(store, { looseLimit: config.VIGIL_AUTOPACK_LOOSE, packLimit: config.VIGIL_AUTOPACK_PACKS, intervalMs: config.VIGIL_AUTOPACK_INTERVAL_MS, log });
    packer.start();
    stops.push(() => packer.stop());
    // Activities failing on try after try hold their batch without any other sign: looked for
    // every 30 s, for the health endpoint; so are the workers polling the task queue.
    let stuck: StuckActivity[] = [];
    // Workers seen polling lately (null: not known yet): none polls when this host runs none and
    // none runs elsewhere, or when a worker process hangs (alive, so its state says RUNNING).
    let pollers: number | null = null;
    const lookAtPipeline = () => {
      void findStuckActivities(client, { taskQueue: config.TEMPORAL_TASK_QUEUE, minAttempts: STUCK_ATTEMPTS }).then((s) => (stuck = s), () => undefined);
      void countPollers(client, config.TEMPORAL_TASK_QUEUE).then((n) => (pollers = n), () => undefined);
    };
    const stuckTimer = setInterval(lookAtPipeline, 30_000);
    stuckTimer.unref();
    stops.push(() => clearInterval(stuckTimer));
    const registry = new DeviceRegistry(config.VIGIL_DATA);
    const ingestor = new FrameIngestor(store, { maxBytes: config.VIGIL_MAX_FRAME_BYTES, onCommitted: (f, c) => collector.add(f, c) });
    const server: Server = createApiServer({
      store, registry, ingestor, maxBytes: config.VIGIL_MAX_FRAME_BYTES,
      health: () => {
        const parts = { worker: workersState(workers), workersRunning: workers.filter((w) => w.state() === 'RUNNING').length, collector: collector.stats(), framesJournalCheckpointError: journalOf(store, 'frames').lastError, stuckActivities: stuck, pollers };
        return { ...healthStatus(parts), temporal: address, taskQueue: config.TEMPORAL_TASK_QUEUE, ...parts, autoPack: packer.status() };
      },
    });
    await ingestor.warmUp();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.VIGIL_PORT, config.VIGIL_HOST, () => resolve());
    });
    stops.push(() => new Promise<void>((r) => {
      server.close(() => r());
      server.closeIdleConnections();
      setTimeout(() => server.closeAllConnections(), 5000).unref();
    }));
    // Last frames in, then the journal flushed and dropped (a restart then has nothing to replay).
    stops.push(() => journalOf(store, 'frames').checkpoint());
    // A failed checkpoint is tried again even when no frame comes to trigger it.
    const retry = setInterval(() => journalOf(store, 'frames').retryFailedCheckpoint(), 1000);
    retry.unref();
    stops.push(() => clearInterval(retry));
    stops.push(() => ingestor.drain());
    const a = server.address();
    const apiUrl = `http://${config.VIGIL_HOST}:${typeof a === 'object' && a ? a.port : config.VIGIL_PORT}`;
    log(`vigil: data        ${config.VIGIL_DATA}`);
    log(`vigil: API         ${apiUrl}/v1  (OpenAPI: ${apiUrl}/v1/openapi.json)`);
    log(`vigil: Temporal    ${address}${dev ? ` (embedded; Web UI ${dev.uiUrl})` : ''}`);
    // The workers load the model meanwhile (seconds): a stop asked for then does not wait for them.
    await Promise.race([workersReady, stopRequested]);
    stoppedWhileStarting();
    const pids = workers.map((w) => w.pid).join(', ');
    const where = workers.length ? `${workers.length} process(es) (pid ${pids}, nice ${config.VIGIL_WORKER_NICE}), ${config.VIGIL_THREADS} inference thread(s) in ${config.VIGIL_INFERENCE_SESSIONS} session(s) each` : 'none here (VIGIL_WORKERS=0: run `vigil worker` elsewhere)';
    log(`vigil: workers     ${where}; task queue ${config.TEMPORAL_TASK_QUEUE} (lanes ${laneQueues(config.TEMPORAL_TASK_QUEUE).join(', ')})`);
    const packRules = [config.VIGIL_AUTOPACK_LOOSE > 0 ? `${config.VIGIL_AUTOPACK_LOOSE} loose objects` : '', config.VIGIL_AUTOPACK_PACKS > 0 ? `${config.VIGIL_AUTOPACK_PACKS} packs` : ''].filter(Boolean);
    log(`vigil: packing     ${packRules.length ? `a repo once it has ${packRules.join(' or ')} (checked every ${Math.round(config.VIGIL_AUTOPACK_INTERVAL_MS / 1000)} s)` : 'off (vigil repo gc packs by hand)'}`);
    if (schedule !== undefined) {
      log(`vigil: reprocess   ${schedule ? `the last ${config.VIGIL_REPROCESS_DAYS} day(s) at "${config.VIGIL_REPROCESS_CRON}" ${config.VIGIL_REPROCESS_TZ} (schedule ${schedule})` : 'off'}`);
    }
    log('vigil: ready. Ctrl-C stops everything.');
    ready = true;
    await new Promise<void>((resolve) => {
      void stopRequested.then(resolve);
      dev?.process.once('exit', (code) => {
        if (!stopping) log(`vigil: the embedded Temporal server exited (${code}); stopping`);
        resolve();
      });
    });
  } catch (err) {
    if (!(err instanceof StartInterrupted)) throw err;
  } finally {
    stopping = true;
    // A terminal's Ctrl-C reaches the worker processes too: their exit is not a crash to restart.
    for (const w of workers) w.beginStop();
    if (signals || ready) log(`vigil: stopping… (running activities get up to ${Math.round(config.VIGIL_SHUTDOWN_GRACE_MS / 1000)} s to finish; Ctrl-C again stops at once)`);
    await stopAll();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  log('vigil: stopped.');
}

/** A stop asked for while `vigil start` was still starting (not an error: it stops cleanly). */
class StartInterrupted extends Error {}
