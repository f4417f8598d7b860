/**
 * Public API of the rules module: rule files -> validated, versioned rule set -> pure decisions.
 *
 * ```ts
 * import { loadRuleSet, ruleSetHash, evaluate } from '../rules/index.js';
 * const ruleSet = await loadRuleSet('rules');          // throws E_CONFIG on a bad set
 * const version = ruleSetHash(ruleSet);                // sha256 of serializeRuleSet(ruleSet)
 * const decision = evaluate(detectionDoc, ruleSet);    // { unsafe, configured, matches, rulesFired }
 * const fired = compileRuleSet(ruleSet);              // many detections: fired(doc) = evaluate(doc, ruleSet).rulesFired
 * ```
 */
export { checkRules, type CheckRulesOptions } from './check.js';
export { compileRuleSet } from './compile.js';
export { evaluate, type EvaluableDetection, type EvaluateContext } from './evaluate.js';
export { listRuleFiles, type RuleFileList } from './files.js';
export { ruleSetHash } from './hash.js';
export { clockMinutes, isWithinActiveHours } from './hours.js';
export { formatIssue, formatPath } from './issues.js';
export { loadRuleSet } from './load.js';
export { localTime, type LocalTime } from './localTime.js';
export { normalizeRuleSet } from './normalize.js';
export { readRuleFile, type ReadRuleFileResult, type RuleFile } from './read.js';
export { resolveRules, type EffectiveRule, type EffectiveRules } from './resolve.js';
export {
  ActiveHoursSchema,
  BoxSchema,
  ClassNameSchema,
  ClockSchema,
  ContactsSchema,
  DecisionSchema,
  DeviceOverrideSchema,
  GlobalRuleSchema,
  GlobalRulesFileSchema,
  INCLUDE_RULE_ID,
  IncludeSchema,
  MatchSchema,
  MatchSourceSchema,
  MAX_RULE_FILE_BYTES,
  MinBoxAreaSchema,
  MinScoreSchema,
  RuleIdSchema,
  RulesCheckResultSchema,
  RuleSetSchema,
  RulesIssueSchema,
  UserRulesSchema,
  WebhookSchema,
  type ActiveHours,
  type Contacts,
  type Decision,
  type DeviceOverride,
  type GlobalRule,
  type GlobalRulesFile,
  type Include,
  type Match,
  type RuleSet,
  type RulesCheckResult,
  type RulesIssue,
  type UserRules,
  type Webhook,
} from './schema.js';
export { parseRuleSet, serializeRuleSet } from './serialize.js';
