/** Workflow entry points registered with the worker. Deterministic code only. */
export { batchWorkflow, chunkWorkflow } from './batch.js';
export type { BatchInput, BatchSummary } from './batch.js';
