/**
 * The rule engine: a pure, deterministic function from (detection, rule set, context) to a decision.
 */
import { VigilError } from '../lib/errors.js';
import type { DetectionDoc } from '../stages/schema.js';
import { isWithinActiveHours } from './hours.js';
import { localTime, type LocalTime } from './localTime.js';
import { resolveRules, type EffectiveRule } from './resolve.js';
import type { Decision, Match, RuleSet } from './schema.js';

/** The parts of a detection document the engine reads. */
export type EvaluableDetection = Pick<DetectionDoc, 'user' | 'device' | 'capturedAt' | 'tz' | 'objects' | 'image'>;

/** Evaluation context. */
export interface EvaluateContext {
  /**
   * Local wall-clock time to use for active hours instead of the one computed from the
   * detection's `capturedAt` and `tz` (replays, tests).
   */
  readonly localTime?: LocalTime;
}

function checkLocalTime(t: LocalTime): LocalTime {
  if (!Number.isInteger(t.hour) || t.hour < 0 || t.hour > 23 || !Number.isInteger(t.minute) || t.minute < 0 || t.minute > 59) {
    throw new VigilError('E_BAD_INPUT', `invalid context.localTime ${JSON.stringify(t)}: hour 0-23, minute 0-59`);
  }
  return t;
}

/** Box area as a fraction of the image area (0 for a degenerate image). */
function areaFraction(box: { width: number; height: number }, image: { width: number; height: number }): number {
  const img = image.width * image.height;
  return img > 0 ? (Math.max(0, box.width) * Math.max(0, box.height)) / img : 0;
}

/**
 * Decides whether a detection is unsafe for its user and device.
 *
 * An object matches a rule when its class is one of the rule's (effective) classes, its
 * `score >= minScore`, the local time is inside the rule's and the device's active hours (if any),
 * and its box covers at least the rule's and the device's `minBoxArea` fraction of the image.
 * Unsafe iff at least one object matches. Anything no active rule marks unsafe is safe.
 *
 * The local time is computed (only when some active hours apply) from `capturedAt` in `tz`,
 * unless `context.localTime` is given.
 *
 * @throws VigilError E_BAD_INPUT when active hours apply and `capturedAt`/`tz` are invalid.
 */
export function evaluate(detection: EvaluableDetection, ruleSet: RuleSet, context: EvaluateContext = {}): Decision {
  const eff = resolveRules(ruleSet, detection.user, detection.device);
  let now: LocalTime | undefined = context.localTime ? checkLocalTime(context.localTime) : undefined;
  const clock = (): LocalTime => (now ??= localTime(detection.capturedAt, detection.tz));

  const safe: Decision = { unsafe: false, configured: eff.configured, matches: [], rulesFired: [] };
  if (eff.rules.length === 0) return safe;
  if (eff.activeHours && !isWithinActiveHours(eff.activeHours, clock())) return safe;
  const active: EffectiveRule[] = eff.rules.filter((r) => !r.activeHours || isWithinActiveHours(r.activeHours, clock()));

  const matches: Match[] = [];
  detection.objects.forEach((obj, objectIndex) => {
    const cls = obj.class.trim().toLowerCase();
    const area = areaFraction(obj.box, detection.image);
    for (const r of active) {
      if (!r.classes.includes(cls) || !(obj.score >= r.minScore)) continue;
      const minArea = Math.max(r.minBoxArea ?? 0, eff.minBoxArea ?? 0);
      if (minArea > 0 && !(area >= minArea)) continue;
      matches.push({
        ruleId: r.ruleId,
        ruleName: r.ruleName,
        source: r.source,
        class: obj.class,
        score: obj.score,
        box: { x: obj.box.x, y: obj.box.y, width: obj.box.width, height: obj.box.height },
        objectIndex,
      });
    }
  });
  const rulesFired = [...new Set(matches.map((m) => m.ruleId))].sort((a, b) => a - b);
  return { unsafe: matches.length > 0, configured: eff.configured, matches, rulesFired };
}
