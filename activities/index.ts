import type { ImageDetector } from '../detector/index.js';
import type { RepoStore } from '../repos/index.js';
import { DetectPressure } from '../stages/pressure.js';
import type { ValidateConfig } from '../validate/index.js';
import { makeAlertActivities } from './alerts.js';
import { makeDetectActivity } from './detect.js';
import { makeRecordsActivity } from './records.js';
import { makeReprocessActivity } from './reprocess.js';
import { makeRulesActivity } from './rules.js';
import { makeThreatsActivity } from './threats.js';
import { makeValidateActivity } from './validate.js';

/** Everything the activities need, built once per worker. */
export interface ActivityDeps {
  store: RepoStore;
  validateConfig: ValidateConfig;
  /** The worker's detector, loaded once on first use. */
  detector: () => Promise<ImageDetector>;
  rulesDir: string;
  modelConfig: string;
  cooldownMs: number;
  maxDeliveryAttempts: number;
  /** Detect activities the worker runs at once; validates wait while as many run (stages/pressure.ts). */
  detectSlots: number;
}

/** All activities of the batch DAG, keyed by the names the workflows call. */
export function createActivities(deps: ActivityDeps) {
  const pressure = new DetectPressure(deps.detectSlots);
  return {
    rulesInForce: makeRulesActivity(deps.store, deps.rulesDir, deps.modelConfig),
    validateStage: makeValidateActivity(deps.store, deps.validateConfig, pressure),
    detectStage: makeDetectActivity(deps.store, deps.detector, pressure),
    threatsStage: makeThreatsActivity(deps.store),
    ...makeAlertActivities(deps.store, { cooldownMs: deps.cooldownMs, maxAttempts: deps.maxDeliveryAttempts }),
    recordsStage: makeRecordsActivity(deps.store),
    planReprocess: makeReprocessActivity(deps.store),
  };
}

/** Activity signatures, for `proxyActivities` in workflow code. */
export type Activities = ReturnType<typeof createActivities>;
