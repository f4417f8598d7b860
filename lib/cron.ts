/**
 * Checking five-field cron expressions (minute hour day-of-month month day-of-week) before they
 * reach Temporal, so a bad VIGIL_REPROCESS_CRON stops `vigil start` with the reason instead of
 * leaving the previous schedule running.
 */

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

/** Each field's name, range and names (months 1-12, days 0-7 with 0 and 7 Sunday). */
const FIELDS: { name: string; min: number; max: number; names?: string[]; first?: number }[] = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: MONTHS, first: 1 },
  { name: 'day of week', min: 0, max: 7, names: DAYS, first: 0 },
];

function value(text: string, f: (typeof FIELDS)[number]): number | string {
  const named = f.names?.indexOf(text.toLowerCase()) ?? -1;
  if (named >= 0) return named + f.first!;
  if (!/^\d+$/.test(text)) return `${f.name}: "${text}" is not a number${f.names ? ' or a name' : ''}`;
  const n = Number(text);
  return n < f.min || n > f.max ? `${f.name}: ${n} is not in ${f.min}-${f.max}` : n;
}

function checkField(text: string, f: (typeof FIELDS)[number]): string | null {
  for (const item of text.split(',')) {
    const [range, step, extra] = item.split('/');
    if (extra !== undefined || range === '' || step === '') return `${f.name}: "${item}" is not a value, range or step`;
    if (step !== undefined && (!/^\d+$/.test(step) || Number(step) < 1)) return `${f.name}: step "${step}" must be a whole number from 1`;
    if (range === '*') continue;
    const [lo, hi, more] = range!.split('-');
    if (more !== undefined || lo === '' || hi === '') return `${f.name}: "${range}" is not a value or a range`;
    const a = value(lo!, f);
    if (typeof a === 'string') return a;
    if (hi !== undefined) {
      const b = value(hi, f);
      if (typeof b === 'string') return b;
      if (b < a) return `${f.name}: range ${range} ends before it starts`;
    }
  }
  return null;
}

/**
 * Checks a five-field cron expression: `*`, values, names (JAN-DEC, SUN-SAT), ranges, lists and
 * steps, each within its field's range.
 * @returns the first problem, or null when the expression is valid.
 */
export function cronProblem(expr: string): string | null {
  const fields = expr.trim().split(/\s+/);
  if (fields.length !== 5) return `expected 5 fields (minute hour day-of-month month day-of-week), got ${fields.length}`;
  for (const [i, f] of FIELDS.entries()) {
    const p = checkField(fields[i]!, f);
    if (p) return p;
  }
  return null;
}
