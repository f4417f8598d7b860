/**
 * Alert cooldown: after an alert for (user, device, rule) is sent, further alerts for the same key
 * are suppressed for a while. Pure functions; where the last-sent times are kept is the caller's
 * business (e.g. workflow state or the records warehouse).
 */
import { VigilError } from '../lib/errors.js';

/**
 * Key of the cooldown bucket of an alert: `<user>/<device>/<ruleId>`. User and device ids cannot
 * contain `/`, so keys never collide.
 */
export function cooldownKey(user: string, device: string, ruleId: number | string): string {
  return `${user}/${device}/${String(ruleId)}`;
}

/**
 * True when an alert must be suppressed because the last one for its key was sent less than
 * `cooldownMs` ago. Never suppressed when nothing was sent yet or `cooldownMs <= 0`; exactly
 * `cooldownMs` after the last one it is sent again. A last-sent time in the future (clock moved
 * back) counts as within the cooldown.
 * @throws VigilError E_BAD_INPUT for a non-finite time or cooldown.
 */
export function isSuppressed(lastSentAtMs: number | undefined, nowMs: number, cooldownMs: number): boolean {
  if (!Number.isFinite(nowMs) || !Number.isFinite(cooldownMs) || (lastSentAtMs !== undefined && !Number.isFinite(lastSentAtMs))) {
    throw new VigilError('E_BAD_INPUT', 'isSuppressed: times and cooldown must be finite numbers');
  }
  if (lastSentAtMs === undefined || cooldownMs <= 0) return false;
  return nowMs - lastSentAtMs < cooldownMs;
}
