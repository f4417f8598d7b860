import { loadModelConfig } from '../detector/index.js';
import type { RepoStore } from '../repos/index.js';
import { commitRulesInForce, type RulesInForce } from '../stages/rulesVersion.js';
import { asActivity } from './failure.js';

/** The rules activity: versions the rules folder and names the rules commit in force for a batch. */
export function makeRulesActivity(store: RepoStore, rulesDir: string, modelConfig: string) {
  return asActivity(async function rulesInForce(): Promise<RulesInForce> {
    const model = await loadModelConfig(modelConfig);
    return commitRulesInForce(store, rulesDir, model.classNames);
  });
}
