/**
 * Alert delivery: the real clients (`@sendgrid/mail`, Node's fetch) against local stand-ins of
 * SendGrid, a webhook receiver, PagerDuty and a Twilio-style SMS API (test/helpers/providers.ts),
 * plus the pure parts (ids, cooldown, planning, formatting, redaction, settings).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { isVigilError } from '../lib/errors.js';
import {
  alertHtml,
  alertId,
  alertSubject,
  AttemptSchema,
  cooldownKey,
  deliver,
  formatLocalTime,
  isSuppressed,
  loadChannelSettings,
  oneLine,
  PAGERDUTY_PUBLIC_EVENTS_URL,
  planDeliveries,
  redactEmail,
  redactPhone,
  redactUrl,
  scrubSecrets,
  sendEmail,
  sendOutbox,
  sendPagerDuty,
  sendSms,
  sendWebhook,
  type Alert,
  type Attempt,
  type ChannelSettings,
} from '../alerts/index.js';
import {
  startPagerDuty,
  startSendGrid,
  startSmsProvider,
  startWebhookReceiver,
  type ProviderServer,
  type SendGridServer,
  type SmsServer,
} from './helpers/providers.js';
import { tmpDir } from './helpers/tmp.js';
import path from 'node:path';
import { recordsStage } from '../stages/records.js';
import { openWarehouse, runReadOnlySql } from '../warehouse/index.js';
import { commitChanges, openStore } from '../repos/index.js';
import { deliverAlert, prepareAlerts, type AlertDoc } from '../stages/alerts.js';
import { readLedger, recordSending, recordWithdrawn } from '../stages/ledger.js';

// ---------------------------------------------------------------------------------------------
// Fixtures

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const FRAME_ID = sha('frame-1');
const RULES_COMMIT = 'a'.repeat(40);
const ROUTING_KEY = '0123456789abcdef0123456789abcdef';
const SHORT_TIMEOUT = 300;

/** A threat alert: a cat at 0.89 on alice/frontdoor, 21:30 UTC = 23:30 in Paris (summer). */
function makeAlert(over: Partial<Alert> = {}): Alert {
  const ruleId = over.ruleId ?? 100;
  return {
    alertId: alertId(over.frameId ?? FRAME_ID, over.rulesCommit ?? RULES_COMMIT, ruleId),
    frameId: FRAME_ID,
    tag: 'alice-frontdoor-20240701T213000000Z-Europe.Paris',
    user: 'alice',
    device: 'frontdoor',
    site: 'home',
    capturedAt: '2024-07-01T21:30:00.000Z',
    tz: 'Europe/Paris',
    ruleId,
    ruleName: 'animals',
    rulesCommit: RULES_COMMIT,
    matches: [{ class: 'cat', score: 0.89, box: { x: 10, y: 20, width: 100, height: 80 } }],
    evidence: { repo: 'detections', commit: 'b'.repeat(40), path: 'alice-frontdoor/20240701T213000000Z.json', frameSha256: FRAME_ID },
    kind: 'threat',
    createdAt: '2024-07-01T21:30:05.000Z',
    ...over,
  };
}
const ALERT = makeAlert();

/** Settings with no credentials at all (everything that needs one goes to the outbox). */
const NO_CREDS = loadChannelSettings({});

/** Settings for the stand-ins (only the parts given are configured). */
function settingsFor(p: { sg?: SendGridServer; sms?: SmsServer; pd?: ProviderServer; timeoutMs?: number }): ChannelSettings {
  return loadChannelSettings({
    SENDGRID_API_KEY: p.sg?.apiKey,
    SENDGRID_BASE_URL: p.sg?.url,
    ALERT_EMAIL_FROM: p.sg ? 'Vigil <alerts@vigil.test>' : undefined,
    PAGERDUTY_EVENTS_URL: p.pd?.url,
    SMS_API_BASE_URL: p.sms?.url,
    SMS_ACCOUNT_SID: p.sms?.accountSid,
    SMS_AUTH_TOKEN: p.sms?.authToken,
    SMS_FROM: p.sms ? '+15555550000' : undefined,
    ALERT_TIMEOUT_MS: String(p.timeoutMs ?? 5000),
  });
}

/** The attempt is a valid record and contains none of `secrets`, anywhere. */
function assertClean(a: Attempt, secrets: string[]): void {
  AttemptSchema.parse(a);
  const text = JSON.stringify(a);
  for (const s of secrets) assert.ok(!text.includes(s), `attempt leaks ${s.slice(0, 6)}…: ${text}`);
  assert.ok(!/[\r\n]/.test(a.responseSummary) && !/[\r\n]/.test(a.requestSummary), 'summaries are one line');
  assert.ok(a.responseSummary.length <= 300);
}

/** A URL nothing listens on (a stand-in started then closed). */
async function deadUrl(): Promise<string> {
  const s = await startWebhookReceiver();
  await s.close();
  return s.url;
}

// ---------------------------------------------------------------------------------------------
// E-mail (SendGrid)

describe('email through @sendgrid/mail against a local SendGrid', () => {
  let sg: SendGridServer;
  let settings: ChannelSettings;
  before(async () => {
    sg = await startSendGrid();
    settings = settingsFor({ sg });
  });
  after(() => sg.close());

  test('delivered (202): right to/from/subject, alertId in custom_args and header, no key in the record', async () => {
    sg.reset();
    const a = await sendEmail(ALERT, 'alice@example.com', settings, 1);
    assert.equal(a.outcome, 'delivered', a.responseSummary);
    assert.equal(a.statusCode, 202);
    assert.equal(a.channel, 'email');
    assert.equal(a.target, 'a***@example.com');
    assert.equal(a.alertId, ALERT.alertId);
    assert.equal(a.attempt, 1);
    assert.match(a.responseSummary, /^HTTP 202 x-message-id=/);
    assertClean(a, [sg.apiKey, 'alice@example.com']);

    assert.equal(sg.received.length, 1);
    const r = sg.received[0]!;
    assert.equal(r.method, 'POST');
    assert.equal(r.path, '/v3/mail/send');
    assert.equal(r.status, 202);
    assert.equal(r.headers.authorization, `Bearer ${sg.apiKey}`);
    assert.equal(r.headers['x-vigil-alert-id'], ALERT.alertId);
    const body = r.json as {
      personalizations: { to: { email: string }[] }[];
      from: { email: string; name?: string };
      subject: string;
      content: { type: string; value: string }[];
      custom_args: Record<string, string>;
      headers: Record<string, string>;
    };
    assert.deepEqual(body.personalizations[0]!.to, [{ email: 'alice@example.com' }]);
    assert.equal(body.from.email, 'alerts@vigil.test');
    assert.equal(body.from.name, 'Vigil');
    assert.equal(body.subject, '[Vigil] cat detected on alice/frontdoor (rule 100)');
    assert.equal(body.custom_args.alertId, ALERT.alertId);
    assert.equal(body.headers['X-Vigil-Alert-Id'], ALERT.alertId);
    const text = body.content.find((c) => c.type === 'text/plain')!.value;
    const html = body.content.find((c) => c.type === 'text/html')!.value;
    assert.match(text, /cat 0\.89/);
    assert.match(text, /2024-07-01 23:30:00 Europe\/Paris \(GMT\+2\)/, 'local time in the device zone');
    assert.match(text, /detections@b{40}:alice-frontdoor\/20240701T213000000Z\.json/, 'evidence reference');
    assert.match(text, new RegExp(ALERT.tag));
    assert.match(html, /<h2>cat detected on alice\/frontdoor<\/h2>/);
    assert.ok(html.includes(ALERT.alertId));
  });

  test('500 -> retry with the status recorded, then recovery on the next attempt', async () => {
    sg.reset();
    sg.failNext(1, 500);
    const first = await sendEmail(ALERT, 'alice@example.com', settings, 1);
    assert.equal(first.outcome, 'retry');
    assert.equal(first.statusCode, 500);
    assert.match(first.responseSummary, /^HTTP 500 .*simulated failure 500/);
    assertClean(first, [sg.apiKey]);
    const second = await sendEmail(ALERT, 'alice@example.com', settings, 2);
    assert.equal(second.outcome, 'delivered');
    assert.equal(second.attempt, 2);
    assert.deepEqual(
      sg.received.map((r) => r.status),
      [500, 202],
    );
  });

  test('no answer -> unknown (sent, maybe delivered; SendGrid has no idempotency key), statusCode null, timeout summary', async () => {
    sg.reset();
    sg.hangNext(1);
    const a = await sendEmail(ALERT, 'alice@example.com', { ...settings, timeoutMs: SHORT_TIMEOUT }, 1);
    assert.equal(a.outcome, 'unknown');
    assert.equal(a.statusCode, null);
    assert.match(a.responseSummary, /timeout: no answer within 300 ms/);
    assert.ok(a.latencyMs >= SHORT_TIMEOUT - 20 && a.latencyMs < SHORT_TIMEOUT + 1500, `latency ${a.latencyMs}`);
    assert.equal(sg.received.length, 1);
    assert.equal(sg.received[0]!.status, null);
    assertClean(a, [sg.apiKey]);
  });

  test('a redirect is not followed: failed with its 3xx, nothing sent to where it points', async () => {
    sg.reset();
    const other = http.createServer((req, res) => {
      req.resume();
      res.writeHead(202).end();
    });
    const moved = http.createServer((req, res) => {
      req.resume();
      res.writeHead(302, { Location: `http://127.0.0.1:${(other.address() as AddressInfo).port}/v3/mail/send` }).end();
    });
    await Promise.all([other, moved].map((srv) => new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()))));
    let reachedOther = 0;
    other.on('request', () => reachedOther++);
    try {
      const a = await sendEmail(ALERT, 'alice@example.com', { ...settings, sendgridBaseUrl: `http://127.0.0.1:${(moved.address() as AddressInfo).port}` }, 1);
      assert.deepEqual([a.outcome, a.statusCode], ['failed', 302], a.responseSummary);
      assert.equal(reachedOther, 0, 'the redirect target got nothing');
    } finally {
      await Promise.all([other, moved].map((srv) => new Promise((r) => srv.close(r))));
    }
  });

  test('400 -> failed (not retryable); 429 -> retry', async () => {
    sg.reset();
    sg.failNext(1, 400);
    sg.failNext(1, 429);
    const bad = await sendEmail(ALERT, 'alice@example.com', settings, 1);
    assert.equal(bad.outcome, 'failed');
    assert.equal(bad.statusCode, 400);
    const throttled = await sendEmail(ALERT, 'alice@example.com', settings, 1);
    assert.equal(throttled.outcome, 'retry');
    assert.equal(throttled.statusCode, 429);
  });

  test('a wrong key is rejected by the stand-in (401 -> failed) and never shows in the record', async () => {
    sg.reset();
    const wrongKey = 'SG.wrong-key-0123456789';
    const a = await sendEmail(ALERT, 'alice@example.com', { ...settings, sendgridApiKey: wrongKey }, 1);
    assert.equal(a.outcome, 'failed');
    assert.equal(a.statusCode, 401);
    assertClean(a, [wrongKey, sg.apiKey]);
  });

  test('each call uses its own settings: two SendGrids with different keys, concurrently', async () => {
    const other = await startSendGrid();
    try {
      sg.reset();
      const otherSettings = settingsFor({ sg: other });
      const results = await Promise.all([
        sendEmail(ALERT, 'a@example.com', settings, 1),
        sendEmail(ALERT, 'b@example.com', otherSettings, 1),
        sendEmail(ALERT, 'c@example.com', settings, 1),
        sendEmail(ALERT, 'd@example.com', otherSettings, 1),
      ]);
      assert.deepEqual(
        results.map((r) => r.outcome),
        ['delivered', 'delivered', 'delivered', 'delivered'],
      );
      const tos = (s: ProviderServer) => s.received.map((r) => (r.json as { personalizations: { to: { email: string }[] }[] }).personalizations[0]!.to[0]!.email).sort();
      assert.deepEqual(tos(sg), ['a@example.com', 'c@example.com']);
      assert.deepEqual(tos(other), ['b@example.com', 'd@example.com']);
      assert.ok(sg.received.every((r) => r.headers.authorization === `Bearer ${sg.apiKey}`));
      assert.ok(other.received.every((r) => r.headers.authorization === `Bearer ${other.apiKey}`));
    } finally {
      await other.close();
    }
  });

  test('connection refused -> retry with statusCode null', async () => {
    const a = await sendEmail(ALERT, 'alice@example.com', { ...settings, sendgridBaseUrl: new URL(await deadUrl()).origin }, 1);
    assert.equal(a.outcome, 'retry');
    assert.equal(a.statusCode, null);
    assert.match(a.responseSummary, /connection error: ECONNREFUSED/);
    assertClean(a, [sg.apiKey]);
  });

  test('missing SendGrid settings -> VigilError E_CONFIG', async () => {
    await assert.rejects(sendEmail(ALERT, 'alice@example.com', NO_CREDS, 1), (e) => isVigilError(e, 'E_CONFIG'));
  });

  test('deliverAlert: credentials gone at delivery time -> E_CONFIG, its sending mark withdrawn; once configured, sent once', async () => {
    const store = openStore(tmpDir());
    const doc: AlertDoc = { kind: 'alert', alert: ALERT, status: 'pending', deliveries: [{ channel: 'email', target: 'alice@example.com' }] };
    const path = `alice-frontdoor/20240701T213000000Z-100.json`;
    const { commit } = await commitChanges(store, { repo: 'alerts', changes: [{ path, content: JSON.stringify(doc) }], provenance: { batchId: 'b1', stage: 'alerts', stageVersion: '1', inputs: [] }, summary: 'alert' });
    const before = sg.received.length;
    await assert.rejects(deliverAlert(store, { alertsCommit: commit!, path }, NO_CREDS), (e) => isVigilError(e, 'E_CONFIG'));
    const ledger = await readLedger(store, ALERT.alertId);
    assert.deepEqual(ledger, { attempts: [], sending: [] }, 'nothing was sent, so no mark is left to turn into unknown');
    assert.equal(sg.received.length, before);
    const r = await deliverAlert(store, { alertsCommit: commit!, path }, settings);
    assert.equal(r.delivered, 1);
    assert.equal(sg.received.length, before + 1);
    assert.deepEqual((await readLedger(store, ALERT.alertId)).attempts.map((a) => a.outcome), ['delivered']);
  });

  test('readLedger: a withdrawal takes back only the mark before it; the next try\'s mark of the same attempt number stands', async () => {
    const store = openStore(tmpDir());
    const mark = (at: string) => ({ alertId: ALERT.alertId, channel: 'email' as const, target: 'email:k', attempt: 1, at });
    await recordSending(store, mark('2026-11-28T10:00:00.000Z'));
    await recordWithdrawn(store, mark('2026-11-28T10:00:00.000Z'));
    assert.deepEqual((await readLedger(store, ALERT.alertId)).sending, []);
    // Credentials back: the same delivery, attempt 1 again, begins; its worker is killed.
    await recordSending(store, mark('2026-11-28T11:00:00.000Z'));
    assert.deepEqual((await readLedger(store, ALERT.alertId)).sending, [mark('2026-11-28T11:00:00.000Z')], 'the live mark is seen, so the request is not sent again');
  });
});

// ---------------------------------------------------------------------------------------------
// Generic webhook

describe('generic webhook through fetch', () => {
  let hook: ProviderServer;
  before(async () => {
    hook = await startWebhookReceiver();
  });
  after(() => hook.close());

  test('delivered: JSON alert + event, Idempotency-Key = alertId, record shows the host only', async () => {
    hook.reset();
    const a = await sendWebhook(ALERT, hook.url, NO_CREDS, 1);
    assert.equal(a.outcome, 'delivered', a.responseSummary);
    assert.equal(a.statusCode, 200);
    assert.equal(a.channel, 'webhook');
    assert.equal(a.target, new URL(hook.url).host);
    const secretPath = new URL(hook.url).pathname;
    assertClean(a, [secretPath, hook.url]);
    const r = hook.received[0]!;
    assert.equal(r.headers['idempotency-key'], ALERT.alertId);
    assert.match(String(r.headers['content-type']), /application\/json/);
    assert.deepEqual(r.json, { event: 'vigil.alert', ...ALERT });
  });

  test('503 -> retry, 404 -> failed, redirect -> failed (not followed), hang -> retry', async () => {
    hook.reset();
    hook.failNext(1, 503);
    hook.failNext(1, 404);
    hook.failNext(1, 302);
    hook.hangNext(1);
    const s = { ...NO_CREDS, timeoutMs: SHORT_TIMEOUT };
    const results = [];
    for (let i = 1; i <= 4; i++) results.push(await sendWebhook(ALERT, hook.url, s, i));
    assert.deepEqual(
      results.map((r) => [r.outcome, r.statusCode]),
      [
        ['retry', 503],
        ['failed', 404],
        ['failed', 302],
        ['retry', null],
      ],
    );
    assert.match(results[3]!.responseSummary, /timeout/);
    assert.ok(results[3]!.latencyMs >= SHORT_TIMEOUT - 20 && results[3]!.latencyMs < SHORT_TIMEOUT + 1500);
    assert.equal(hook.received.length, 4, 'one request per call');
  });

  test('connection refused -> retry; invalid URL -> failed', async () => {
    const dead = await sendWebhook(ALERT, await deadUrl(), NO_CREDS, 1);
    assert.equal(dead.outcome, 'retry');
    assert.match(dead.responseSummary, /ECONNREFUSED/);
    const invalid = await sendWebhook(ALERT, 'not a url', NO_CREDS, 1);
    assert.equal(invalid.outcome, 'failed');
    assert.equal(invalid.statusCode, null);
  });
});

// ---------------------------------------------------------------------------------------------
// PagerDuty

describe('PagerDuty Events v2 through fetch', () => {
  let pd: ProviderServer;
  before(async () => {
    pd = await startPagerDuty();
  });
  after(() => pd.close());

  test('threat: 202, dedup_key = alertId, severity critical, routing key never in the record', async () => {
    pd.reset();
    const a = await sendPagerDuty(ALERT, { url: pd.url, routingKey: ROUTING_KEY }, NO_CREDS, 1);
    assert.equal(a.outcome, 'delivered', a.responseSummary);
    assert.equal(a.statusCode, 202);
    assert.equal(a.channel, 'pagerduty');
    assert.match(a.responseSummary, /"status":"success"/);
    assertClean(a, [ROUTING_KEY]);
    const ev = pd.received[0]!.json as {
      routing_key: string;
      event_action: string;
      dedup_key: string;
      payload: { summary: string; source: string; severity: string; timestamp: string; custom_details: { alertId: string } };
    };
    assert.equal(ev.routing_key, ROUTING_KEY);
    assert.equal(ev.event_action, 'trigger');
    assert.equal(ev.dedup_key, ALERT.alertId);
    assert.equal(ev.payload.severity, 'critical');
    assert.equal(ev.payload.source, ALERT.tag);
    assert.equal(ev.payload.timestamp, ALERT.capturedAt);
    assert.equal(ev.payload.custom_details.alertId, ALERT.alertId);
    assert.match(ev.payload.summary, /^cat 0\.89 detected on alice\/frontdoor at 2024-07-01 23:30:00 Europe\/Paris/);
  });

  test('camera fault -> severity warning', async () => {
    pd.reset();
    const fault = makeAlert({ kind: 'camera_fault', ruleId: 0, ruleName: 'camera fault: blank', matches: [] });
    const a = await sendPagerDuty(fault, { url: pd.url, routingKey: ROUTING_KEY }, NO_CREDS, 1);
    assert.equal(a.outcome, 'delivered');
    const ev = pd.received[0]!.json as { dedup_key: string; payload: { severity: string; summary: string } };
    assert.equal(ev.payload.severity, 'warning');
    assert.equal(ev.dedup_key, fault.alertId);
    assert.match(ev.payload.summary, /camera fault on alice\/frontdoor/);
  });

  test('429 -> retry, 400 (invalid event) -> failed; an invalid routing key is rejected by the stand-in', async () => {
    pd.reset();
    pd.failNext(1, 429);
    const throttled = await sendPagerDuty(ALERT, { url: pd.url, routingKey: ROUTING_KEY }, NO_CREDS, 1);
    assert.deepEqual([throttled.outcome, throttled.statusCode], ['retry', 429]);
    const badKey = await sendPagerDuty(ALERT, { url: pd.url, routingKey: 'short-key' }, NO_CREDS, 2);
    assert.deepEqual([badKey.outcome, badKey.statusCode], ['failed', 400]);
    assert.match(badKey.responseSummary, /invalid event/);
    assertClean(badKey, ['short-key']);
  });
});

// ---------------------------------------------------------------------------------------------
// SMS (Twilio-style)

describe('SMS through a Twilio-style API (fetch, basic auth, form fields)', () => {
  let sms: SmsServer;
  let settings: ChannelSettings;
  before(async () => {
    sms = await startSmsProvider();
    settings = settingsFor({ sms });
  });
  after(() => sms.close());

  test('delivered (201): basic auth sid:token, To/From/Body, record shows the last 4 digits only', async () => {
    sms.reset();
    const a = await sendSms(ALERT, '+15555550100', settings, 1);
    assert.equal(a.outcome, 'delivered', a.responseSummary);
    assert.equal(a.statusCode, 201);
    assert.equal(a.channel, 'sms');
    assert.equal(a.target, '***0100');
    const basic = Buffer.from(`${sms.accountSid}:${sms.authToken}`).toString('base64');
    assertClean(a, [sms.authToken, basic, '+15555550100']);
    const r = sms.received[0]!;
    assert.equal(r.path, `/2010-04-01/Accounts/${sms.accountSid}/Messages.json`);
    assert.equal(r.headers.authorization, `Basic ${basic}`);
    assert.match(String(r.headers['content-type']), /application\/x-www-form-urlencoded/);
    assert.equal(r.form?.To, '+15555550100');
    assert.equal(r.form?.From, '+15555550000');
    assert.match(r.form?.Body ?? '', /^\[Vigil\] cat 0\.89 detected on alice\/frontdoor at 2024-07-01 23:30:00 Europe\/Paris/);
    assert.ok((r.form?.Body ?? '').includes(ALERT.alertId.slice(0, 8)));
  });

  test('wrong token -> 401 failed; 500 -> retry; 429 -> retry; hang -> unknown (not retried: an SMS could arrive twice)', async () => {
    sms.reset();
    const wrong = await sendSms(ALERT, '+15555550100', { ...settings, smsAuthToken: 'wrong-token-value' }, 1);
    assert.deepEqual([wrong.outcome, wrong.statusCode], ['failed', 401]);
    assertClean(wrong, ['wrong-token-value']);
    sms.failNext(1, 500);
    sms.failNext(1, 429);
    sms.hangNext(1);
    const s = { ...settings, timeoutMs: SHORT_TIMEOUT };
    const r500 = await sendSms(ALERT, '+15555550100', s, 1);
    const r429 = await sendSms(ALERT, '+15555550100', s, 2);
    const hung = await sendSms(ALERT, '+15555550100', s, 3);
    assert.deepEqual([r500.outcome, r500.statusCode], ['retry', 500]);
    assert.deepEqual([r429.outcome, r429.statusCode], ['retry', 429]);
    assert.deepEqual([hung.outcome, hung.statusCode], ['unknown', null]);
    assert.match(hung.responseSummary, /timeout/);
  });

  test('missing SMS credentials -> VigilError E_CONFIG', async () => {
    await assert.rejects(sendSms(ALERT, '+15555550100', NO_CREDS, 1), (e) => isVigilError(e, 'E_CONFIG'));
  });
});

// ---------------------------------------------------------------------------------------------
// Outbox, planning, dispatch

describe('outbox, planDeliveries and deliver', () => {
  const CONTACTS = {
    email: ['alice@example.com', 'bob@example.org'],
    webhook: [
      { url: 'https://hooks.example.com/vigil/secret-token', format: 'generic' as const },
      { url: PAGERDUTY_PUBLIC_EVENTS_URL, format: 'pagerduty' as const, routingKey: ROUTING_KEY },
    ],
    phone: ['+15555550100'],
  };

  test('no credentials: e-mails and phones go to the outbox, webhooks still go out', () => {
    assert.deepEqual(planDeliveries(ALERT, CONTACTS, NO_CREDS), [
      { channel: 'outbox', target: 'alice@example.com', via: 'email' },
      { channel: 'outbox', target: 'bob@example.org', via: 'email' },
      { channel: 'webhook', target: 'https://hooks.example.com/vigil/secret-token' },
      { channel: 'pagerduty', target: PAGERDUTY_PUBLIC_EVENTS_URL, routingKey: ROUTING_KEY },
      { channel: 'outbox', target: '+15555550100', via: 'sms' },
    ]);
  });

  test('configured channels; PagerDuty public endpoint -> PAGERDUTY_EVENTS_URL, custom URLs kept', () => {
    const s = loadChannelSettings({
      SENDGRID_API_KEY: 'SG.k',
      ALERT_EMAIL_FROM: 'alerts@vigil.test',
      SMS_ACCOUNT_SID: 'AC1',
      SMS_AUTH_TOKEN: 't',
      SMS_FROM: '+15555550000',
      PAGERDUTY_EVENTS_URL: 'https://events.eu.pagerduty.com/v2/enqueue',
    });
    const plan = planDeliveries(
      ALERT,
      {
        ...CONTACTS,
        webhook: [...CONTACTS.webhook, { url: 'https://pd-proxy.example.com/enqueue', format: 'pagerduty', routingKey: ROUTING_KEY }],
      },
      s,
    );
    assert.deepEqual(plan, [
      { channel: 'email', target: 'alice@example.com' },
      { channel: 'email', target: 'bob@example.org' },
      { channel: 'webhook', target: 'https://hooks.example.com/vigil/secret-token' },
      { channel: 'pagerduty', target: 'https://events.eu.pagerduty.com/v2/enqueue', routingKey: ROUTING_KEY },
      { channel: 'pagerduty', target: 'https://pd-proxy.example.com/enqueue', routingKey: ROUTING_KEY },
      { channel: 'sms', target: '+15555550100' },
    ]);
  });

  test('empty or partial contacts, default webhook format, duplicates dropped, invalid contacts rejected', () => {
    assert.deepEqual(planDeliveries(ALERT, {}, NO_CREDS), []);
    assert.deepEqual(planDeliveries(ALERT, { webhook: [{ url: 'https://h.example.com/x' }, { url: 'https://h.example.com/x' }] }, NO_CREDS), [
      { channel: 'webhook', target: 'https://h.example.com/x' },
    ]);
    assert.deepEqual(planDeliveries(ALERT, { phone: ['+15555550100', '+15555550100'] }, NO_CREDS), [
      { channel: 'outbox', target: '+15555550100', via: 'sms' },
    ]);
    assert.throws(
      () => planDeliveries(ALERT, { webhook: [{ url: 'https://h.example.com', format: 'pagerduty' }] }, NO_CREDS),
      (e) => isVigilError(e, 'E_BAD_INPUT') && /routingKey/.test(e.message),
    );
    assert.throws(() => planDeliveries(ALERT, { phone: ['555'] }, NO_CREDS), (e) => isVigilError(e, 'E_BAD_INPUT'));
  });

  test('outbox record: channel outbox, delivered, statusCode null, redacted, no request', async () => {
    const email = sendOutbox(ALERT, { via: 'email', target: 'alice@example.com' }, 1);
    assert.equal(email.channel, 'outbox');
    assert.equal(email.outcome, 'delivered');
    assert.equal(email.statusCode, null);
    assert.equal(email.target, 'email:a***@example.com');
    assert.match(email.requestSummary, /subject="\[Vigil\] cat detected on alice\/frontdoor \(rule 100\)"/);
    assertClean(email, ['alice@example.com']);
    const sms = await deliver(ALERT, { channel: 'outbox', target: '+15555550100', via: 'sms' }, NO_CREDS, 1);
    assert.equal(sms.target, 'sms:***0100');
    assert.equal(sms.outcome, 'delivered');
    assertClean(sms, ['+15555550100']);
  });

  test('deliver dispatches every planned delivery to its provider, one request each', async () => {
    const [sg, hook, pd, sms] = await Promise.all([startSendGrid(), startWebhookReceiver(), startPagerDuty(), startSmsProvider()]);
    try {
      const s = settingsFor({ sg, pd, sms });
      const contacts = {
        email: ['alice@example.com'],
        webhook: [
          { url: hook.url, format: 'generic' as const },
          { url: PAGERDUTY_PUBLIC_EVENTS_URL, format: 'pagerduty' as const, routingKey: ROUTING_KEY },
        ],
        phone: ['+15555550100'],
      };
      const plan = planDeliveries(ALERT, contacts, s);
      assert.deepEqual(
        plan.map((d) => d.channel),
        ['email', 'webhook', 'pagerduty', 'sms'],
      );
      const records = await Promise.all(plan.map((d) => deliver(ALERT, d, s, 1)));
      assert.deepEqual(
        records.map((r) => [r.channel, r.outcome]),
        [
          ['email', 'delivered'],
          ['webhook', 'delivered'],
          ['pagerduty', 'delivered'],
          ['sms', 'delivered'],
        ],
      );
      for (const srv of [sg, hook, pd, sms]) assert.equal(srv.received.length, 1);
      for (const r of records) assertClean(r, [sg.apiKey, sms.authToken, ROUTING_KEY, new URL(hook.url).pathname]);
    } finally {
      await Promise.all([sg, hook, pd, sms].map((x) => x.close()));
    }
  });

  test('deliver rejects an invalid alert or delivery with E_BAD_INPUT, and attempt < 1', async () => {
    await assert.rejects(deliver({ ...ALERT, alertId: 'nope' }, { channel: 'webhook', target: 'https://h.example.com' }, NO_CREDS, 1), (e) =>
      isVigilError(e, 'E_BAD_INPUT'),
    );
    await assert.rejects(deliver(ALERT, { channel: 'sms', target: '12' }, NO_CREDS, 1), (e) => isVigilError(e, 'E_BAD_INPUT'));
    await assert.rejects(deliver(ALERT, { channel: 'outbox', target: 'a@b.co', via: 'email' }, NO_CREDS, 0), (e) => isVigilError(e, 'E_BAD_INPUT'));
  });
});

// ---------------------------------------------------------------------------------------------
// Pure parts

describe('alertId, cooldown, settings, formatting, redaction', () => {
  test('alertId: stable, 32 hex, different per rule, rule-set version and frame', () => {
    const id = alertId(FRAME_ID, RULES_COMMIT, 100);
    assert.match(id, /^[0-9a-f]{32}$/);
    assert.equal(alertId(FRAME_ID, RULES_COMMIT, 100), id);
    assert.equal(alertId(FRAME_ID, RULES_COMMIT, '100'), id);
    const others = [alertId(FRAME_ID, RULES_COMMIT, 200), alertId(FRAME_ID, 'c'.repeat(40), 100), alertId(sha('frame-2'), RULES_COMMIT, 100), alertId(FRAME_ID, RULES_COMMIT, 0)];
    assert.equal(new Set([id, ...others]).size, 5);
    assert.throws(() => alertId('', RULES_COMMIT, 1), (e) => isVigilError(e, 'E_BAD_INPUT'));
    assert.throws(() => alertId(FRAME_ID, RULES_COMMIT, 1.5), (e) => isVigilError(e, 'E_BAD_INPUT'));
  });

  test('cooldownKey and isSuppressed edges', () => {
    assert.equal(cooldownKey('alice', 'frontdoor', 100), 'alice/frontdoor/100');
    const min = 60_000;
    assert.equal(isSuppressed(undefined, 1_000_000, min), false, 'never sent');
    assert.equal(isSuppressed(1_000_000, 1_000_000, min), true, 'same instant');
    assert.equal(isSuppressed(1_000_000, 1_000_000 + min - 1, min), true, '1 ms before the end');
    assert.equal(isSuppressed(1_000_000, 1_000_000 + min, min), false, 'exactly at the end');
    assert.equal(isSuppressed(1_000_000, 1_000_000 + min + 1, min), false);
    assert.equal(isSuppressed(1_000_000, 1_000_000, 0), false, 'no cooldown');
    assert.equal(isSuppressed(1_000_000, 1_000_000, -5), false, 'negative cooldown');
    assert.equal(isSuppressed(2_000_000, 1_000_000, min), true, 'last in the future (clock moved back)');
    assert.throws(() => isSuppressed(Number.NaN, 1, min), (e) => isVigilError(e, 'E_BAD_INPUT'));
    assert.throws(() => isSuppressed(1, 2, Number.POSITIVE_INFINITY), (e) => isVigilError(e, 'E_BAD_INPUT'));
  });

  test('loadChannelSettings: defaults, partial credentials are E_CONFIG naming the variable, never the value', () => {
    assert.deepEqual(NO_CREDS, {
      sendgridApiKey: undefined,
      sendgridBaseUrl: 'https://api.sendgrid.com',
      emailFrom: undefined,
      pagerdutyEventsUrl: 'https://events.pagerduty.com/v2/enqueue',
      smsApiBaseUrl: 'https://api.twilio.com',
      smsAccountSid: undefined,
      smsAuthToken: undefined,
      smsFrom: undefined,
      timeoutMs: 10_000,
    });
    assert.equal(loadChannelSettings({ SENDGRID_API_KEY: '' }).sendgridApiKey, undefined, 'empty = unset');
    const cases: [Record<string, string>, string][] = [
      [{ SENDGRID_API_KEY: 'SG.super-secret-value' }, 'ALERT_EMAIL_FROM'],
      [{ SMS_AUTH_TOKEN: 'super-secret-value' }, 'SMS_ACCOUNT_SID'],
      [{ ALERT_TIMEOUT_MS: 'soon' }, 'ALERT_TIMEOUT_MS'],
      [{ SENDGRID_BASE_URL: 'ftp://x' }, 'SENDGRID_BASE_URL'],
      [{ SENDGRID_API_KEY: 'SG.super-secret-value', ALERT_EMAIL_FROM: 'not an address' }, 'ALERT_EMAIL_FROM'],
    ];
    for (const [env, variable] of cases) {
      assert.throws(
        () => loadChannelSettings(env),
        (e) => isVigilError(e, 'E_CONFIG') && e.message.includes(variable) && !e.message.includes('super-secret-value'),
        variable,
      );
    }
  });

  test('formatLocalTime follows DST and falls back to UTC for an unknown zone; HTML is escaped', () => {
    assert.equal(formatLocalTime('2024-07-01T21:30:00Z', 'Europe/Paris'), '2024-07-01 23:30:00 Europe/Paris (GMT+2)');
    assert.equal(formatLocalTime('2024-01-15T21:30:00Z', 'Europe/Paris'), '2024-01-15 22:30:00 Europe/Paris (GMT+1)');
    assert.equal(formatLocalTime('2024-07-01T21:30:00Z', 'Mars/Olympus'), '2024-07-01 21:30:00 UTC');
    const evil = makeAlert({ ruleName: '<script>alert(1)</script>', ruleId: 0 });
    assert.ok(!alertHtml(evil).includes('<script>'));
    assert.equal(alertSubject(evil), '[Vigil] cat detected on alice/frontdoor (<script>alert(1)</script>)');
    assert.equal(alertSubject(makeAlert({ kind: 'camera_fault', ruleId: 0, ruleName: 'camera fault: blank', matches: [] })), '[Vigil] camera fault on alice/frontdoor (camera fault: blank)');
  });

  test('redaction helpers', () => {
    assert.equal(redactEmail('alice@example.com'), 'a***@example.com');
    assert.equal(redactEmail('Bob@Example.ORG'), 'B***@example.org');
    assert.equal(redactEmail('no-at-sign'), '***');
    assert.equal(redactUrl('https://hooks.example.com/services/T0/B0/XYZ?token=1'), 'hooks.example.com');
    assert.equal(redactUrl('http://user:pw@127.0.0.1:8443/x'), '127.0.0.1:8443');
    assert.equal(redactUrl('::not a url'), '***');
    assert.equal(redactPhone('+15555550100'), '***0100');
    assert.equal(redactPhone('12'), '***');
    assert.equal(oneLine('a\n  b\r\n\tc'), 'a b c');
    assert.equal(oneLine('x'.repeat(400)).length, 300);
    assert.equal(scrubSecrets('key SG.abc and SG.abc again', ['SG.abc', undefined, 'ab']), 'key *** and *** again');
    // URL-encoded too, as a provider echoes a form body.
    assert.equal(scrubSecrets('To=%2B15555550333&Body=a+b and +15555550333', ['+15555550333']), 'To=***&Body=a+b and ***');
    assert.equal(scrubSecrets('name=a+b+c&x=a%20b%20c', ['a b c']), 'name=***&x=***');
  });
});

describe('prepareAlerts and the cooldown', () => {
  /** An invalid (camera fault) frame document of alice/cam1 captured at `at`, committed; returns its path. */
  async function faultFrame(store: ReturnType<typeof openStore>, at: string): Promise<{ path: string; commit: string }> {
    const ts = at.replace(/[-:.]/g, '');
    const p = `alice-cam1/${ts}.json`;
    const sha = createHash('sha256').update(at).digest('hex');
    const doc = {
      kind: 'invalid', frameId: sha, tag: `alice-cam1-${ts}-UTC`, user: 'alice', device: 'cam1', site: 'home', capturedAt: at, timestamp: ts, tz: 'UTC',
      source: { repo: 'frames', commit: '0'.repeat(40), path: p, sha256: sha }, datum: sha, reason: 'black', message: 'frame is black', cameraFault: true,
    };
    const r = await commitChanges(store, { repo: 'invalid', changes: [{ path: p, content: JSON.stringify(doc) }], provenance: { batchId: 'b', stage: 'validate', stageVersion: '1', inputs: [] }, summary: 'fault' });
    return { path: p, commit: r.commit! };
  }

  test('two chunks preparing alerts of one camera at once: the cooldown holds, one is sent and the other suppressed', async () => {
    for (let round = 0; round < 5; round++) {
      const store = openStore(tmpDir());
      const a = await faultFrame(store, '2026-11-27T10:00:00.000Z');
      const b = await faultFrame(store, '2026-11-27T10:00:30.000Z');
      const prepare = (f: { path: string }, batchId: string) =>
        prepareAlerts(store, { batchId, threatsCommit: null, unsafePaths: [], invalidCommit: b.commit, cameraFaultPaths: [f.path], rulesCommit: null }, { cooldownMs: 600_000, settings: NO_CREDS });
      const [x, y] = await Promise.all([prepare(a, 'chunk-a'), prepare(b, 'chunk-b')]);
      const statuses = [...x.alerts, ...y.alerts].map((r) => r.status).sort();
      assert.deepEqual(statuses, ['pending', 'suppressed'], `round ${round}`);
    }
  });
});

test('a recorded alert reaches the warehouse once, whichever reprocessing run (or retry) records it first', async () => {
  const dir = tmpDir();
  const store = openStore(dir);
  const at = '2026-11-27T10:00:00.000Z';
  const ts = at.replace(/[-:.]/g, '');
  const sha = createHash('sha256').update(at).digest('hex');
  const p = `alice-cam1/${ts}.json`;
  const inv = await commitChanges(store, {
    repo: 'invalid',
    changes: [{ path: p, content: JSON.stringify({
      kind: 'invalid', frameId: sha, tag: `alice-cam1-${ts}-UTC`, user: 'alice', device: 'cam1', site: 'home', capturedAt: at, timestamp: ts, tz: 'UTC',
      source: { repo: 'frames', commit: '0'.repeat(40), path: p, sha256: sha }, datum: sha, reason: 'black', message: 'frame is black', cameraFault: true,
    }) }],
    provenance: { batchId: 'b', stage: 'validate', stageVersion: '1', inputs: [] }, summary: 'fault',
  });
  // A reprocessing run records the alert; its records step may be run by it, a retry, or a later run.
  const prepared = await prepareAlerts(store, { batchId: 'reprocess-1', threatsCommit: null, unsafePaths: [], invalidCommit: inv.commit, cameraFaultPaths: [p], rulesCommit: null, deliver: false }, { cooldownMs: 600_000, settings: NO_CREDS });
  assert.deepEqual(prepared.alerts.map((a) => a.status), ['recorded']);
  const again = await prepareAlerts(store, { batchId: 'reprocess-2', threatsCommit: null, unsafePaths: [], invalidCommit: inv.commit, cameraFaultPaths: [p], rulesCommit: null, deliver: false }, { cooldownMs: 600_000, settings: NO_CREDS });
  assert.deepEqual(again.alerts, prepared.alerts, 'the next run meets the same alert');
  const records = (batchId: string, alertsCommit: string | null) =>
    recordsStage(store, { batchId, part: 'p0', framesCommit: inv.commit!, frames: [], standardizedCommit: null, invalidCommit: inv.commit, detectionsCommit: null, threatsCommit: null, rulesCommit: null, alertsCommit, alertPaths: prepared.alerts.map((a) => a.path), history: true });
  assert.deepEqual(await records('reprocess-2', again.alertsCommit), { alerts: 1 }, 'the first to record it appends it');
  assert.deepEqual(await records('reprocess-1', prepared.alertsCommit), {}, 'a retry of the earlier run appends nothing');
  assert.deepEqual(await records('reprocess-3', again.alertsCommit), {}, 'nor does a later run');
  const wh = await openWarehouse(path.join(dir, 'warehouse'));
  try {
    assert.deepEqual((await runReadOnlySql(wh, 'SELECT status, count(*) AS n FROM alerts GROUP BY status')).rows, [{ status: 'recorded', n: 1 }]);
    assert.deepEqual((await runReadOnlySql(wh, 'SELECT count(*) AS n FROM frames')).rows, [{ n: 0 }], 'history runs append no frame');
  } finally {
    wh.close();
  }
});
