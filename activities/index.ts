import type { Detector } from '../detector/index.js';
import type { RepoStore } from '../repos/index.js';
import type { ValidateConfig } from '../validate/index.js';
import { makeDetectActivity } from './detect.js';
import { makeValidateActivity } from './validate.js';

/** Everything the activities need, built once per worker. */
export interface ActivityDeps {
  store: RepoStore;
  validateConfig: ValidateConfig;
  /** The worker's detector, loaded once on first use. */
  detector: () => Promise<Detector>;
}

/** All activities of the batch DAG, keyed by the names the workflows call. */
export function createActivities(deps: ActivityDeps) {
  return {
    validateStage: makeValidateActivity(deps.store, deps.validateConfig),
    detectStage: makeDetectActivity(deps.store, deps.detector),
  };
}

/** Activity signatures, for `proxyActivities` in workflow code. */
export type Activities = ReturnType<typeof createActivities>;
