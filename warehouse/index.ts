/**
 * The compliance records warehouse: append-only Parquet files partitioned by day and user,
 * compacted per closed day and month, a manifest of the live files, DuckDB views over them,
 * read-only ad-hoc SQL, the reports and the integrity check.
 */
export { appendRecords, type AppendOptions, type AppendResult } from './append.js';
export { Catalog, relationSql, type CatalogFile, type DayRange } from './catalog.js';
export {
  AUTO_COMPACT_STATE,
  COMPACT_LOCK,
  ROW_GROUP_ROWS,
  SORT_KEYS,
  SimulatedCrash,
  autoCompact,
  compactWarehouse,
  planCompaction,
  type AutoCompactOptions,
  type CompactOptions,
  type CompactResult,
  type CompactStep,
  type CompactedPartition,
  type PlannedPartition,
} from './compact.js';
export { jsonConverter, sqlIdent, sqlString, type JsonRow, type JsonValue, type SqlParam, type SqlParams } from './duck.js';
export {
  COMPACTED_LOG,
  CompactedLogLineSchema,
  MANIFEST,
  MANIFEST_LOCK,
  ManifestEntrySchema,
  readCompactedLog,
  readManifest,
  type CompactedLogLine,
  type ManifestEntry,
} from './files.js';
export { defaultThreads, type DuckOptions } from './instance.js';
export { JOURNAL_DIR, readJournals, type Journal } from './journal.js';
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
export { ERROR_KINDS, verifyWarehouse, type ProblemKind, type TableTotals, type VerifyOptions, type VerifyProblem, type VerifyResult } from './verify.js';
