/**
 * Where the pipeline's time goes, read from Temporal's own workflow histories: for every activity
 * of every workflow, the time it waited in the task queue (scheduled -> started) and the time it
 * ran (started -> completed), per activity type, and which worker ran each detect activity and on
 * how many frames.
 */
import type { Client } from '@temporalio/client';

/** Per activity type. */
export interface ActivityTypeStats {
  count: number;
  /** Sum of started -> closed over every attempt (ms). */
  runMs: number;
  /** Mean run time per activity (ms). */
  meanRunMs: number;
  /** Mean scheduled -> started (ms): time waiting for a worker slot. */
  meanQueueMs: number;
  /** Frames in the inputs (validateStage/detectStage/recordsStage), when known. */
  frames: number;
}

/** What the histories say. */
export interface Breakdown {
  workflows: number;
  byType: Record<string, ActivityTypeStats>;
  /** Frames detected per worker identity (`pid@host`). */
  detectFramesByWorker: Record<string, number>;
  /** Activities run per worker identity. */
  activitiesByWorker: Record<string, number>;
  /** Workflow histories' total size (events). */
  historyEvents: number;
}

type Long = { toString(): string } | number | string | null | undefined;
const num = (v: Long): number => (v === null || v === undefined ? 0 : Number(String(v)));
const tsMs = (t: { seconds?: Long; nanos?: number | null } | null | undefined): number => (t ? num(t.seconds) * 1000 + (t.nanos ?? 0) / 1e6 : 0);

function framesIn(payload: Uint8Array | null | undefined): number {
  if (!payload) return 0;
  try {
    const v = JSON.parse(Buffer.from(payload).toString('utf8')) as { frames?: unknown[] };
    return Array.isArray(v.frames) ? v.frames.length : 0;
  } catch {
    return 0;
  }
}

/**
 * Reads the histories of every workflow on the server (each benchmark has its own server) whose id
 * `include` accepts.
 */
export async function activityBreakdown(client: Client, include: (workflowId: string) => boolean = () => true): Promise<Breakdown> {
  const out: Breakdown = { workflows: 0, byType: {}, detectFramesByWorker: {}, activitiesByWorker: {}, historyEvents: 0 };
  const queueSum: Record<string, number> = {};
  for await (const wf of client.workflow.list()) {
    if (!include(wf.workflowId)) continue;
    out.workflows++;
    const history = await client.workflow.getHandle(wf.workflowId, wf.runId).fetchHistory();
    const events = history.events ?? [];
    out.historyEvents += events.length;
    const scheduled = new Map<number, { type: string; at: number; frames: number }>();
    const started = new Map<number, { at: number; identity: string; scheduledId: number }>();
    for (const e of events) {
      const id = num(e.eventId);
      const at = tsMs(e.eventTime);
      const s = e.activityTaskScheduledEventAttributes;
      if (s) {
        scheduled.set(id, { type: s.activityType?.name ?? '?', at, frames: framesIn(s.input?.payloads?.[0]?.data) });
        continue;
      }
      const st = e.activityTaskStartedEventAttributes;
      if (st) {
        started.set(id, { at, identity: st.identity ?? '?', scheduledId: num(st.scheduledEventId) });
        continue;
      }
      const closed = e.activityTaskCompletedEventAttributes ?? e.activityTaskFailedEventAttributes ?? e.activityTaskTimedOutEventAttributes;
      if (closed) {
        const sched = scheduled.get(num(closed.scheduledEventId));
        const start = started.get(num(closed.startedEventId));
        if (!sched || !start) continue;
        const t = (out.byType[sched.type] ??= { count: 0, runMs: 0, meanRunMs: 0, meanQueueMs: 0, frames: 0 });
        t.count++;
        t.runMs += at - start.at;
        t.frames += sched.frames;
        queueSum[sched.type] = (queueSum[sched.type] ?? 0) + (start.at - sched.at);
        out.activitiesByWorker[start.identity] = (out.activitiesByWorker[start.identity] ?? 0) + 1;
        if (sched.type === 'detectStage' && e.activityTaskCompletedEventAttributes) {
          out.detectFramesByWorker[start.identity] = (out.detectFramesByWorker[start.identity] ?? 0) + sched.frames;
        }
      }
    }
  }
  for (const [type, t] of Object.entries(out.byType)) {
    t.meanRunMs = Math.round((t.runMs / Math.max(1, t.count)) * 10) / 10;
    t.meanQueueMs = Math.round(((queueSum[type] ?? 0) / Math.max(1, t.count)) * 10) / 10;
    t.runMs = Math.round(t.runMs);
  }
  return out;
}
