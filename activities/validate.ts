import { heartbeat } from '@temporalio/activity';
import { asActivity } from './failure.js';
import type { RepoStore } from '../repos/index.js';
import type { ValidateInput, ValidateOutput } from '../stages/schema.js';
import { validateFrames } from '../stages/validateFrames.js';
import type { ValidateConfig } from '../validate/index.js';

/** The validate activity: a thin wrapper that heartbeats while the stage runs. */
export function makeValidateActivity(store: RepoStore, config: ValidateConfig) {
  return asActivity(async function validateStage(input: ValidateInput): Promise<ValidateOutput> {
    return validateFrames(store, input, config, (done) => heartbeat(done));
  });
}
