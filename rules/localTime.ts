/**
 * Local wall-clock time of an instant in an IANA time zone, computed with Intl (so daylight-saving
 * changes follow the tz database, never a fixed offset).
 */
import { VigilError } from '../lib/errors.js';

/** Hour (0–23) and minute (0–59) on a local wall clock. */
export interface LocalTime {
  readonly hour: number;
  readonly minute: number;
}

/** ISO 8601 date-time with an explicit `Z` or offset (no local, zone-less times). */
const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;

/** One formatter per zone: building them is slow, using them is pure. */
const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    try {
      f = new Intl.DateTimeFormat('en-US', { timeZone, hourCycle: 'h23', hour: '2-digit', minute: '2-digit' });
    } catch {
      throw new VigilError('E_BAD_INPUT', `unknown time zone ${JSON.stringify(timeZone)}: use an IANA name such as Europe/Paris`, {
        tz: timeZone,
      });
    }
    if (formatters.size < 1000) formatters.set(timeZone, f);
  }
  return f;
}

function toEpochMs(at: string | Date): number {
  const ms = typeof at === 'string' ? (ISO_INSTANT.test(at) ? Date.parse(at) : Number.NaN) : at.getTime();
  if (!Number.isFinite(ms)) {
    throw new VigilError('E_BAD_INPUT', `invalid instant ${JSON.stringify(String(at))}: expected ISO 8601 with Z or an offset`);
  }
  return ms;
}

/**
 * Local hour and minute of `at` in `timeZone`.
 *
 * ```ts
 * localTime('2024-07-01T21:30:00Z', 'Europe/Paris') // { hour: 23, minute: 30 }
 * ```
 * @param at an ISO 8601 instant with `Z` or an offset (e.g. a detection's `capturedAt`), or a Date.
 * @param timeZone an IANA zone name (e.g. a detection's `tz`).
 * @throws VigilError E_BAD_INPUT for an invalid instant or an unknown zone.
 */
export function localTime(at: string | Date, timeZone: string): LocalTime {
  const ms = toEpochMs(at);
  const parts = formatterFor(timeZone).formatToParts(ms);
  const hour = Number(parts.find((p) => p.type === 'hour')?.value);
  const minute = Number(parts.find((p) => p.type === 'minute')?.value);
  if (!Number.isInteger(hour) || !Number.isInteger(minute)) {
    throw new VigilError('E_BAD_INPUT', `cannot compute the local time of ${new Date(ms).toISOString()} in ${timeZone}`);
  }
  return { hour: hour % 24, minute };
}
