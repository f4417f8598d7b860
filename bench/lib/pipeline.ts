/**
 * Driving frames through a running system and timing them end to end: shared by the
 * pipeline-vs-detector and scale-out benchmarks.
 */
import { activityBreakdown, type Breakdown } from './history.js';
import { CaptureClock, FrameClient, postFrames } from './http.js';
import { round, wall } from './common.js';
import type { BenchFrame } from './frames.js';
import type { RunningSystem } from './system.js';

/** End-to-end throughput of one run. */
export interface ThroughputRun {
  frames: number;
  /** From the first POST to the last batch workflow completed (ms). */
  wallMs: number;
  framesPerSec: number;
  /** From the first POST to the last 202 (ms). */
  ingestMs: number;
  batches: number;
  /** Activity time per type, from the workflow histories of these batches. */
  breakdown: Breakdown;
  /** Per stage: activity run time per frame (ms). */
  msPerFrameByStage: Record<string, number>;
}

/** POSTs frames (4 in flight), waits for every batch they form, and reads the histories. */
export async function timedRun(sys: RunningSystem, frames: readonly BenchFrame[], clock: CaptureClock, device = 'cam1', timeoutMs = 15 * 60_000): Promise<ThroughputRun> {
  const client = new FrameClient(sys.apiUrl, 4);
  const before = sys.batches.length;
  const alreadyBatched = sys.batches.reduce((n, b) => n + b.frames, 0);
  try {
    const t0 = wall();
    await postFrames(client, sys.keys.get(device)!, frames, clock, 4);
    const ingestMs = wall() - t0;
    const end = await sys.waitForFrames(alreadyBatched + frames.length, timeoutMs);
    const mine = sys.batches.slice(before);
    const ids = mine.map((b) => b.workflowId);
    const breakdown = await activityBreakdown(sys.client, (id) => ids.some((w) => id === w || id.startsWith(`${w}-`)));
    const msPerFrameByStage: Record<string, number> = {};
    for (const [type, t] of Object.entries(breakdown.byType)) msPerFrameByStage[type] = round(t.runMs / frames.length, 1);
    const wallMs = end - t0;
    return { frames: frames.length, wallMs, framesPerSec: round((frames.length * 1000) / wallMs, 2), ingestMs, batches: mine.length, breakdown, msPerFrameByStage };
  } finally {
    client.close();
  }
}

/** Warms a system up (workflow bundle, detector, repos): one untimed run. */
export async function warmUp(sys: RunningSystem, frames: readonly BenchFrame[], clock: CaptureClock, device = 'cam1'): Promise<void> {
  const client = new FrameClient(sys.apiUrl, 4);
  try {
    const already = sys.batches.reduce((n, b) => n + b.frames, 0);
    await postFrames(client, sys.keys.get(device)!, frames, clock, 4);
    await sys.waitForFrames(already + frames.length, 10 * 60_000);
  } finally {
    client.close();
  }
}
