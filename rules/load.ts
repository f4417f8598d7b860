/**
 * Loading a rules folder into a validated, normalized rule set.
 */
import { VigilError } from '../lib/errors.js';
import { checkRules, type CheckRulesOptions } from './check.js';
import { formatIssue } from './issues.js';
import type { RuleSet } from './schema.js';

/**
 * Loads and validates the rule set in `dir` (see {@link checkRules}); warnings are ignored.
 *
 * @returns the normalized rule set (hash it with `ruleSetHash`, commit `serializeRuleSet`).
 * @throws VigilError E_CONFIG when the set has errors: the message names the first error's file,
 *   path and reason; `detail` has `file`, `path`, `line`, `reason` and all `errors`.
 */
export async function loadRuleSet(dir: string, options: CheckRulesOptions = {}): Promise<RuleSet> {
  const result = await checkRules(dir, options);
  if (result.ok && result.ruleSet) return result.ruleSet;
  const first = result.errors[0];
  const more = result.errors.length > 1 ? ` (and ${result.errors.length - 1} more error${result.errors.length > 2 ? 's' : ''})` : '';
  throw new VigilError('E_CONFIG', `invalid rule set in ${dir}: ${first ? formatIssue(first) : 'unknown error'}${more}`, {
    file: first?.file,
    path: first?.path,
    line: first?.line,
    reason: first?.message,
    errors: result.errors,
  });
}
