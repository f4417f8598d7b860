import { continueAsNew, executeChild, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import { batchWorkflow, type BatchSummary } from './batch.js';

const plan = proxyActivities<Activities>({
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute', nonRetryableErrorTypes: ['E_CORRUPT', 'E_BAD_INPUT'] },
});

/** Input of a reprocessing run. */
export interface ReprocessInput {
  /** Capture-time window length, ending `settleMs` before the run starts (default 1 day). */
  days?: number;
  /** Frames younger than this are left to the live pipeline (default 1 hour). */
  settleMs?: number;
  /** Frames per child batch (default 500). */
  pageSize?: number;
  chunkSize?: number;
  /** Carried across continue-as-new. */
  window?: { fromMs: number; toMs: number };
  after?: string | null;
  part?: number;
  done?: ReprocessSummary;
}

/** What a reprocessing run did. */
export interface ReprocessSummary {
  window: { from: string; to: string };
  batches: number;
  frames: number;
  /** Detections made again (a new model; 0 when nothing changed). */
  detected: number;
  unsafe: number;
  /** Alerts on record for the window's unsafe frames (new ones are `recorded`, never sent). */
  alerts: number;
}

/**
 * Reprocessing (what the nightly schedule runs): every frame captured in the window that the
 * pipeline already decided goes through the batch DAG again, under the rules and model in force
 * now, in child batches of `pageSize` frames, without delivering alerts. Datum keys skip what did
 * not change (same image and model: no inference; same rules: no new threat decision), so a quiet
 * night costs little; a rules change or a new model shows up as new commits with provenance.
 */
export async function reprocessWorkflow(input: ReprocessInput = {}): Promise<ReprocessSummary> {
  const toMs = input.window?.toMs ?? Date.now() - (input.settleMs ?? 3_600_000);
  const fromMs = input.window?.fromMs ?? toMs - (input.days ?? 1) * 86_400_000;
  const summary: ReprocessSummary = input.done ?? {
    window: { from: new Date(fromMs).toISOString(), to: new Date(toMs).toISOString() }, batches: 0, frames: 0, detected: 0, unsafe: 0, alerts: 0,
  };
  let after = input.after ?? null;
  let part = input.part ?? 0;
  for (let run = 0; run < 50; run++) {
    const page = await plan.planReprocess({ fromMs, toMs, after, limit: input.pageSize ?? 500 });
    if (!page.framesCommit || page.frames.length === 0) return summary;
    const r: BatchSummary = await executeChild(batchWorkflow, {
      workflowId: `${workflowInfo().workflowId}-b${part}`,
      // Batch ids name files in the warehouse: only [A-Za-z0-9_.-] (a schedule's workflow ids hold a ':').
      args: [{ batchId: `${workflowInfo().workflowId.replace(/[^A-Za-z0-9_.-]/g, '_')}-b${part}`.slice(-128), site: 'all', framesCommit: page.framesCommit, frames: page.frames, chunkSize: input.chunkSize, deliver: false }],
    });
    summary.batches++;
    summary.frames += r.frames;
    summary.detected += r.detected;
    summary.unsafe += r.unsafe;
    summary.alerts += r.alerts;
    part++;
    if (!page.next) return summary;
    after = page.next;
  }
  return continueAsNew<typeof reprocessWorkflow>({ ...input, window: { fromMs, toMs }, after, part, done: summary });
}
