/**
 * Activity lanes. The heavy stages run on task queues of their own, next to the main queue (which
 * carries the workflows and the quick stages: threats, alerts, records, rules, planning). Matching
 * hands out each queue's tasks roughly in the order they were scheduled, so on one shared queue a
 * backlog of validates (one per batch started) would hold back the detect, threats and alerts of
 * batches already validated. Pure: the workflow code imports it.
 */
export const LANES = ['validate', 'detect'] as const;

/** A heavy stage with a task queue of its own. */
export type Lane = (typeof LANES)[number];

/** The task queue of `lane` beside the main task queue `base`: `<base>-<lane>`. */
export function laneQueue(base: string, lane: Lane): string {
  return `${base}-${lane}`;
}

/** Every lane's task queue beside `base`, in LANES order. */
export function laneQueues(base: string): string[] {
  return LANES.map((lane) => laneQueue(base, lane));
}
