import type { Client } from '@temporalio/client';
import type { StuckActivity } from '../server/health.js';

export type { StuckActivity };

/** The workflow types of a Vigil pipeline (their activities are what a stuck batch waits on). */
const PIPELINE_WORKFLOWS = ['batchWorkflow', 'chunkWorkflow', 'reprocessWorkflow'];

/**
 * Activities of running pipeline workflows on `taskQueue` (and its lanes) that have failed at
 * least `minAttempts - 1` times and are being retried (deliveries aside): a batch that makes no progress (the
 * warehouse refusing a row, a full disk, a stage failing on every try), which no other part of
 * the system reports. Looks at most `limit` running workflows (oldest first in what Temporal
 * lists), one describe each.
 * @throws what the Temporal client throws when the server does not answer.
 */
export async function findStuckActivities(client: Client, opts: { taskQueue: string; minAttempts: number; limit?: number }): Promise<StuckActivity[]> {
  const types = PIPELINE_WORKFLOWS.map((t) => `'${t}'`).join(', ');
  const query = `ExecutionStatus = 'Running' AND WorkflowType IN (${types}) AND TaskQueue = '${opts.taskQueue.replace(/'/g, '')}'`;
  const out: StuckActivity[] = [];
  let seen = 0;
  for await (const wf of client.workflow.list({ query })) {
    if (++seen > (opts.limit ?? 50)) break;
    const d = await client.workflow.getHandle(wf.workflowId, wf.runId).describe().catch(() => null);
    for (const a of d?.raw.pendingActivities ?? []) {
      const attempt = a.attempt ?? 1;
      const type = a.activityType?.name ?? '?';
      // Deliveries retry a provider's outage by design, a bounded number of times, and record it.
      if (attempt < opts.minAttempts || type.startsWith('deliver')) continue;
      out.push({
        workflowId: wf.workflowId,
        activityType: type,
        attempt,
        lastFailure: (a.lastFailure?.message ?? '').split('\n')[0] ?? '',
      });
    }
  }
  return out;
}
