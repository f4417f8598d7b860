import { log } from '@temporalio/activity';
import { loadModelConfig } from '../detector/index.js';
import type { RepoStore } from '../repos/index.js';
import { commitRulesInForce, type RulesInForce } from '../stages/rulesVersion.js';
import { asActivity } from './failure.js';

/** The errors last reported by this process (see below). */
let lastLogged = '';

/** The rules activity: versions the rules folder and names the rules commit in force for a batch. */
export function makeRulesActivity(store: RepoStore, rulesDir: string, modelConfig: string) {
  return asActivity(async function rulesInForce(): Promise<RulesInForce> {
    const model = await loadModelConfig(modelConfig);
    const r = await commitRulesInForce(store, rulesDir, model.classNames);
    // A broken rules folder keeps the last good rules in force; say so in the worker's output,
    // once per distinct set of errors (the batch results carry them too).
    const key = r.errors.join('\n');
    if (key && key !== lastLogged) log.warn(`rules folder ${rulesDir} has ${r.errors.length} error(s); rules@${r.rulesCommit?.slice(0, 12) ?? '(none)'} stays in force: ${r.errors.slice(0, 3).join(' | ')}${r.errors.length > 3 ? ' | …' : ''} (vigil rules check)`);
    lastLogged = key;
    return r;
  });
}
