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

/**
 * A zone's formatter, and whether its pattern is "<hour>:<minute>" (checked once on a known
 * instant), so that a plain `format` string of the shape `HH:MM` can be read without formatToParts.
 */
interface ZoneFormatter {
  readonly format: Intl.DateTimeFormat;
  readonly hourColonMinute: boolean;
}

/** One formatter per zone: building them is slow, using them is pure. */
const formatters = new Map<string, ZoneFormatter>();

function formatterFor(timeZone: string): ZoneFormatter {
  let f = formatters.get(timeZone);
  if (!f) {
    let format: Intl.DateTimeFormat;
    try {
      format = new Intl.DateTimeFormat('en-US', { timeZone, hourCycle: 'h23', hour: '2-digit', minute: '2-digit' });
    } catch {
      throw new VigilError('E_BAD_INPUT', `unknown time zone ${JSON.stringify(timeZone)}: use an IANA name such as Europe/Paris`, {
        tz: timeZone,
      });
    }
    const parts = format.formatToParts(0);
    const hourColonMinute = parts.length === 3 && parts[0]!.type === 'hour' && parts[1]!.type === 'literal' && parts[1]!.value === ':' && parts[2]!.type === 'minute';
    f = { format, hourColonMinute };
    if (formatters.size < 1000) formatters.set(timeZone, f);
  }
  return f;
}

/** Value of two ASCII digits at `i` of `s`, or -1. */
function twoDigits(s: string, i: number): number {
  const a = s.charCodeAt(i) - 48;
  const b = s.charCodeAt(i + 1) - 48;
  return a >= 0 && a <= 9 && b >= 0 && b <= 9 ? a * 10 + b : -1;
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
  const f = formatterFor(timeZone);
  if (f.hourColonMinute) {
    // Fast path: the formatted string itself, when it is exactly "HH:MM" (else the parts below).
    const text = f.format.format(ms);
    const hour = text.length === 5 && text.charCodeAt(2) === 58 ? twoDigits(text, 0) : -1;
    const minute = hour >= 0 ? twoDigits(text, 3) : -1;
    if (minute >= 0 && minute <= 59) return { hour: hour % 24, minute };
  }
  const parts = f.format.formatToParts(ms);
  const hour = Number(parts.find((p) => p.type === 'hour')?.value);
  const minute = Number(parts.find((p) => p.type === 'minute')?.value);
  if (!Number.isInteger(hour) || !Number.isInteger(minute)) {
    throw new VigilError('E_BAD_INPUT', `cannot compute the local time of ${new Date(ms).toISOString()} in ${timeZone}`);
  }
  return { hour: hour % 24, minute };
}
