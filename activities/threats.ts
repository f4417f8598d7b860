import type { RepoStore } from '../repos/index.js';
import { threatsStage, type ThreatsInput, type ThreatsOutput } from '../stages/threats.js';
import { asActivity } from './failure.js';

/** The threats activity: the pure rule engine over a chunk's detections. */
export function makeThreatsActivity(store: RepoStore) {
  return asActivity(async function threatsStageActivity(input: ThreatsInput): Promise<ThreatsOutput> {
    return threatsStage(store, input);
  });
}
