import { cancellationSignal, heartbeat } from '@temporalio/activity';
import { asActivity } from './failure.js';
import type { RepoStore } from '../repos/index.js';
import type { DetectPressure } from '../stages/pressure.js';
import type { ValidateInput, ValidateOutput } from '../stages/schema.js';
import { validateFrames } from '../stages/validateFrames.js';
import type { ValidateConfig } from '../validate/index.js';

/**
 * The validate activity: a thin wrapper that heartbeats while the stage runs. It starts once the
 * worker's detector has room for more work (stages/pressure.ts).
 */
export function makeValidateActivity(store: RepoStore, config: ValidateConfig, pressure: DetectPressure) {
  return asActivity(async function validateStage(input: ValidateInput): Promise<ValidateOutput> {
    await pressure.roomForValidate(cancellationSignal());
    return validateFrames(store, input, config, (done) => heartbeat(done));
  });
}
