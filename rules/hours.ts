/**
 * Active-hours windows: `from` inclusive, `to` exclusive, crossing midnight when `from > to`.
 */
import { VigilError } from '../lib/errors.js';
import type { LocalTime } from './localTime.js';
import type { ActiveHours } from './schema.js';

/** Minutes since local midnight of an `HH:MM` clock string. @throws VigilError E_BAD_INPUT */
export function clockMinutes(clock: string): number {
  const m = /^([01]\d|2[0-3]):([0-5]\d)$/.exec(clock);
  if (!m) throw new VigilError('E_BAD_INPUT', `invalid clock time ${JSON.stringify(clock)}: expected "HH:MM"`);
  return Number(m[1]) * 60 + Number(m[2]);
}

/**
 * True when the local time lies in the window: `from <= t < to`, or for a window crossing midnight
 * (`from > to`, e.g. 22:00–06:00) `t >= from || t < to`. Minute resolution.
 */
export function isWithinActiveHours(hours: ActiveHours, time: LocalTime): boolean {
  const from = clockMinutes(hours.from);
  const to = clockMinutes(hours.to);
  const t = time.hour * 60 + time.minute;
  return from < to ? t >= from && t < to : t >= from || t < to;
}
