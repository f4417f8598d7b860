/**
 * A rule set compiled for evaluating many detections in a row (replays): the effective rules of
 * each (user, device) are resolved once and their active hours turned into minutes once, instead
 * of for every detection as {@link evaluate} does. Decides exactly as {@link evaluate}.
 */
import { evaluate, type EvaluableDetection } from './evaluate.js';
import { clockMinutes } from './hours.js';
import { localTime, type LocalTime } from './localTime.js';
import { resolveRules } from './resolve.js';
import type { ActiveHours, RuleSet } from './schema.js';

/** An active-hours window in minutes since local midnight. */
interface Window {
  readonly from: number;
  readonly to: number;
}

interface CompiledRule {
  readonly ruleId: number;
  readonly classes: ReadonlySet<string>;
  readonly minScore: number;
  /** max(rule's minBoxArea, device's minBoxArea), 0 for none. */
  readonly minArea: number;
  readonly hours: Window | null;
}

/** What applies to one (user, device); `fallback`: decided by {@link evaluate} itself. */
type Compiled =
  | { readonly fallback: false; readonly rules: readonly CompiledRule[]; readonly deviceHours: Window | null; readonly someHours: boolean }
  | { readonly fallback: true };

/** Same test as isWithinActiveHours, on precomputed minutes. */
const within = (w: Window, time: LocalTime): boolean => {
  const t = time.hour * 60 + time.minute;
  return w.from < w.to ? t >= w.from && t < w.to : t >= w.from || t < w.to;
};

const toWindow = (h: ActiveHours): Window => ({ from: clockMinutes(h.from), to: clockMinutes(h.to) });

function compileFor(ruleSet: RuleSet, user: string, device: string): Compiled {
  const eff = resolveRules(ruleSet, user, device);
  try {
    const rules = eff.rules.map((r) => ({
      ruleId: r.ruleId,
      classes: new Set(r.classes),
      minScore: r.minScore,
      minArea: Math.max(r.minBoxArea ?? 0, eff.minBoxArea ?? 0),
      hours: r.activeHours ? toWindow(r.activeHours) : null,
    }));
    return { fallback: false, deviceHours: eff.activeHours ? toWindow(eff.activeHours) : null, rules, someHours: rules.some((r) => r.hours !== null) };
  } catch {
    // An invalid clock (impossible in a checked rule set): let evaluate raise its error when, and
    // only when, it would.
    return { fallback: true };
  }
}

/**
 * Compiles `ruleSet` into a function giving, for a detection, exactly
 * `evaluate(detection, ruleSet).rulesFired`: the ids of the rules that fire, ascending, without
 * duplicates (empty: safe; non-empty: unsafe). Same errors, in the same cases. The rule set must
 * not change while the function is in use (it caches per user and device).
 */
export function compileRuleSet(ruleSet: RuleSet): (detection: EvaluableDetection) => number[] {
  const byUser = new Map<string, Map<string, Compiled>>();
  return (detection) => {
    let devices = byUser.get(detection.user);
    if (!devices) byUser.set(detection.user, (devices = new Map()));
    let c = devices.get(detection.device);
    if (!c) devices.set(detection.device, (c = compileFor(ruleSet, detection.user, detection.device)));
    if (c.fallback) return evaluate(detection, ruleSet).rulesFired;
    if (c.rules.length === 0) return [];
    // The local time, computed once and only when some active hours apply (as evaluate does).
    let now: LocalTime | undefined;
    if (c.deviceHours) {
      now = localTime(detection.capturedAt, detection.tz);
      if (!within(c.deviceHours, now)) return [];
    }
    let active = c.rules;
    if (c.someHours) {
      const t = (now ??= localTime(detection.capturedAt, detection.tz));
      active = c.rules.filter((x) => !x.hours || within(x.hours, t));
    }
    const fired: number[] = [];
    const { objects, image } = detection;
    objects.forEach((obj) => {
      const cls = obj.class.trim().toLowerCase();
      const img = image.width * image.height;
      const area = img > 0 ? (Math.max(0, obj.box.width) * Math.max(0, obj.box.height)) / img : 0;
      for (const r of active) {
        if (!r.classes.has(cls) || !(obj.score >= r.minScore)) continue;
        if (r.minArea > 0 && !(area >= r.minArea)) continue;
        fired.push(r.ruleId);
      }
    });
    return fired.length < 2 ? fired : [...new Set(fired)].sort((a, b) => a - b);
  };
}
