import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import type { Config } from '../lib/config.js';
import type { BatchSpec } from '../ingest/collector.js';
import type { BatchInput } from '../workflows/index.js';

/** Workflow id of a batch: one workflow per batch id, ever. */
export const batchWorkflowId = (batchId: string) => `batch-${batchId}`;

/**
 * The collector's `start` callback: starts the batch workflow, idempotently (an id that already
 * ran counts as started, so a retry after a crash never runs a batch twice).
 */
export function makeBatchStarter(client: Client, config: Config) {
  return async (batch: BatchSpec): Promise<void> => {
    const input: BatchInput = { ...batch, chunkSize: config.VIGIL_CHUNK_SIZE, maxDeliveryAttempts: config.VIGIL_ALERT_MAX_ATTEMPTS };
    try {
      await client.workflow.start('batchWorkflow', {
        taskQueue: config.TEMPORAL_TASK_QUEUE,
        workflowId: batchWorkflowId(batch.batchId),
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
        args: [input],
      });
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError) return;
      throw err;
    }
  };
}
