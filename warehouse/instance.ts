import os from 'node:os';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';

/**
 * An in-memory DuckDB whose spill files go to the system temp folder (DuckDB's default is `.tmp`
 * in the current directory, which would litter wherever a command was run).
 */
export function memoryDuckDB(): Promise<DuckDBInstance> {
  return DuckDBInstance.create(':memory:', { temp_directory: path.join(os.tmpdir(), `vigil-duckdb-${process.pid}`) });
}
