import type { Client } from '@temporalio/client';

/** A poller counts when it asked for work this recently (a worker's long polls last about a minute). */
export const POLLER_RECENT_MS = 120_000;

/**
 * How many workers poll `taskQueue` for workflow tasks: those the server saw asking for work in
 * the last {@link POLLER_RECENT_MS}. For an API host that runs no worker itself (VIGIL_WORKERS=0),
 * the only sign that workers elsewhere pick up batches; with workers here, the sign of one that
 * hangs (alive, so its process state says RUNNING).
 * @throws what the Temporal client throws when the server does not answer.
 */
export async function countPollers(client: Client, taskQueue: string, now = Date.now()): Promise<number> {
  const r = await client.workflowService.describeTaskQueue({
    namespace: client.options.namespace,
    // TASK_QUEUE_KIND_NORMAL and TASK_QUEUE_TYPE_WORKFLOW (temporal.api.enums.v1; the proto package is a dev dependency here).
    taskQueue: { name: taskQueue, kind: 1 },
    taskQueueType: 1,
  });
  return (r.pollers ?? []).filter((p) => {
    const t = p.lastAccessTime;
    const ms = t ? Number(t.seconds ?? 0) * 1000 + Math.floor((t.nanos ?? 0) / 1e6) : 0;
    return now - ms < POLLER_RECENT_MS;
  }).length;
}
