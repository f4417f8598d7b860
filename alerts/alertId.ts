import { createHash } from 'node:crypto';
import { VigilError } from '../lib/errors.js';

/**
 * The id of the alert raised by one rule on one frame under one rule-set version: the first 32 hex
 * digits of a sha256 over those three values. Re-running a batch, retrying an activity or replaying
 * a workflow computes the same id, so it can never create a second alert (and it is the
 * idempotency key handed to every provider).
 *
 * ```ts
 * alertId(frameId, rulesCommit, 100) // '3f1c…' (32 hex), same inputs -> same id
 * ```
 * @param frameId the frame's sha256.
 * @param rulesCommit the rule-set version (commit id or hash) the decision was made with.
 * @param ruleId the rule id (0 for includes); a string is accepted for non-rule alerts (e.g. `camera_fault`).
 * @throws VigilError E_BAD_INPUT for an empty argument or a non-integer rule id.
 */
export function alertId(frameId: string, rulesCommit: string, ruleId: number | string): string {
  if (typeof frameId !== 'string' || frameId === '') throw new VigilError('E_BAD_INPUT', 'alertId: frameId must be a non-empty string');
  if (typeof rulesCommit !== 'string' || rulesCommit === '') throw new VigilError('E_BAD_INPUT', 'alertId: rulesCommit must be a non-empty string');
  if (typeof ruleId === 'number' ? !Number.isSafeInteger(ruleId) : typeof ruleId !== 'string' || ruleId === '') {
    throw new VigilError('E_BAD_INPUT', `alertId: invalid rule id ${JSON.stringify(ruleId)}`);
  }
  // JSON array: unambiguous boundaries between the parts; a rule id 7 and '7' mean the same rule.
  const material = JSON.stringify(['vigil.alert.v1', frameId, rulesCommit, String(ruleId)]);
  return createHash('sha256').update(material).digest('hex').slice(0, 32);
}
