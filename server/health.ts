/**
 * What `GET /v1/health` concludes from the parts of a running system: healthy, or the list of
 * what is wrong (each problem makes it answer 503). Pure, so it is tested on its own.
 */

import type { CollectorStats } from '../ingest/collector.js';

/** An activity of a running pipeline workflow that keeps failing and is being retried (see temporal/stuck.ts). */
export interface StuckActivity {
  workflowId: string;
  activityType: string;
  /** The attempt being made or waited for (1 = the first). */
  attempt: number;
  /** The last failure's message, first line. */
  lastFailure: string;
}

/** The parts' states, as the running system reports them. */
export interface HealthParts {
  /**
   * The state of this host's worker processes (`RUNNING` when all of them poll; `NONE` when this
   * host runs none, VIGIL_WORKERS=0, and workers run elsewhere).
   */
  worker: string;
  /** How many of this host's worker processes run, when it has several (some running: batches are still processed). */
  workersRunning?: number;
  /** The collector's batches waiting to start: how many, since when the oldest waits, and the last start failure. */
  collector: Pick<CollectorStats, 'unstarted' | 'waitingSince' | 'startError'>;
  /** The frames journal's last checkpoint failure (null once one succeeds). */
  framesJournalCheckpointError: string | null;
  /** Pipeline activities failing on try after try (see temporal/stuck.ts); absent when not checked. */
  stuckActivities?: readonly StuckActivity[];
  /**
   * Workers (here or elsewhere) seen polling the task queue lately (temporal/pollers.ts): none
   * means no batch is picked up, whatever the processes' state (a hung worker still runs); absent
   * or null when not checked yet.
   */
  pollers?: number | null;
}

/**
 * A batch waiting this long to start is a problem: batches start within a second of being cut,
 * unless Temporal is unreachable or not answering (or the collector cannot save its state).
 */
export const START_WAIT_LIMIT_MS = 30_000;

/**
 * @returns ok, and one line per problem: the worker not running (or, with none on this host, none
 *   polling elsewhere), a batch waiting
 *   {@link START_WAIT_LIMIT_MS} or more to start (accepted frames are safe but nothing is
 *   processed), the frames journal failing to checkpoint (the disk), or pipeline activities
 *   failing on every try (a batch held).
 */
export function healthStatus(parts: HealthParts, now = Date.now()): { ok: boolean; problems: string[] } {
  const problems: string[] = [];
  if (parts.worker !== 'RUNNING' && parts.worker !== 'NONE') {
    problems.push((parts.workersRunning ?? 0) > 0 ? `worker processes: ${parts.worker} (the running ones process batches)` : `worker is ${parts.worker}: no batch is processed`);
  }
  if (parts.pollers === 0) {
    problems.push(
      parts.worker === 'NONE'
        ? 'no worker polls the task queue (VIGIL_WORKERS=0 here: run `vigil worker` elsewhere): no batch is processed'
        : 'no worker has polled the task queue for 2 minutes, though worker processes run here (hung?): no batch is processed',
    );
  }
  const c = parts.collector;
  if (c.waitingSince && now - Date.parse(c.waitingSince) >= START_WAIT_LIMIT_MS) {
    const why = c.startError ? `last failure: ${c.startError.message}` : 'Temporal does not answer';
    problems.push(`${c.unstarted} batch(es) waiting to start since ${c.waitingSince} (${why})`);
  }
  if (parts.framesJournalCheckpointError) problems.push(`frames journal checkpoint failing: ${parts.framesJournalCheckpointError}`);
  const stuck = parts.stuckActivities ?? [];
  if (stuck.length) {
    const some = stuck.slice(0, 3).map((a) => `${a.activityType} of ${a.workflowId} (attempt ${a.attempt}): ${a.lastFailure}`);
    problems.push(`${stuck.length} pipeline activit${stuck.length === 1 ? 'y' : 'ies'} failing and retried, batches held: ${some.join('; ')}${stuck.length > 3 ? '; …' : ''}`);
  }
  return { ok: problems.length === 0, problems };
}
