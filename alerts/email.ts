import { Client } from '@sendgrid/client';
import { MailService } from '@sendgrid/mail';
import { VigilError } from '../lib/errors.js';
import { beginAttempt, httpResult, noAnswerResult, type AttemptResult } from './attempt.js';
import { alertHtml, alertSubject, alertText } from './format.js';
import { redactEmail, redactUrl } from './redact.js';
import type { Alert, Attempt, ChannelSettings } from './schema.js';

/** The SendGrid mail body of an alert (what `@sendgrid/mail` turns into a v3 `mail/send` request). */
export function emailMessage(alert: Alert, to: string, from: string) {
  return {
    to,
    from,
    subject: alertSubject(alert),
    text: alertText(alert),
    html: alertHtml(alert),
    customArgs: { alertId: alert.alertId },
    headers: { 'X-Vigil-Alert-Id': alert.alertId },
  };
}

/** Text of an answer body (SendGrid answers JSON errors, or nothing). */
function bodyText(data: unknown): string {
  if (data === undefined || data === null || data === '') return '';
  return typeof data === 'string' ? data : JSON.stringify(data);
}

/** The error shapes `@sendgrid/client` rejects with: its ResponseError (status >= 400) or an axios error. */
type SendError = {
  code?: unknown;
  status?: unknown;
  response?: { status?: unknown; body?: unknown; data?: unknown };
  isAxiosError?: unknown;
};

/** Classifies a rejection of `MailService.send`. */
function errorResult(err: unknown, signal: AbortSignal, timeoutMs: number): AttemptResult {
  const e = (err ?? {}) as SendError;
  // ResponseError: code = HTTP status, response.body = parsed body.
  if (e.response && typeof e.code === 'number') return httpResult(e.code, bodyText(e.response.body));
  // Axios error with an answer below 400 (e.g. an unexpected 3xx): response.status, response.data.
  if (e.response && typeof e.response.status === 'number') return httpResult(e.response.status, bodyText(e.response.data));
  // SendGrid's mail/send has no idempotency key: an unanswered request may not be repeated (RESEND_SAFE_CHANNELS).
  if (e.isAxiosError === true || signal.aborted) return noAnswerResult(err, signal, timeoutMs, 'email');
  // Anything else was thrown before a request was made (e.g. the mail helper rejected the message).
  return { statusCode: null, response: `not sent: ${err instanceof Error ? err.message : String(err)}`, outcome: 'failed' };
}

/**
 * Sends one alert e-mail through SendGrid v3 (`POST {SENDGRID_BASE_URL}/v3/mail/send`) with the
 * real `@sendgrid/mail` client: ONE request, subject `[Vigil] cat detected on alice/frontdoor (rule 100)`,
 * text and HTML bodies, `custom_args.alertId` and header `X-Vigil-Alert-Id`. Every call builds its
 * own client from `settings` (API key, base URL, timeout), so no state leaks between settings.
 * 2xx -> delivered; 408, 429, 5xx, connection refused -> retry; timeout or reset (the request may
 * have arrived) -> unknown, not retried; other 4xx -> failed. Never
 * throws for SendGrid's failures; the API key never appears in the record.
 * @throws VigilError E_CONFIG when SENDGRID_API_KEY or ALERT_EMAIL_FROM is missing.
 */
export async function sendEmail(alert: Alert, to: string, settings: ChannelSettings, attempt: number): Promise<Attempt> {
  const { sendgridApiKey: apiKey, emailFrom: from } = settings;
  if (apiKey === undefined || from === undefined) {
    throw new VigilError('E_CONFIG', 'e-mail through SendGrid needs SENDGRID_API_KEY and ALERT_EMAIL_FROM');
  }
  const host = redactUrl(settings.sendgridBaseUrl);
  const message = emailMessage(alert, to, from);
  const { finish } = beginAttempt({
    alertId: alert.alertId,
    channel: 'email',
    target: redactEmail(to),
    attempt,
    requestSummary: `POST ${host}/v3/mail/send to=${redactEmail(to)} subject="${message.subject}" alertId=${alert.alertId}`,
    secrets: [apiKey, `Bearer ${apiKey}`, to], // the address too: error answers may echo it
  });
  const signal = AbortSignal.timeout(settings.timeoutMs);
  const client = new Client();
  client.setApiKey(apiKey); // resets baseUrl to SendGrid's: set ours after it
  client.setDefaultRequest('baseUrl', settings.sendgridBaseUrl);
  // Not in the typings, but passed through to axios by the client's request merge. No redirect
  // is followed (as for webhooks): a 3xx is a failed delivery, its target never gets the message.
  client.setDefaultRequest({ signal, maxRedirects: 0 } as unknown as Parameters<typeof client.setDefaultRequest>[0]);
  const mail = new MailService();
  mail.setClient(client);
  try {
    const [response] = await mail.send(message);
    const messageId = response.headers['x-message-id'];
    const body = bodyText(response.body);
    return finish(httpResult(response.statusCode, `${typeof messageId === 'string' ? `x-message-id=${messageId} ` : ''}${body}`));
  } catch (err) {
    return finish(errorResult(err, signal, settings.timeoutMs));
  }
}
