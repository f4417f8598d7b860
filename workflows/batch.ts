import { continueAsNew, executeChild, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import type { FrameRef } from '../lib/schemas.js';

const { validateStage, detectStage } = proxyActivities<Activities>({
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute', nonRetryableErrorTypes: ['E_CORRUPT', 'E_BAD_ID', 'E_CONFIG', 'E_HASH_MISMATCH'] },
});

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
  /** Carried across continue-as-new. */
  done?: BatchSummary;
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
  commits: string[];
}

const empty = (): BatchSummary => ({ frames: 0, standardized: 0, invalid: 0, cameraFaults: 0, detected: 0, skippedDetections: 0, objects: 0, commits: [] });

function add(a: BatchSummary, b: BatchSummary): BatchSummary {
  return {
    frames: a.frames + b.frames,
    standardized: a.standardized + b.standardized,
    invalid: a.invalid + b.invalid,
    cameraFaults: a.cameraFaults + b.cameraFaults,
    detected: a.detected + b.detected,
    skippedDetections: a.skippedDetections + b.skippedDetections,
    objects: a.objects + b.objects,
    commits: [...a.commits, ...b.commits].slice(-50),
  };
}

/** One chunk of a batch through the DAG: validate -> detect. */
export async function chunkWorkflow(input: { batchId: string; framesCommit: string; frames: FrameRef[] }): Promise<BatchSummary> {
  const v = await validateStage({ batchId: input.batchId, framesCommit: input.framesCommit, frames: input.frames });
  const s = empty();
  s.frames = input.frames.length;
  s.standardized = v.accepted.length;
  s.invalid = v.rejected.length;
  s.cameraFaults = v.rejected.filter((r) => r.cameraFault).length;
  if (v.standardizedCommit) s.commits.push(`standardized@${v.standardizedCommit}`);
  if (v.invalidCommit) s.commits.push(`invalid@${v.invalidCommit}`);
  if (v.accepted.length && v.standardizedCommit) {
    const d = await detectStage({ batchId: input.batchId, standardizedCommit: v.standardizedCommit, frames: v.accepted });
    s.detected = d.detected;
    s.skippedDetections = d.skipped;
    s.objects = d.objects;
    if (d.detectionsCommit) s.commits.push(`detections@${d.detectionsCommit}`);
  }
  return s;
}

/**
 * A batch of frames as a DAG of activities. Small batches run inline; larger ones fan out into
 * child workflows of `chunkSize` frames (at most 4 at a time), and after `chunksPerRun` children
 * the workflow continues as new with the rest, so no history grows without bound.
 */
export async function batchWorkflow(input: BatchInput): Promise<BatchSummary> {
  const chunkSize = input.chunkSize ?? 32;
  const chunksPerRun = input.chunksPerRun ?? 40;
  let summary = input.done ?? empty();
  if (input.frames.length <= chunkSize && !input.done) {
    return chunkWorkflow({ batchId: input.batchId, framesCommit: input.framesCommit, frames: input.frames });
  }
  const chunks: FrameRef[][] = [];
  for (let i = 0; i < input.frames.length; i += chunkSize) chunks.push(input.frames.slice(i, i + chunkSize));
  const now = chunks.slice(0, chunksPerRun);
  const base = `${workflowInfo().workflowId}-${summary.frames}`;
  for (let i = 0; i < now.length; i += 4) {
    const results = await Promise.all(
      now.slice(i, i + 4).map((frames, j) =>
        executeChild(chunkWorkflow, { workflowId: `${base}-chunk-${i + j}`, args: [{ batchId: input.batchId, framesCommit: input.framesCommit, frames }] }),
      ),
    );
    for (const r of results) summary = add(summary, r);
  }
  const rest = chunks.slice(chunksPerRun).flat();
  if (rest.length) {
    await continueAsNew<typeof batchWorkflow>({ ...input, frames: rest, done: summary });
  }
  return summary;
}
