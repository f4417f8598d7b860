/**
 * Message text of an alert (pure): subject, plain text, HTML, one-line summary and SMS body, with
 * the capture time shown on the device's own wall clock.
 */
import type { Alert } from './schema.js';

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string): Intl.DateTimeFormat | undefined {
  let f = formatters.get(timeZone);
  if (!f) {
    try {
      f = new Intl.DateTimeFormat('en-US', {
        timeZone,
        hourCycle: 'h23',
        year: 'numeric',
        month: '2-digit',
        day: '2-digit',
        hour: '2-digit',
        minute: '2-digit',
        second: '2-digit',
        timeZoneName: 'shortOffset',
      });
    } catch {
      return undefined;
    }
    if (formatters.size < 1000) formatters.set(timeZone, f);
  }
  return f;
}

/**
 * Wall-clock time of `at` in `timeZone`: `2024-07-01 23:30:00 Europe/Paris (GMT+2)`. An unknown
 * zone falls back to UTC (`2024-07-01 21:30:00 UTC`) rather than failing a delivery; an invalid
 * instant is returned as given.
 */
export function formatLocalTime(at: string, timeZone: string): string {
  const ms = Date.parse(at);
  if (!Number.isFinite(ms)) return at;
  const f = formatterFor(timeZone);
  if (!f) return `${new Date(ms).toISOString().slice(0, 19).replace('T', ' ')} UTC`;
  const p = Object.fromEntries(f.formatToParts(ms).map((x) => [x.type, x.value]));
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second} ${timeZone} (${p.timeZoneName})`;
}

/** Distinct classes of the alert's matches, in order of first appearance (`['cat', 'dog']`). */
export function alertClasses(alert: Alert): string[] {
  return [...new Set(alert.matches.map((m) => m.class))];
}

/** Best score per class, `cat 0.89, dog 0.81`. */
export function formatMatches(alert: Alert): string {
  const best = new Map<string, number>();
  for (const m of alert.matches) best.set(m.class, Math.max(best.get(m.class) ?? 0, m.score));
  return [...best].map(([c, s]) => `${c} ${s.toFixed(2)}`).join(', ');
}

/** `alice/frontdoor`. */
export function deviceLabel(alert: Alert): string {
  return `${alert.user}/${alert.device}`;
}

/** `rule 100` for a global rule, else the rule name (includes, camera faults). */
export function ruleLabel(alert: Alert): string {
  return alert.ruleId > 0 ? `rule ${alert.ruleId}` : alert.ruleName;
}

/** `cat detected on alice/frontdoor`, or `camera fault on alice/frontdoor`. */
export function alertHeadline(alert: Alert): string {
  if (alert.kind === 'camera_fault') return `camera fault on ${deviceLabel(alert)}`;
  const classes = alertClasses(alert);
  return `${classes.length > 0 ? classes.join(', ') : 'threat'} detected on ${deviceLabel(alert)}`;
}

/** E-mail subject: `[Vigil] cat detected on alice/frontdoor (rule 100)`. */
export function alertSubject(alert: Alert): string {
  return `[Vigil] ${alertHeadline(alert)} (${ruleLabel(alert)})`;
}

/** Where the evidence is: `detections@<commit>:<path>` (open with `vigil repo inspect <repo>@<commit>`). */
export function evidenceRef(alert: Alert): string {
  return `${alert.evidence.repo}@${alert.evidence.commit}:${alert.evidence.path}`;
}

/**
 * One line for PagerDuty summaries and logs:
 * `cat 0.89 detected on alice/frontdoor at 2024-07-01 23:30:00 Europe/Paris (GMT+2), rule 100 animals`.
 */
export function alertSummary(alert: Alert): string {
  const what = alert.kind === 'camera_fault' ? alertHeadline(alert) : `${formatMatches(alert) || 'threat'} detected on ${deviceLabel(alert)}`;
  const rule = alert.ruleId > 0 ? `rule ${alert.ruleId} ${alert.ruleName}` : alert.ruleName;
  return `${what} at ${formatLocalTime(alert.capturedAt, alert.tz)}, ${rule}`;
}

/** SMS body (short): `[Vigil] <summary> #<first 8 of alertId>`. */
export function smsText(alert: Alert): string {
  return `[Vigil] ${alertSummary(alert)} #${alert.alertId.slice(0, 8)}`;
}

/** Plain-text e-mail body. */
export function alertText(alert: Alert): string {
  const lines = [
    alertSummary(alert),
    '',
    `Camera:    ${deviceLabel(alert)} (site ${alert.site})`,
    `Frame:     ${alert.tag}`,
    `Captured:  ${formatLocalTime(alert.capturedAt, alert.tz)} (${alert.capturedAt})`,
    `Rule:      ${alert.ruleId} ${alert.ruleName} (rules ${alert.rulesCommit.slice(0, 12)})`,
  ];
  if (alert.matches.length > 0) {
    lines.push('Objects:');
    for (const m of alert.matches) {
      const b = m.box;
      lines.push(`  - ${m.class} ${m.score.toFixed(2)} at x=${Math.round(b.x)} y=${Math.round(b.y)} ${Math.round(b.width)}x${Math.round(b.height)}`);
    }
  }
  lines.push(
    `Evidence:  ${evidenceRef(alert)}`,
    `           vigil repo inspect ${alert.evidence.repo}@${alert.evidence.commit}`,
    `Frame sha256: ${alert.evidence.frameSha256}`,
    `Alert id:  ${alert.alertId}`,
  );
  return `${lines.join('\n')}\n`;
}

/** Escapes text for HTML element content and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** Simple HTML e-mail body (every value escaped). */
export function alertHtml(alert: Alert): string {
  const e = escapeHtml;
  const rows: [string, string][] = [
    ['Camera', `${deviceLabel(alert)} (site ${alert.site})`],
    ['Frame', alert.tag],
    ['Captured', formatLocalTime(alert.capturedAt, alert.tz)],
    ['Rule', `${alert.ruleId} ${alert.ruleName}`],
    ['Objects', formatMatches(alert) || '-'],
    ['Evidence', evidenceRef(alert)],
    ['Frame sha256', alert.evidence.frameSha256],
    ['Alert id', alert.alertId],
  ];
  return [
    '<!doctype html><html><body style="font-family:sans-serif">',
    `<h2>${e(alertHeadline(alert))}</h2>`,
    '<table cellpadding="4">',
    ...rows.map(([k, v]) => `<tr><th align="left">${e(k)}</th><td><code>${e(v)}</code></td></tr>`),
    '</table>',
    `<p>Inspect: <code>vigil repo inspect ${e(`${alert.evidence.repo}@${alert.evidence.commit}`)}</code></p>`,
    '</body></html>',
  ].join('\n');
}
