import { heartbeat } from '@temporalio/activity';
import { asActivity } from './failure.js';
import type { ImageDetector } from '../detector/index.js';
import type { RepoStore } from '../repos/index.js';
import { detectFrames } from '../stages/detectFrames.js';
import type { DetectInput, DetectOutput } from '../stages/schema.js';

/** The detect activity: a thin wrapper over the detect stage with the worker's one detector. */
export function makeDetectActivity(store: RepoStore, detector: () => Promise<ImageDetector>) {
  return asActivity(async function detectStage(input: DetectInput): Promise<DetectOutput> {
    return detectFrames(store, input, await detector(), (done) => heartbeat(done));
  });
}
