/**
 * Ad-hoc read-only SQL over the warehouse (`vigil sql "<query>"`).
 */
import { StatementType, type DuckDBConnection, type DuckDBPreparedStatement } from '@duckdb/node-api';
import { VigilError } from '../lib/errors.js';
import { duckMessage, jsonRows, type JsonRow } from './duck.js';
import { withConnection, type Warehouse } from './open.js';

/** Options of {@link runReadOnlySql}. */
export interface ReadOnlySqlOptions {
  /** At most this many rows are returned (default 10 000); `truncated` tells when there were more. */
  maxRows?: number;
}

/** Result of {@link runReadOnlySql}. */
export interface ReadOnlySqlResult {
  /** Column names in order (duplicates suffixed as DuckDB does). */
  columns: string[];
  rows: JsonRow[];
  /** True when the query produced more than `maxRows` rows. */
  truncated: boolean;
}

const ALLOWED_START = /^(select|with|from|values|describe|desc|summarize|show|explain|pragma)\b/i;

/** The statement with leading comments and whitespace removed. */
function stripLead(sql: string): string {
  let s = sql;
  for (;;) {
    const t = s.replace(/^\s+/, '').replace(/^--[^\n]*(\n|$)/, '').replace(/^\/\*[\s\S]*?\*\//, '');
    if (t === s) break;
    s = t;
  }
  return s;
}

/**
 * Runs one read-only statement on the warehouse and returns its rows (JSON-safe).
 *
 * Accepted: a single SELECT / WITH / FROM / VALUES / DESCRIBE / SUMMARIZE / SHOW / EXPLAIN [ANALYZE]
 * of those, or `PRAGMA table_info(...)`. The check is done by DuckDB's own parser (the prepared
 * statement's type must be SELECT, or EXPLAIN of a SELECT), not by pattern alone, and the
 * prepared statement that was checked is the one executed. Everything else (COPY, ATTACH,
 * INSTALL, LOAD, CREATE, INSERT, UPDATE, DELETE, SET, CALL, EXPORT, several statements) is refused.
 * The DuckDB side is locked too (see `openWarehouse`): files outside the warehouse are unreachable
 * and the configuration cannot change.
 *
 * @throws VigilError E_BAD_INPUT for a refused statement or a failing query (DuckDB's message).
 */
export async function runReadOnlySql(wh: Warehouse, sql: string, opts: ReadOnlySqlOptions = {}): Promise<ReadOnlySqlResult> {
  if (typeof sql !== 'string' || sql.trim() === '') throw new VigilError('E_BAD_INPUT', 'empty SQL');
  const maxRows = opts.maxRows ?? 10_000;
  if (!Number.isInteger(maxRows) || maxRows < 1) throw new VigilError('E_BAD_INPUT', 'maxRows must be a positive integer');

  const lead = stripLead(sql);
  if (!ALLOWED_START.test(lead) && !lead.startsWith('(')) throw refused(`only SELECT, WITH, DESCRIBE, SUMMARIZE, SHOW, EXPLAIN and PRAGMA table_info are allowed`);
  if (/^pragma\b/i.test(lead) && !/^pragma\s+table_info\s*\(/i.test(lead)) throw refused('the only PRAGMA allowed is table_info');
  if (/^explain\b/i.test(lead)) {
    const inner = stripLead(lead.replace(/^explain\s+(analyze\s+)?/i, ''));
    if (!/^(select|with|from|values|\()/i.test(inner)) throw refused('EXPLAIN is only allowed for SELECT queries');
  }

  return withConnection(wh, (con) => runChecked(con, sql, maxRows));
}

/** Parses with DuckDB, checks the single statement's type, runs the checked prepared statement. */
async function runChecked(con: DuckDBConnection, sql: string, maxRows: number): Promise<ReadOnlySqlResult> {
  let prepared: DuckDBPreparedStatement;
  try {
    const statements = await con.extractStatements(sql);
    if (statements.count !== 1) throw refused(`exactly one statement is allowed, got ${statements.count}`);
    prepared = await statements.prepare(0);
  } catch (err) {
    if (err instanceof VigilError) throw err;
    throw new VigilError('E_BAD_INPUT', `SQL error: ${duckMessage(err)}`);
  }
  try {
    const type = prepared.statementType;
    if (type !== StatementType.SELECT && type !== StatementType.EXPLAIN) throw refused(`statement type ${StatementType[type] ?? type} is not read-only`);
    let reader;
    try {
      reader = await prepared.streamAndReadUntil(maxRows + 1);
    } catch (err) {
      throw new VigilError('E_BAD_INPUT', `SQL error: ${duckMessage(err)}`);
    }
    const rows = jsonRows(reader);
    const truncated = rows.length > maxRows;
    return { columns: reader.deduplicatedColumnNames(), rows: rows.slice(0, maxRows), truncated };
  } finally {
    prepared.destroySync();
  }
}

function refused(why: string): VigilError {
  return new VigilError('E_BAD_INPUT', `read-only SQL: ${why}`);
}
