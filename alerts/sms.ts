import { VigilError } from '../lib/errors.js';
import { smsText } from './format.js';
import { httpAttempt } from './http.js';
import { redactPhone, redactUrl } from './redact.js';
import type { Alert, Attempt, ChannelSettings } from './schema.js';

/** Twilio-style Messages endpoint of an account: `{base}/2010-04-01/Accounts/{sid}/Messages.json`. */
export function smsMessagesUrl(baseUrl: string, accountSid: string): string {
  return `${baseUrl.replace(/\/+$/, '')}/2010-04-01/Accounts/${encodeURIComponent(accountSid)}/Messages.json`;
}

/**
 * Sends one alert by SMS through a Twilio-style REST API: ONE form-encoded
 * `POST {SMS_API_BASE_URL}/2010-04-01/Accounts/{sid}/Messages.json` with `To`, `From`, `Body` and
 * HTTP basic auth `sid:token` (Twilio answers 201 with the message's `sid`). 2xx -> delivered;
 * 408, 429, 5xx, timeout, connection error -> retry; other 4xx -> failed. Never throws for the
 * provider's failures; the record shows the phone's last 4 digits and no credential.
 * @throws VigilError E_CONFIG when SMS_ACCOUNT_SID, SMS_AUTH_TOKEN or SMS_FROM is missing.
 */
export async function sendSms(alert: Alert, to: string, settings: ChannelSettings, attempt: number): Promise<Attempt> {
  const { smsAccountSid: sid, smsAuthToken: token, smsFrom: from } = settings;
  if (sid === undefined || token === undefined || from === undefined) {
    throw new VigilError('E_CONFIG', 'SMS needs SMS_ACCOUNT_SID, SMS_AUTH_TOKEN and SMS_FROM');
  }
  const url = smsMessagesUrl(settings.smsApiBaseUrl, sid);
  const body = smsText(alert);
  const basic = Buffer.from(`${sid}:${token}`).toString('base64');
  return httpAttempt({
    alertId: alert.alertId,
    channel: 'sms',
    target: redactPhone(to),
    attempt,
    requestSummary: `POST ${redactUrl(url)} Messages.json To=${redactPhone(to)} From=${redactPhone(from)} Body=${body.length} chars`,
    secrets: [token, basic, sid, to], // the number too: Twilio echoes it in its answer
    url,
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', Authorization: `Basic ${basic}`, Accept: 'application/json' },
    body: new URLSearchParams({ To: to, From: from, Body: body }).toString(),
    // An SMS API has no de-duplication key: a timeout is `unknown`, not retried (RESEND_SAFE_CHANNELS).
    timeoutMs: settings.timeoutMs,
  });
}
