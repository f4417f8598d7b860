/**
 * The compliance records warehouse: append-only Parquet files partitioned by day and user,
 * DuckDB views over them, read-only ad-hoc SQL and the reports.
 */
export { appendRecords, type AppendOptions, type AppendResult } from './append.js';
export { jsonConverter, sqlIdent, sqlString, type JsonRow, type JsonValue, type SqlParam, type SqlParams } from './duck.js';
export { MANIFEST, ManifestEntrySchema, readManifest, type ManifestEntry } from './files.js';
export { openWarehouse, type OpenOptions, type Warehouse } from './open.js';
export {
  DailyReportSchema,
  DailyUserReportSchema,
  UserTotalsSchema,
  UsersReportSchema,
  dailyReport,
  dailyReportRows,
  findFrameRecords,
  formatTable,
  toCsv,
  usersReport,
  type DailyReport,
  type DailyReportOptions,
  type DailyUserReport,
  type FrameRecords,
  type UserTotals,
  type UsersReport,
  type UsersReportOptions,
} from './reports.js';
export * from './schema.js';
export { runReadOnlySql, type ReadOnlySqlOptions, type ReadOnlySqlResult } from './sql.js';
export { isoToMicros, microsToIso } from './time.js';
