import type { RepoStore } from '../repos/index.js';
import { recordsStage, type RecordsInput, type RecordsOutput } from '../stages/records.js';
import { asActivity } from './failure.js';

/** The records activity: appends a chunk's outcome to the Parquet warehouse. */
export function makeRecordsActivity(store: RepoStore) {
  return asActivity(async function recordsStageActivity(input: RecordsInput): Promise<RecordsOutput> {
    return recordsStage(store, input);
  });
}
