import { alertSubject, smsText } from './format.js';
import { beginAttempt } from './attempt.js';
import { redactEmail, redactPhone } from './redact.js';
import type { Alert, Attempt } from './schema.js';

/** An outbox entry: the channel that had no credentials and its (unredacted) address or phone. */
export interface OutboxTarget {
  via: 'email' | 'sms';
  target: string;
}

/**
 * Keeps an alert for a channel that has no credentials (no SENDGRID_API_KEY, no SMS_* credentials),
 * so the pipeline runs end to end without any: no request is made, and the returned record
 * (channel `outbox`, outcome `delivered`, statusCode null) says what would have been sent. The
 * record is the outbox: whoever stores attempts stores it. Pure apart from the clock; never throws
 * except for an invalid `attempt`.
 */
export function sendOutbox(alert: Alert, target: OutboxTarget, attempt: number): Attempt {
  const shown = target.via === 'email' ? redactEmail(target.target) : redactPhone(target.target);
  const what = target.via === 'email' ? `subject="${alertSubject(alert)}"` : `body="${smsText(alert)}"`;
  const missing = target.via === 'email' ? 'SENDGRID_API_KEY/ALERT_EMAIL_FROM' : 'SMS_ACCOUNT_SID/SMS_AUTH_TOKEN/SMS_FROM';
  const { finish } = beginAttempt({
    alertId: alert.alertId,
    channel: 'outbox',
    target: `${target.via}:${shown}`,
    attempt,
    requestSummary: `${target.via} to ${shown} kept in outbox ${what}`,
    secrets: [],
  });
  return finish({ statusCode: null, response: `kept in outbox: ${missing} not set, nothing sent`, outcome: 'delivered' });
}
