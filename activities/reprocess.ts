import type { RepoStore } from '../repos/index.js';
import { planReprocess, type ReprocessPlan, type ReprocessPlanInput } from '../stages/reprocess.js';
import { asActivity } from './failure.js';

/** The planning activity of a reprocessing run: one page of frames, by reference. */
export function makeReprocessActivity(store: RepoStore) {
  return asActivity(async function planReprocessActivity(input: ReprocessPlanInput): Promise<ReprocessPlan> {
    return planReprocess(store, input);
  });
}
