import { alertClasses, alertSummary, evidenceRef, formatLocalTime } from './format.js';
import { httpAttempt } from './http.js';
import { redactUrl } from './redact.js';
import type { Alert, Attempt, ChannelSettings } from './schema.js';
import { urlSecrets } from './webhook.js';

/** The public PagerDuty Events API v2 endpoint. */
export const PAGERDUTY_PUBLIC_EVENTS_URL = 'https://events.pagerduty.com/v2/enqueue';

/** Where a PagerDuty contact is sent, and with which integration key. */
export interface PagerDutyTarget {
  /** Events API v2 enqueue URL. */
  url: string;
  /** The service's integration (routing) key, from the user's contacts. */
  routingKey: string;
}

/** A PagerDuty Events v2 `trigger` event. */
export interface PagerDutyEvent {
  routing_key: string;
  event_action: 'trigger';
  dedup_key: string;
  client: string;
  payload: {
    summary: string;
    source: string;
    severity: 'critical' | 'warning';
    timestamp: string;
    component: string;
    group: string;
    class: string;
    custom_details: Record<string, unknown>;
  };
}

/** The Events v2 event for an alert: `dedup_key` = alertId, severity critical (threat) or warning (camera fault). */
export function pagerDutyEvent(alert: Alert, routingKey: string): PagerDutyEvent {
  return {
    routing_key: routingKey,
    event_action: 'trigger',
    dedup_key: alert.alertId,
    client: 'Vigil',
    payload: {
      summary: alertSummary(alert).slice(0, 1024),
      source: alert.tag,
      severity: alert.kind === 'camera_fault' ? 'warning' : 'critical',
      timestamp: alert.capturedAt,
      component: alert.device,
      group: alert.site,
      class: alert.kind === 'camera_fault' ? 'camera_fault' : alertClasses(alert).join(',') || 'threat',
      custom_details: {
        alertId: alert.alertId,
        frameId: alert.frameId,
        user: alert.user,
        device: alert.device,
        site: alert.site,
        localTime: formatLocalTime(alert.capturedAt, alert.tz),
        ruleId: alert.ruleId,
        ruleName: alert.ruleName,
        rulesCommit: alert.rulesCommit,
        matches: alert.matches,
        evidence: { ...alert.evidence, ref: evidenceRef(alert) },
      },
    },
  };
}

/**
 * The URL a PagerDuty contact is sent to: a contact naming PagerDuty's public endpoint goes to
 * `settings.pagerdutyEventsUrl` (PAGERDUTY_EVENTS_URL: EU endpoint, proxy, local stand-in); any
 * other URL the user wrote is used as is.
 */
export function pagerDutyUrl(contactUrl: string, settings: ChannelSettings): string {
  const norm = (u: string) => {
    try {
      const x = new URL(u);
      return `${x.origin}${x.pathname.replace(/\/+$/, '')}`;
    } catch {
      return u;
    }
  };
  return norm(contactUrl) === norm(PAGERDUTY_PUBLIC_EVENTS_URL) ? settings.pagerdutyEventsUrl : contactUrl;
}

/**
 * Triggers one PagerDuty incident for an alert: ONE `POST` of the Events v2 event to `target.url`
 * (`/v2/enqueue`; PagerDuty answers 202 `{status:'success', dedup_key}`). The dedup key is the
 * alertId, so a retry never opens a second incident. 2xx -> delivered; 408, 429, 5xx, timeout,
 * connection error -> retry; other 4xx (invalid event, bad routing key) -> failed. Never throws
 * for PagerDuty's failures; the routing key never appears in the record.
 */
export async function sendPagerDuty(alert: Alert, target: PagerDutyTarget, settings: ChannelSettings, attempt: number): Promise<Attempt> {
  const host = redactUrl(target.url);
  const event = pagerDutyEvent(alert, target.routingKey);
  return httpAttempt({
    alertId: alert.alertId,
    channel: 'pagerduty',
    target: host,
    attempt,
    requestSummary: `POST ${host} event_action=trigger dedup_key=${alert.alertId} severity=${event.payload.severity} source=${alert.tag}`,
    secrets: [target.routingKey, ...(target.url === PAGERDUTY_PUBLIC_EVENTS_URL ? [] : urlSecrets(target.url))],
    url: target.url,
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(event),
    timeoutMs: settings.timeoutMs,
  });
}
