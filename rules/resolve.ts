/**
 * Effective rules of one (user, device): global rules chosen by id, then the user's and the
 * device's exclude/include layers. See `rules/README.md` for the combination rules.
 */
import type { ActiveHours, GlobalRule, Include, RuleSet } from './schema.js';
import { INCLUDE_RULE_ID } from './schema.js';

/** One rule as it applies to a (user, device). */
export interface EffectiveRule {
  /** Global rule id, or 0 for an include. */
  readonly ruleId: number;
  readonly ruleName: string;
  readonly source: 'rule' | 'user' | 'device';
  /** Unsafe classes left after exclusions (never empty). */
  readonly classes: readonly string[];
  readonly minScore: number;
  readonly activeHours?: ActiveHours;
  readonly minBoxArea?: number;
}

/** What applies to frames of one (user, device). */
export interface EffectiveRules {
  readonly user: string;
  readonly device: string;
  /** False when the user has no rules file: nothing is unsafe. */
  readonly configured: boolean;
  /** Device window: outside it no rule is active. */
  readonly activeHours?: ActiveHours;
  /** Device minimum box area (fraction of the image), on top of each rule's. */
  readonly minBoxArea?: number;
  /** Global rules by ascending id, then user includes, then device includes. */
  readonly rules: readonly EffectiveRule[];
}

function fromGlobal(r: GlobalRule): EffectiveRule {
  return {
    ruleId: r.id,
    ruleName: r.name,
    source: 'rule',
    classes: r.unsafe,
    minScore: r.minScore,
    ...(r.activeHours ? { activeHours: r.activeHours } : {}),
    ...(r.minBoxArea !== undefined ? { minBoxArea: r.minBoxArea } : {}),
  };
}

function fromInclude(i: Include, source: 'user' | 'device', owner: string): EffectiveRule {
  return {
    ruleId: INCLUDE_RULE_ID,
    ruleName: `include (${source} ${owner})`,
    source,
    classes: [i.class],
    minScore: i.minScore,
    ...(i.minBoxArea !== undefined ? { minBoxArea: i.minBoxArea } : {}),
  };
}

/** Removes excluded classes from every rule; drops rules left with no class. */
function without(rules: readonly EffectiveRule[], exclude: readonly string[]): EffectiveRule[] {
  if (exclude.length === 0) return [...rules];
  const ex = new Set(exclude);
  return rules.map((r) => ({ ...r, classes: r.classes.filter((c) => !ex.has(c)) })).filter((r) => r.classes.length > 0);
}

/**
 * Effective rules for `user`'s `device`:
 * 1. global rules listed by the device's `rules` if present, else by the user's `rules`;
 * 2. minus the user's `exclude`, plus the user's `include`;
 * 3. minus the device's `exclude` (also removing user includes), plus the device's `include`.
 * An unknown user gets no rules; an unknown device of a known user gets the user's rules.
 * Pure. Unknown rule ids (impossible in a checked set) are skipped.
 */
export function resolveRules(ruleSet: RuleSet, user: string, device: string): EffectiveRules {
  const u = Object.hasOwn(ruleSet.users, user) ? ruleSet.users[user] : undefined;
  if (!u) return { user, device, configured: false, rules: [] };
  const d = Object.hasOwn(u.devices, device) ? u.devices[device] : undefined;
  const byId = new Map(ruleSet.rules.map((r) => [r.id, r]));
  const ids = [...new Set(d?.rules ?? u.rules)].sort((a, b) => a - b);
  let rules = ids.flatMap((id) => {
    const r = byId.get(id);
    return r ? [fromGlobal(r)] : [];
  });
  rules = [...without(rules, u.exclude), ...u.include.map((i) => fromInclude(i, 'user', user))];
  if (d) rules = [...without(rules, d.exclude), ...d.include.map((i) => fromInclude(i, 'device', device))];
  return {
    user,
    device,
    configured: true,
    ...(d?.activeHours ? { activeHours: d.activeHours } : {}),
    ...(d?.minBoxArea !== undefined ? { minBoxArea: d.minBoxArea } : {}),
    rules,
  };
}
