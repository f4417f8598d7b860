import { continueAsNew, executeChild, patched, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import type { FrameRef } from '../lib/schemas.js';
import { laneQueue, type Lane } from '../lib/taskQueues.js';

const NON_RETRYABLE = ['E_CORRUPT', 'E_BAD_ID', 'E_CONFIG', 'E_HASH_MISMATCH'];

const STAGE_OPTIONS = {
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute', nonRetryableErrorTypes: NON_RETRYABLE },
} as const;

/** The heavy stages on their lane's task queue (lib/taskQueues.ts), beside this workflow's queue. */
function laneActivities(lane: Lane) {
  return proxyActivities<Activities>({ ...STAGE_OPTIONS, taskQueue: laneQueue(workflowInfo().taskQueue, lane) });
}

const quick = proxyActivities<Activities>({
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute', nonRetryableErrorTypes: NON_RETRYABLE },
});

/**
 * Delivery retries with backoff; the last attempt records a failure instead of throwing. A chunk's
 * deliveries share one activity, so its time limit allows for many slow providers (the heartbeat
 * still notices a dead worker within 30 s).
 */
function deliveryActivities(maxAttempts: number) {
  return proxyActivities<Activities>({
    startToCloseTimeout: '15 minutes',
    heartbeatTimeout: '30 seconds',
    retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: maxAttempts, nonRetryableErrorTypes: NON_RETRYABLE },
  });
}

/** Input of a batch workflow: references to frames, never their bytes. */
export interface BatchInput {
  batchId: string;
  site: string;
  framesCommit: string;
  frames: FrameRef[];
  /** Frames per chunk; a larger batch fans out into child workflows. */
  chunkSize?: number;
  /** Children started per run before continuing as new (bounds history size). */
  chunksPerRun?: number;
  /** Delivery attempts per alert and channel (must match the worker's VIGIL_ALERT_MAX_ATTEMPTS). */
  maxDeliveryAttempts?: number;
  /** The rules commit in force; resolved once per batch when absent (a replay may pin another). */
  rulesCommit?: string | null;
  /** False when reprocessing history: new alerts are recorded, not delivered (default true). */
  deliver?: boolean;
  /** Carried across continue-as-new. */
  done?: BatchSummary;
}

/** Input of one chunk. */
export interface ChunkInput {
  batchId: string;
  part: string;
  framesCommit: string;
  frames: FrameRef[];
  rulesCommit: string | null;
  maxDeliveryAttempts: number;
  deliver?: boolean;
}

/** What a batch (or chunk) did. */
export interface BatchSummary {
  frames: number;
  standardized: number;
  invalid: number;
  cameraFaults: number;
  detected: number;
  skippedDetections: number;
  objects: number;
  unsafe: number;
  alerts: number;
  suppressed: number;
  delivered: number;
  failedDeliveries: number;
  /** Deliveries sent without an answer on a channel that is never retried (e-mail, SMS): maybe delivered. */
  unknownDeliveries: number;
  rulesCommit: string | null;
  rulesErrors: string[];
  commits: string[];
}

const empty = (): BatchSummary => ({
  frames: 0, standardized: 0, invalid: 0, cameraFaults: 0, detected: 0, skippedDetections: 0, objects: 0,
  unsafe: 0, alerts: 0, suppressed: 0, delivered: 0, failedDeliveries: 0, unknownDeliveries: 0, rulesCommit: null, rulesErrors: [], commits: [],
});

function add(a: BatchSummary, b: BatchSummary): BatchSummary {
  const out = empty();
  for (const k of Object.keys(out) as (keyof BatchSummary)[]) {
    if (typeof out[k] === 'number') (out[k] as number) = ((a[k] as number | undefined) ?? 0) + ((b[k] as number | undefined) ?? 0); // a summary from an older version may lack a field
  }
  out.rulesCommit = b.rulesCommit ?? a.rulesCommit;
  out.rulesErrors = a.rulesErrors.length ? a.rulesErrors : b.rulesErrors;
  out.commits = [...a.commits, ...b.commits].slice(-50);
  return out;
}

/** One chunk of a batch through the DAG: validate -> detect -> threats -> alerts -> records. */
export async function chunkWorkflow(input: ChunkInput): Promise<BatchSummary> {
  const s = empty();
  s.rulesCommit = input.rulesCommit;
  // Validate and detect on lanes of their own, so that threats and alerts never queue behind
  // other batches' heavy stages. Replay does not compare task queues: histories begun on one queue
  // replay, and schedule what follows on the lanes (test/history-replay.test.ts).
  const validating = laneActivities('validate');
  const detecting = laneActivities('detect');
  const v = await validating.validateStage({ batchId: input.batchId, framesCommit: input.framesCommit, frames: input.frames });
  s.frames = input.frames.length;
  s.standardized = v.accepted.length;
  s.invalid = v.rejected.length;
  s.cameraFaults = v.rejected.filter((r) => r.cameraFault).length;
  if (v.standardizedCommit) s.commits.push(`standardized@${v.standardizedCommit}`);
  if (v.invalidCommit) s.commits.push(`invalid@${v.invalidCommit}`);
  let detectionsCommit: string | null = null;
  let threatsCommit: string | null = null;
  let unsafePaths: string[] = [];
  if (v.accepted.length && v.standardizedCommit) {
    const d = await detecting.detectStage({ batchId: input.batchId, standardizedCommit: v.standardizedCommit, frames: v.accepted });
    s.detected = d.detected;
    s.skippedDetections = d.skipped;
    s.objects = d.objects;
    detectionsCommit = d.detectionsCommit;
    if (detectionsCommit) {
      s.commits.push(`detections@${detectionsCommit}`);
      const t = await quick.threatsStage({ batchId: input.batchId, detectionsCommit, paths: v.accepted.map((a) => a.path), rulesCommit: input.rulesCommit });
      threatsCommit = t.threatsCommit;
      unsafePaths = t.unsafe.map((u) => u.path);
      s.unsafe = t.unsafe.length;
      if (threatsCommit) s.commits.push(`threats@${threatsCommit}`);
    }
  }
  const cameraFaultPaths = v.rejected.filter((r) => r.cameraFault).map((r) => r.path);
  let alertsCommit: string | null = null;
  let alertPaths: string[] = [];
  if (unsafePaths.length || cameraFaultPaths.length) {
    const a = await quick.prepareAlerts({ batchId: input.batchId, threatsCommit, unsafePaths, invalidCommit: v.invalidCommit, cameraFaultPaths, rulesCommit: input.rulesCommit, deliver: input.deliver ?? true });
    alertsCommit = a.alertsCommit;
    alertPaths = a.alerts.map((x) => x.path);
    s.alerts = a.alerts.length;
    s.suppressed = a.alerts.filter((x) => x.status === 'suppressed').length;
    if (alertsCommit) {
      s.commits.push(`alerts@${alertsCommit}`);
      const { deliverAlert, deliverAlerts } = deliveryActivities(input.maxDeliveryAttempts);
      // Reprocessing delivers nothing: the pending alerts it meets are live ones it kept (see
      // prepareAlerts), whose deliveries belong to their live batch. Histories begun before this
      // change replay the deliveries they scheduled.
      const live = a.alerts.filter((x) => x.status === 'pending');
      const pending = input.deliver === false && live.length && patched('reprocess-delivers-nothing') ? [] : live;
      // One activity per chunk (each activity costs the Temporal server about as much as a small
      // stage); histories begun before this change replay their per-alert activities.
      const results = !pending.length
        ? []
        : patched('deliver-alerts-per-chunk')
          ? [await deliverAlerts({ alertsCommit, paths: pending.map((x) => x.path) })]
          : await Promise.all(pending.map((x) => deliverAlert({ alertsCommit: alertsCommit!, path: x.path })));
      for (const r of results) {
        s.delivered += r.delivered;
        s.failedDeliveries += r.failed;
        s.unknownDeliveries += r.unknown ?? 0;
      }
    }
  }
  await quick.recordsStage({
    batchId: input.batchId, part: input.part, framesCommit: input.framesCommit, frames: input.frames,
    standardizedCommit: v.standardizedCommit, invalidCommit: v.invalidCommit, detectionsCommit, threatsCommit,
    rulesCommit: input.rulesCommit, alertsCommit, alertPaths, history: input.deliver === false,
  });
  return s;
}

/**
 * A batch of frames as a DAG of activities. The rules in force are resolved once (versioned into
 * the `rules` repo; a broken rules folder keeps the last good commit). Small batches run inline;
 * larger ones fan out into child workflows of `chunkSize` frames (at most 4 at a time), and after
 * `chunksPerRun` children the workflow continues as new with the rest, so no history grows
 * without bound.
 */
export async function batchWorkflow(input: BatchInput): Promise<BatchSummary> {
  const chunkSize = input.chunkSize ?? 32;
  const chunksPerRun = input.chunksPerRun ?? 40;
  const maxDeliveryAttempts = input.maxDeliveryAttempts ?? 6;
  let rulesCommit = input.rulesCommit;
  let rulesErrors: string[] = [];
  if (rulesCommit === undefined) {
    const r = await quick.rulesInForce();
    rulesCommit = r.rulesCommit;
    rulesErrors = r.errors;
  }
  let summary = input.done ?? { ...empty(), rulesCommit, rulesErrors };
  const chunk = (frames: FrameRef[], part: string): ChunkInput => ({ batchId: input.batchId, part, framesCommit: input.framesCommit, frames, rulesCommit: rulesCommit ?? null, maxDeliveryAttempts, deliver: input.deliver ?? true });
  if (input.frames.length <= chunkSize && !input.done) {
    return add(summary, await chunkWorkflow(chunk(input.frames, 'p0')));
  }
  const chunks: FrameRef[][] = [];
  for (let i = 0; i < input.frames.length; i += chunkSize) chunks.push(input.frames.slice(i, i + chunkSize));
  const now = chunks.slice(0, chunksPerRun);
  const offset = summary.frames;
  for (let i = 0; i < now.length; i += 4) {
    const results = await Promise.all(
      now.slice(i, i + 4).map((frames, j) => {
        const part = `p${offset}-${i + j}`;
        return executeChild(chunkWorkflow, { workflowId: `${workflowInfo().workflowId}-${part}`, args: [chunk(frames, part)] });
      }),
    );
    for (const r of results) summary = add(summary, r);
  }
  const rest = chunks.slice(chunksPerRun).flat();
  if (rest.length) {
    await continueAsNew<typeof batchWorkflow>({ ...input, frames: rest, rulesCommit: rulesCommit ?? null, done: summary });
  }
  return summary;
}
