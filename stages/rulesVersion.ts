import { commitChanges, readFile, repoExists, resolveRef, type RepoStore } from '../repos/index.js';
import { checkRules, parseRuleSet, ruleSetHash, serializeRuleSet, type RuleSet, type RulesIssue } from '../rules/index.js';

/** The rule set in force for a batch. */
export interface RulesInForce {
  /** `rules` repo commit holding the set (null when no valid rules were ever committed). */
  rulesCommit: string | null;
  rulesHash: string | null;
  /** Errors of the rules folder when it is broken (the last good set stays in force). */
  errors: string[];
}

/** Path of the canonical rule set in the `rules` repo. */
export const RULESET_PATH = 'ruleset.json';

const fmt = (i: RulesIssue) => `${i.file}${i.line ? `:${i.line}` : ''} ${i.path}: ${i.message}`;

/**
 * Versions the rules folder: when it checks clean, its canonical form is committed to the `rules`
 * repo (no commit when unchanged) and that commit is in force; when it is broken, the errors are
 * returned and the last good commit stays in force, so the pipeline keeps running.
 */
export async function commitRulesInForce(store: RepoStore, dir: string, labels?: readonly string[]): Promise<RulesInForce> {
  const check = await checkRules(dir, labels ? { labels } : {});
  const head = repoExists(store, 'rules') ? await resolveRef(store, 'rules', 'main') : null;
  if (!check.ok || !check.ruleSet) {
    const last = head ? await readRuleSet(store, head) : null;
    return { rulesCommit: head, rulesHash: last ? ruleSetHash(last) : null, errors: check.errors.map(fmt) };
  }
  const hash = ruleSetHash(check.ruleSet);
  const res = await commitChanges(store, {
    repo: 'rules',
    changes: [{ path: RULESET_PATH, content: serializeRuleSet(check.ruleSet) }],
    provenance: { batchId: `rules-${hash.slice(0, 16)}`, stage: 'rules', stageVersion: '1', inputs: [], extra: { hash, warnings: check.warnings.length } },
    summary: `rules ${hash.slice(0, 12)}: ${check.summary.rules} rule(s), ${check.summary.users} user(s)`,
    durable: true,
  });
  return { rulesCommit: res.commit, rulesHash: hash, errors: [] };
}

/** Reads the rule set committed at a `rules` commit. */
export async function readRuleSet(store: RepoStore, rulesCommit: string): Promise<RuleSet | null> {
  const bytes = await readFile(store, 'rules', RULESET_PATH, rulesCommit);
  return bytes ? parseRuleSet(bytes.toString('utf8'), `rules@${rulesCommit}`) : null;
}
