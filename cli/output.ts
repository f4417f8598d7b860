/**
 * Tiny output helpers shared by every command: JSON to stdout, aligned tables, one-line errors.
 */
import { isVigilError, type VigilErrorCode } from '../lib/errors.js';

/** An error in how the command was called (bad option value, missing argument): exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/**
 * Awaits `work`; a VigilError with one of `codes` (an argument the operation refused, e.g. a bad
 * date or id) becomes a UsageError with the same message, so the command exits 2 like commander's
 * own checks. Use it only where those codes come from the arguments alone.
 */
export async function argumentsChecked<T>(codes: readonly VigilErrorCode[], work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (err) {
    if (codes.some((c) => isVigilError(err, c))) throw new UsageError((err as Error).message);
    throw err;
  }
}

/** A cell of a table: null and undefined print as `-`. */
export type Cell = string | number | boolean | null | undefined;

/** Writes `value` as pretty JSON (one document) to stdout. */
export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

function cellText(c: Cell): string {
  return c === null || c === undefined || c === '' ? '-' : String(c);
}

/**
 * Prints rows under a header, columns padded to their widest cell (the last column is not padded).
 * Prints `empty` instead when there are no rows and `empty` is given.
 */
export function printTable(header: string[], rows: Cell[][], opts: { indent?: string; empty?: string } = {}): void {
  const indent = opts.indent ?? '';
  if (rows.length === 0 && opts.empty !== undefined) {
    process.stdout.write(`${indent}${opts.empty}\n`);
    return;
  }
  const text = [header, ...rows.map((r) => r.map(cellText))];
  const widths = header.map((_, i) => Math.max(...text.map((r) => (r[i] ?? '').length)));
  const lines = text.map((r) =>
    indent +
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd(),
  );
  process.stdout.write(lines.join('\n') + '\n');
}

/** Prints `key  value` lines with the keys aligned. */
export function printFields(fields: [string, Cell][], indent = ''): void {
  const w = Math.max(0, ...fields.map(([k]) => k.length));
  process.stdout.write(fields.map(([k, v]) => `${indent}${k.padEnd(w)}  ${cellText(v)}`).join('\n') + '\n');
}

/**
 * The one-line message of any error: a VigilError's message as is; anything else, the first
 * line of its message.
 */
export function errorMessage(err: unknown): string {
  if (isVigilError(err)) return err.message.replace(/\s*\n\s*/g, ' ');
  const m = err instanceof Error ? err.message : String(err);
  return (m.split('\n').find((l) => l.trim()) ?? m).trim() || 'unknown error';
}

/**
 * The message of an error about one file, for a line that already names the file: system errors
 * (`ENOENT: no such file…, open '/x'`) lose the repeated path.
 */
export function fileErrorMessage(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT') return 'no such file or folder';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EISDIR') return 'is a folder, not a file';
  return errorMessage(err);
}

/**
 * Reports a failure that does not stop the command (e.g. one bad file among many): prints
 * `vigil: <message>` on one line to stderr and makes the process exit with 1 at the end.
 */
export function fail(message: string): void {
  process.stderr.write(`vigil: ${message.replace(/\s*\n\s*/g, ' ')}\n`);
  if (!process.exitCode) process.exitCode = 1;
}

/** First `n` characters of a commit id. */
export function shortId(oid: string | null | undefined, n = 12): string {
  return oid ? oid.slice(0, n) : '-';
}

/** Bytes as a human-readable size (`12.3 MiB`). */
export { formatBytes } from '../lib/format.js';
