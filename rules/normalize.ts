/**
 * Normal form of a rule set: every list whose order carries no meaning is sorted and de-duplicated,
 * maps are ordered by key, absent optional fields are dropped. Two rule sets that mean the same
 * thing (keys or classes written in another order) normalize to deep-equal values.
 */
import type { Contacts, DeviceOverride, GlobalRule, Include, RuleSet, UserRules, Webhook } from './schema.js';

const uniqSorted = <T extends string | number>(xs: readonly T[]): T[] =>
  [...new Set(xs)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));

/** Copies `obj` without its undefined-valued keys. */
function defined<T extends object>(obj: T): T {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined)) as T;
}

function byKey<T>(record: Readonly<Record<string, T>>, f: (v: T) => T): Record<string, T> {
  return Object.fromEntries(
    Object.keys(record)
      .sort()
      .map((k) => [k, f(record[k] as T)]),
  );
}

const normInclude = (xs: readonly Include[]): Include[] =>
  [...xs].map((i) => defined({ ...i })).sort((a, b) => (a.class < b.class ? -1 : a.class > b.class ? 1 : a.minScore - b.minScore));

const webhookKey = (w: Webhook): string => `${w.url}\u0000${w.format}\u0000${w.routingKey ?? ''}`;

function normContacts(c: Contacts): Contacts {
  const hooks = new Map(c.webhook.map((w) => [webhookKey(w), defined({ ...w })]));
  return {
    email: uniqSorted(c.email),
    webhook: [...hooks.keys()].sort().map((k) => hooks.get(k) as Webhook),
    phone: uniqSorted(c.phone),
  };
}

function normDevice(d: DeviceOverride): DeviceOverride {
  return defined({
    ...d,
    rules: d.rules ? uniqSorted(d.rules) : undefined,
    include: normInclude(d.include),
    exclude: uniqSorted(d.exclude),
  });
}

function normUser(u: UserRules): UserRules {
  return {
    user: u.user,
    rules: uniqSorted(u.rules),
    include: normInclude(u.include),
    exclude: uniqSorted(u.exclude),
    contacts: normContacts(u.contacts),
    devices: byKey(u.devices, normDevice),
  };
}

const normRule = (r: GlobalRule): GlobalRule => defined({ ...r, unsafe: uniqSorted(r.unsafe) });

/** Returns the normal form of `ruleSet` (a new value; the input is not modified). Idempotent. */
export function normalizeRuleSet(ruleSet: RuleSet): RuleSet {
  return {
    schemaVersion: ruleSet.schemaVersion,
    rules: [...ruleSet.rules].sort((a, b) => a.id - b.id).map(normRule),
    users: byKey(ruleSet.users, normUser),
  };
}
