/**
 * Exact conversions between ISO 8601 instants and DuckDB's microseconds since the epoch (UTC).
 * `Date` only keeps milliseconds; these keep microseconds so values round-trip through Parquet.
 */
import { localTime } from '../ingest/frameTag.js';
import { VigilError } from '../lib/errors.js';

const ISO = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$/;

/**
 * Microseconds since 1970-01-01T00:00:00Z of an ISO 8601 instant with `Z` or `±HH:MM`
 * (digits beyond microseconds are truncated).
 * @throws VigilError E_BAD_INPUT for anything else.
 */
export function isoToMicros(iso: string): bigint {
  const m = ISO.exec(iso);
  const ms = m === null ? NaN : Date.parse(`${m[1]}.${(m[2] ?? '').slice(0, 3).padEnd(3, '0')}${m[3]}`);
  if (m === null || Number.isNaN(ms)) throw new VigilError('E_BAD_INPUT', `not an ISO 8601 instant: ${JSON.stringify(iso)}`);
  return BigInt(ms) * 1000n + BigInt((m[2] ?? '').slice(3, 6).padEnd(3, '0'));
}

/** ISO 8601 UTC string of `micros`: `.sssZ`, or `.ssssssZ` when there are microseconds. */
export function microsToIso(micros: bigint): string {
  const ms = micros >= 0n ? micros / 1000n : -((-micros + 999n) / 1000n);
  const rest = micros - ms * 1000n;
  const base = new Date(Number(ms)).toISOString();
  return rest === 0n ? base : `${base.slice(0, -1)}${rest.toString().padStart(3, '0')}Z`;
}

/** UTC calendar date `YYYY-MM-DD` of `micros`. */
export function microsToUtcDay(micros: bigint): string {
  return microsToIso(micros).slice(0, 10);
}

/** Days since 1970-01-01 of a `YYYY-MM-DD` date (DuckDB's DATE representation). */
export function dateToDays(date: string): number {
  const ms = Date.parse(`${date}T00:00:00Z`);
  if (!/^\d{4}-\d{2}-\d{2}$/.test(date) || Number.isNaN(ms) || new Date(ms).toISOString().slice(0, 10) !== date) {
    throw new VigilError('E_BAD_INPUT', `not a date (YYYY-MM-DD): ${JSON.stringify(date)}`);
  }
  return ms / 86_400_000;
}

/** `date` plus `n` days, as `YYYY-MM-DD`. */
export function addDays(date: string, n: number): string {
  return new Date((dateToDays(date) + n) * 86_400_000).toISOString().slice(0, 10);
}

/**
 * The first instant (ISO, UTC) whose local date in `tz` is `date` or later: where the day `date`
 * begins there. Found by bisection on the instants around it, so a midnight that happens twice
 * (clocks set back an hour at 01:00, as in Havana) gives the first one and a midnight that never
 * happens (clocks set forward at 00:00) gives the instant the day begins.
 */
export function zoneDayStart(date: string, tz: string): string {
  const utcMidnight = dateToDays(date) * 86_400_000;
  // Every zone's offset is within ±15 hours: the day begins in this interval.
  let lo = utcMidnight - 15 * 3_600_000;
  let hi = utcMidnight + 15 * 3_600_000;
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    // The local date as the warehouse's local_date column has it (records stage).
    if (localTime(new Date(mid), tz).slice(0, 10) >= date) hi = mid;
    else lo = mid;
  }
  return new Date(hi).toISOString();
}
