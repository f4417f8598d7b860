import { heartbeat } from '@temporalio/activity';
import { asActivity } from './failure.js';
import type { ImageDetector } from '../detector/index.js';
import type { RepoStore } from '../repos/index.js';
import type { DetectPressure } from '../stages/pressure.js';
import { detectFrames } from '../stages/detectFrames.js';
import type { DetectInput, DetectOutput } from '../stages/schema.js';

/** The detect activity: a thin wrapper over the detect stage with the worker's one detector, counted by `pressure`. */
export function makeDetectActivity(store: RepoStore, detector: () => Promise<ImageDetector>, pressure: DetectPressure) {
  return asActivity(async function detectStage(input: DetectInput): Promise<DetectOutput> {
    return pressure.detecting(async () => detectFrames(store, input, await detector(), (done) => heartbeat(done)));
  });
}
