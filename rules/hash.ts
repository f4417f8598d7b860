/**
 * Content hash of a rule set: the version stamp recorded with every decision.
 */
import { createHash } from 'node:crypto';
import type { RuleSet } from './schema.js';
import { serializeRuleSet } from './serialize.js';

/**
 * sha256 (lower-case hex) of {@link serializeRuleSet}'s canonical JSON. Stable under key order and
 * under the order of unordered lists; changes whenever anything meaningful changes (a threshold,
 * a class, a contact, a device override).
 */
export function ruleSetHash(ruleSet: RuleSet): string {
  return createHash('sha256').update(serializeRuleSet(ruleSet), 'utf8').digest('hex');
}
