/**
 * Canonical JSON of a rule set, for committing to the `rules` repo, and its inverse.
 */
import { VigilError } from '../lib/errors.js';
import { formatPath } from './issues.js';
import { normalizeRuleSet } from './normalize.js';
import { RuleSetSchema, type RuleSet } from './schema.js';

/** A deep copy of `value` with every object's keys in code-unit order. */
function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    return Object.fromEntries(
      Object.keys(obj)
        .filter((k) => obj[k] !== undefined)
        .sort()
        .map((k) => [k, sortKeys(obj[k])]),
    );
  }
  return value;
}

/**
 * Canonical JSON of the normalized rule set: keys sorted, unordered lists sorted, 2-space
 * indentation, trailing newline. Equal rule sets give byte-identical text, so the sha256 of the
 * committed file equals {@link ruleSetHash}.
 */
export function serializeRuleSet(ruleSet: RuleSet): string {
  return JSON.stringify(sortKeys(normalizeRuleSet(ruleSet)), null, 2) + '\n';
}

/**
 * Parses a serialized rule set (e.g. read back from the `rules` repo) and normalizes it.
 * @param source names the text in error messages.
 * @throws VigilError E_CONFIG naming the source, the path and the reason.
 */
export function parseRuleSet(text: string, source = 'rule set'): RuleSet {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new VigilError('E_CONFIG', `${source}: not valid JSON (${(err as Error).message})`, { file: source, path: '', reason: 'invalid JSON' });
  }
  const r = RuleSetSchema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0];
    const at = i ? formatPath(i.path) : '';
    const reason = i?.message ?? 'invalid';
    throw new VigilError('E_CONFIG', `${source}: ${at || '(root)'}: ${reason}`, { file: source, path: at, reason });
  }
  return normalizeRuleSet(r.data);
}
