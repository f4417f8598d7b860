import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { AttemptSchema, type Attempt } from '../alerts/index.js';
import { VigilError } from '../lib/errors.js';
import type { RepoStore } from '../repos/index.js';

/**
 * The delivery ledger: every attempt to deliver an alert, one append-only JSON line per attempt,
 * fsync'd before the next step, in `data/ledger/attempts/<alertId>.jsonl`. It is what makes
 * delivery idempotent across retries and worker crashes: a delivery that has a `delivered` or
 * `failed` line is never attempted again.
 */
export function ledgerFile(store: RepoStore, alertId: string): string {
  if (!/^[0-9a-f]{32}$/.test(alertId)) throw new VigilError('E_BAD_ID', `invalid alert id ${JSON.stringify(alertId)}`);
  return path.join(store.dataDir, 'ledger', 'attempts', `${alertId}.jsonl`);
}

/** Every recorded attempt of an alert (oldest first). */
export async function readAttempts(store: RepoStore, alertId: string): Promise<Attempt[]> {
  let text: string;
  try {
    text = await fsp.readFile(ledgerFile(store, alertId), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const out: Attempt[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const parsed = AttemptSchema.safeParse(JSON.parse(line));
    if (parsed.success) out.push(parsed.data);
  }
  return out;
}

/** Appends one attempt, durably. */
export async function recordAttempt(store: RepoStore, attempt: Attempt): Promise<void> {
  const file = ledgerFile(store, attempt.alertId);
  await fsp.mkdir(path.dirname(file), { recursive: true });
  const fh = await fsp.open(file, 'a');
  try {
    await fh.write(JSON.stringify(AttemptSchema.parse(attempt)) + '\n');
    await fh.sync();
  } finally {
    await fh.close();
  }
}
