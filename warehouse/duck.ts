/**
 * Small DuckDB helpers shared by the warehouse: SQL quoting and the conversion of results to
 * JSON-safe rows (instants as ISO 8601 UTC strings, integers as numbers when exact).
 */
import {
  DuckDBTypeId,
  JsonDuckDBValueConverter,
  DuckDBTimestampTZValue,
  DuckDBTimestampValue,
  type DuckDBResultReader,
  type DuckDBValue,
  type DuckDBValueConverter,
} from '@duckdb/node-api';
import { microsToIso } from './time.js';

/** A JSON value. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** One result row: column name -> JSON value. */
export type JsonRow = Record<string, JsonValue>;

/** A query parameter. */
export type SqlParam = string | number | boolean | null | bigint;

/** Positional (`$1`) or named (`$name`) parameters. */
export type SqlParams = readonly SqlParam[] | Readonly<Record<string, SqlParam>>;

/** A SQL string literal. */
export function sqlString(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

/** A quoted SQL identifier. */
export function sqlIdent(s: string): string {
  return `"${s.replace(/"/g, '""')}"`;
}

function integer(v: bigint): number | string {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
}

/**
 * DuckDB value -> JSON: BIGINT/HUGEINT as numbers when exact (else strings), DECIMAL as numbers,
 * TIMESTAMP / TIMESTAMPTZ as ISO 8601 UTC strings, DATE as `YYYY-MM-DD`; everything else as
 * `@duckdb/node-api`'s JSON converter does (lists as arrays, structs as objects).
 */
export const jsonConverter: DuckDBValueConverter<JsonValue> = (value: DuckDBValue, type, converter) => {
  if (value === null) return null;
  switch (type.typeId) {
    case DuckDBTypeId.BIGINT:
    case DuckDBTypeId.UBIGINT:
    case DuckDBTypeId.HUGEINT:
    case DuckDBTypeId.UHUGEINT:
      return typeof value === 'bigint' ? integer(value) : (JsonDuckDBValueConverter(value, type, converter) as JsonValue);
    case DuckDBTypeId.DECIMAL:
      return Number(String(value));
    case DuckDBTypeId.TIMESTAMP:
    case DuckDBTypeId.TIMESTAMP_TZ:
      if ((value instanceof DuckDBTimestampTZValue || value instanceof DuckDBTimestampValue) && value.isFinite) return microsToIso(value.micros);
      return String(value);
    default:
      return JsonDuckDBValueConverter(value, type, converter) as JsonValue;
  }
};

/** Rows of a read result as JSON-safe objects (duplicate column names deduplicated as DuckDB does). */
export function jsonRows(reader: DuckDBResultReader): JsonRow[] {
  return reader.convertRowObjects(jsonConverter) as JsonRow[];
}

/** The message of a DuckDB error, on one line. */
export function duckMessage(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '';
}
