import { httpAttempt } from './http.js';
import { redactUrl } from './redact.js';
import type { Alert, Attempt, ChannelSettings } from './schema.js';

/** Body of a generic webhook: the alert with `event: 'vigil.alert'`. */
export type WebhookBody = { event: 'vigil.alert' } & Alert;

/** Parts of a webhook URL that may be secret (the whole URL, its path and query). */
export function urlSecrets(url: string): string[] {
  try {
    const u = new URL(url);
    const tail = `${u.pathname}${u.search}`;
    return [url, u.href, ...(tail.length > 1 ? [tail] : []), ...(u.password ? [u.password] : [])];
  } catch {
    return [url];
  }
}

/**
 * Sends one alert to a generic webhook: ONE `POST <url>` with the JSON {@link WebhookBody}, headers
 * `Content-Type: application/json` and `Idempotency-Key: <alertId>` (receivers de-duplicate
 * retries with it). 2xx -> delivered; 408, 429, 5xx, timeout, connection error -> retry; other
 * statuses (including redirects, which are not followed) -> failed. Never throws for a receiver's failure.
 * The record shows the URL's host only (webhook paths are often secrets).
 */
export async function sendWebhook(alert: Alert, url: string, settings: ChannelSettings, attempt: number): Promise<Attempt> {
  const host = redactUrl(url);
  const body: WebhookBody = { event: 'vigil.alert', ...alert };
  return httpAttempt({
    alertId: alert.alertId,
    channel: 'webhook',
    target: host,
    attempt,
    requestSummary: `POST ${host} event=vigil.alert alertId=${alert.alertId} kind=${alert.kind} rule=${alert.ruleId}`,
    secrets: urlSecrets(url),
    url,
    headers: { 'Content-Type': 'application/json', 'Idempotency-Key': alert.alertId },
    body: JSON.stringify(body),
    timeoutMs: settings.timeoutMs,
  });
}
