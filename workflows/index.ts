/** Workflow entry points registered with the worker. Deterministic code only. */
export { batchWorkflow, chunkWorkflow } from './batch.js';
export type { BatchInput, BatchSummary } from './batch.js';
export { reprocessWorkflow } from './reprocess.js';
export type { ReprocessInput, ReprocessSummary } from './reprocess.js';
