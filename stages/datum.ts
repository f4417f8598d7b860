import { createHash } from 'node:crypto';

/**
 * Datum key (Pachyderm's datums): a hash of everything a stage's output for one input depends on.
 * A stage skips an input whose output already carries the same datum key.
 */
export function datumKey(stage: string, stageVersion: string, inputHash: string, configHash: string): string {
  return createHash('sha256').update(JSON.stringify([stage, stageVersion, inputHash, configHash])).digest('hex');
}

/** Stable hash of a JSON-serialisable config. */
export function configHash(config: unknown): string {
  return createHash('sha256').update(JSON.stringify(config)).digest('hex');
}
