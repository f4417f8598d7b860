import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { AttemptSchema, SendingSchema, WithdrawnSchema, type Attempt, type Sending } from '../alerts/index.js';
import { VigilError } from '../lib/errors.js';
import { fsyncPath, mkdirDurably } from '../lib/fsync.js';
import type { RepoStore } from '../repos/index.js';

/**
 * The delivery ledger: every attempt to deliver an alert, one append-only JSON line per attempt,
 * fsync'd before the next step, in `data/ledger/attempts/<alertId>.jsonl`. It is what makes
 * delivery idempotent across retries and worker crashes: a delivery that has a `delivered`,
 * `failed` or `unknown` line is never attempted again, and on e-mail and SMS a `sending` mark
 * written before each request means a worker killed during the request never leads to a second
 * one (the next try records `unknown`).
 */
export function ledgerFile(store: RepoStore, alertId: string): string {
  if (!/^[0-9a-f]{32}$/.test(alertId)) throw new VigilError('E_BAD_ID', `invalid alert id ${JSON.stringify(alertId)}`);
  return path.join(store.dataDir, 'ledger', 'attempts', `${alertId}.jsonl`);
}

/** An alert's ledger: its recorded attempts and its `sending` marks, oldest first. */
export interface Ledger {
  attempts: Attempt[];
  /** Deliveries begun on channels that must not send twice (see SendingSchema). */
  sending: Sending[];
}

/**
 * Reads an alert's ledger; lines that are neither an attempt nor a `sending` mark are skipped, and
 * so are marks withdrawn later (see WithdrawnSchema).
 */
export async function readLedger(store: RepoStore, alertId: string): Promise<Ledger> {
  let text: string;
  try {
    text = await fsp.readFile(ledgerFile(store, alertId), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { attempts: [], sending: [] };
    throw err;
  }
  const out: Ledger = { attempts: [], sending: [] };
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      continue; // a line torn by a power loss: the last one written, never acted upon
    }
    const attempt = AttemptSchema.safeParse(value);
    if (attempt.success) {
      out.attempts.push(attempt.data);
      continue;
    }
    const mark = SendingSchema.safeParse(value);
    if (mark.success) out.sending.push(mark.data.sending);
    const back = WithdrawnSchema.safeParse(value);
    if (back.success) {
      // Takes back the mark it answers, written before it; a later mark of the same attempt number
      // (the next try, once the delivery can go out) stands.
      const w = back.data.withdrawn;
      const i = out.sending.findIndex((m) => m.channel === w.channel && m.target === w.target && m.attempt === w.attempt);
      if (i >= 0) out.sending.splice(i, 1);
    }
  }
  return out;
}

/** Every recorded attempt of an alert (oldest first). */
export async function readAttempts(store: RepoStore, alertId: string): Promise<Attempt[]> {
  return (await readLedger(store, alertId)).attempts;
}

/**
 * Appends one line to an alert's ledger, durably (fsync'd before it returns). An alert's first
 * line also makes the ledger's name durable (its folder fsync'd), so a power loss cannot take the
 * file, and with it a `sending` mark, away.
 */
async function appendLine(store: RepoStore, alertId: string, line: string): Promise<void> {
  const file = ledgerFile(store, alertId);
  await mkdirDurably(path.dirname(file));
  const fh = await fsp.open(file, 'a');
  try {
    const fresh = (await fh.stat()).size === 0;
    await fh.write(line + '\n');
    await fh.sync();
    if (fresh) await fsyncPath(path.dirname(file));
  } finally {
    await fh.close();
  }
}

/** Appends one attempt, durably. */
export async function recordAttempt(store: RepoStore, attempt: Attempt): Promise<void> {
  await appendLine(store, attempt.alertId, JSON.stringify(AttemptSchema.parse(attempt)));
}

/** Marks a delivery as begun, durably, before its request goes out (see SendingSchema). */
export async function recordSending(store: RepoStore, sending: Sending): Promise<void> {
  await appendLine(store, sending.alertId, JSON.stringify(SendingSchema.parse({ sending })));
}

/** Takes a `sending` mark back, durably: its delivery threw before its request went out. */
export async function recordWithdrawn(store: RepoStore, sending: Sending): Promise<void> {
  await appendLine(store, sending.alertId, JSON.stringify(WithdrawnSchema.parse({ withdrawn: sending })));
}
