import { VigilError } from '../lib/errors.js';

/**
 * Checks an IANA time zone name (e.g. `Europe/Paris`, `UTC`) and returns it as it is usually
 * spelled: zone names are matched regardless of case, so `europe/paris` and `EUROPE/PARIS` are
 * `Europe/Paris` (one camera's tags and records then name one zone). An alias (`US/Pacific`,
 * `Asia/Kolkata`) is kept as given: ICU's own name for it can be an older one (`Asia/Calcutta`).
 * @throws VigilError E_BAD_INPUT
 */
export function assertTimeZone(tz: unknown): string {
  if (typeof tz !== 'string' || !/^[A-Za-z][A-Za-z0-9_+\-/]{0,63}$/.test(tz) || tz.includes('..')) {
    throw new VigilError('E_BAD_INPUT', `time zone ${JSON.stringify(tz)} is not an IANA zone name`);
  }
  let resolved: string;
  try {
    resolved = new Intl.DateTimeFormat('en-US', { timeZone: tz }).resolvedOptions().timeZone;
  } catch {
    throw new VigilError('E_BAD_INPUT', `unknown time zone ${JSON.stringify(tz)}`);
  }
  return resolved.toLowerCase() === tz.toLowerCase() ? resolved : tz;
}

/**
 * Parses a capture time: an ISO-8601 instant with a zone designator (`Z` or `±hh:mm`) or epoch
 * milliseconds. A local time without offset is refused: it would be ambiguous around DST changes.
 * @throws VigilError E_BAD_INPUT
 */
export function parseCaptureTime(value: unknown): Date {
  let d: Date | null = null;
  if (typeof value === 'number' || (typeof value === 'string' && /^\d{10,13}$/.test(value))) {
    d = new Date(Number(value));
  } else if (typeof value === 'string' && /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/.test(value)) {
    d = new Date(value);
  }
  if (d && typeof value === 'string' && !calendarDateExists(value)) d = null;
  if (!d || Number.isNaN(d.getTime())) {
    throw new VigilError('E_BAD_INPUT', `capture time ${JSON.stringify(value)} is not an ISO-8601 instant with a zone (e.g. 2026-11-27T22:42:33.120Z) or epoch milliseconds`);
  }
  if (d.getUTCFullYear() < 2000 || d.getUTCFullYear() > 2200) {
    throw new VigilError('E_BAD_INPUT', `capture time ${JSON.stringify(value)} is ${d.toISOString()}, outside the years 2000 to 2200 (UTC)`);
  }
  return d;
}

/** True when the `YYYY-MM-DD` that an ISO string starts with is a real calendar day (no Feb 30). */
function calendarDateExists(iso: string): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(iso);
  if (!m) return true;
  const [y, mo, da, h, mi] = m.slice(1).map(Number) as [number, number, number, number, number];
  const d = new Date(Date.UTC(y, mo - 1, da, h, mi));
  return d.getUTCFullYear() === y && d.getUTCMonth() === mo - 1 && d.getUTCDate() === da && h < 24 && mi < 60;
}

/** Compact UTC timestamp used in paths and tags: `YYYYMMDDTHHmmssSSSZ`. */
export function compactTimestamp(d: Date): string {
  return d.toISOString().replace(/[-:.]/g, '');
}

/** Time zone as it appears inside a tag: `/` becomes `.` (IANA names contain no dots). */
export function tzTagPart(tz: string): string {
  return tz.replace(/\//g, '.');
}

/** The frame tag `<user>-<device>-<timestamp>-<timezone>`. */
export function frameTag(user: string, device: string, timestamp: string, tz: string): string {
  return `${user}-${device}-${timestamp}-${tzTagPart(tz)}`;
}

/** Path of a frame's documents in every stage repo: `<user>-<device>/<timestamp>.json`. */
export function framePath(user: string, device: string, timestamp: string): string {
  return `${user}-${device}/${timestamp}.json`;
}

/** Local wall-clock time of an instant in a zone, as `YYYY-MM-DDTHH:mm:ss`. */
export function localTime(d: Date, tz: string): string {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-CA', { timeZone: tz, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' })
      .formatToParts(d)
      .map((p) => [p.type, p.value]),
  );
  return `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}:${parts.second}`;
}
