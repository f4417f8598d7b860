import { ScheduleAlreadyRunning, ScheduleNotFoundError, ScheduleOverlapPolicy, type Client } from '@temporalio/client';
import type { Config } from '../lib/config.js';
import type { ReprocessInput } from '../workflows/index.js';

/** Id of the nightly reprocessing schedule (one per namespace and task queue). */
export function reprocessScheduleId(config: Config): string {
  return `vigil-reprocess-${config.TEMPORAL_TASK_QUEUE}`;
}

/**
 * Makes the nightly reprocessing schedule match the settings: a Temporal Schedule that starts
 * `reprocessWorkflow` (the last VIGIL_REPROCESS_DAYS days) on VIGIL_REPROCESS_CRON in
 * VIGIL_REPROCESS_TZ; a run still going when the next is due makes the next one skip. Creates it,
 * updates it when the settings changed, or deletes it when VIGIL_REPROCESS_CRON is `off`.
 * Idempotent: every `vigil start` calls it.
 * @returns the schedule id, or null when reprocessing is off.
 */
export async function ensureReprocessSchedule(client: Client, config: Config): Promise<string | null> {
  const scheduleId = reprocessScheduleId(config);
  const handle = client.schedule.getHandle(scheduleId);
  if (config.VIGIL_REPROCESS_CRON === 'off') {
    await handle.delete().catch((err) => {
      if (!(err instanceof ScheduleNotFoundError)) throw err;
    });
    return null;
  }
  const args: [ReprocessInput] = [{ days: config.VIGIL_REPROCESS_DAYS, chunkSize: config.VIGIL_CHUNK_SIZE }];
  const spec = { cronExpressions: [config.VIGIL_REPROCESS_CRON], timezone: config.VIGIL_REPROCESS_TZ };
  const action = { type: 'startWorkflow' as const, workflowType: 'reprocessWorkflow', taskQueue: config.TEMPORAL_TASK_QUEUE, args };
  try {
    await client.schedule.create({ scheduleId, spec, action, policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 hour' } });
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
    await handle.update((prev) => ({ ...prev, spec, action: { ...prev.action, ...action } }));
  }
  return scheduleId;
}
