import { createHash } from 'node:crypto';
import { z } from 'zod';
import {
  AlertSchema, DeliverySchema, RESEND_SAFE_CHANNELS, alertId as makeAlertId, deliver, planDeliveries, type Alert, type Attempt, type ChannelSettings, type Delivery, type Sending,
} from '../alerts/index.js';
import { VigilError } from '../lib/errors.js';
import { mapLimit } from '../lib/mapLimit.js';
import { commitChanges, readJson, readJsons, type Change, type RepoStore } from '../repos/index.js';
import type { RuleSet } from '../rules/index.js';
import { readLedger, recordAttempt, recordSending, recordWithdrawn } from './ledger.js';
import { readRuleSet } from './rulesVersion.js';
import { InvalidDocSchema } from './schema.js';
import { ThreatDocSchema } from './threats.js';

/** Bump when the alerts stage's output for the same inputs would change. */
export const ALERTS_STAGE_VERSION = '1';

/** `alerts/<user>-<device>/<timestamp>-<rule>.json`: one alert and how it is to be delivered. */
export const AlertDocSchema = z.object({
  kind: z.literal('alert'),
  alert: AlertSchema,
  /**
   * `pending`: to be delivered. `suppressed`: inside the cooldown of an earlier alert (recorded,
   * never sent). `recorded`: raised by reprocessing history (recorded, never sent: the event is past).
   */
  status: z.enum(['pending', 'suppressed', 'recorded']),
  suppressedBy: z.string().optional(),
  deliveries: z.array(DeliverySchema),
});
export type AlertDoc = z.infer<typeof AlertDocSchema>;

const CooldownSchema = z.object({ lastAt: z.string(), alertId: z.string() });

/** Input of the prepare-alerts step. */
export interface PrepareAlertsInput {
  batchId: string;
  threatsCommit: string | null;
  unsafePaths: string[];
  invalidCommit: string | null;
  cameraFaultPaths: string[];
  rulesCommit: string | null;
  /** False when reprocessing history: new alerts are `recorded`, planned on no channel (default true). */
  deliver?: boolean;
}

/** A prepared alert, by reference. */
export interface AlertRef {
  alertId: string;
  path: string;
  status: AlertDoc['status'];
}

/** Output of the prepare-alerts step. */
export interface PrepareAlertsOutput {
  alertsCommit: string | null;
  alerts: AlertRef[];
}

/** Placeholder rules version of an alert made without any committed rules (camera faults). */
const NO_RULES = '0000000';

interface Candidate {
  alert: Alert;
  path: string;
}

/** Builds the alerts of one unsafe frame: one per fired rule, with a stable id. */
function threatCandidates(doc: z.infer<typeof ThreatDocSchema>, path: string, now: string): Candidate[] {
  const byRule = new Map<number, typeof doc.decision.matches>();
  for (const m of doc.decision.matches) byRule.set(m.ruleId, [...(byRule.get(m.ruleId) ?? []), m]);
  const base = path.replace(/\.json$/, '');
  return [...byRule].map(([ruleId, matches]) => ({
    path: `${base}-r${ruleId}.json`,
    alert: {
      alertId: makeAlertId(`${doc.tag}:${doc.frameId}`, doc.rulesCommit ?? NO_RULES, ruleId),
      frameId: doc.frameId, tag: doc.tag, user: doc.user, device: doc.device, site: doc.site, capturedAt: doc.capturedAt, tz: doc.tz,
      ruleId, ruleName: matches[0]!.ruleName, rulesCommit: doc.rulesCommit ?? NO_RULES,
      matches: matches.map((m) => ({ class: m.class, score: m.score, box: m.box })),
      evidence: { repo: 'detections', commit: doc.source.commit, path: doc.source.path, frameSha256: doc.frameId },
      kind: 'threat', createdAt: now,
    },
  }));
}

/**
 * Prepares the alerts of a chunk: one per (unsafe frame, fired rule) and one equipment alert per
 * camera-fault frame, each with an id derived from (frame, rules version, rule) so a retry can never
 * create a second one. A camera that keeps matching does not flood its user: an alert within
 * `cooldownMs` (capture time) of the last one for the same user, device and rule is recorded as
 * suppressed; alerts that reprocessing records (`deliver: false`) neither are suppressed nor count
 * as the last one, since none of them is sent. Deliveries are planned from the user's contacts in the rule set; without credentials
 * they go to the outbox.
 */
export async function prepareAlerts(
  store: RepoStore,
  input: PrepareAlertsInput,
  opts: { cooldownMs: number; settings: ChannelSettings; now?: () => Date },
): Promise<PrepareAlertsOutput> {
  const now = (opts.now ?? (() => new Date()))().toISOString();
  const rules: RuleSet | null = input.rulesCommit ? await readRuleSet(store, input.rulesCommit) : null;
  const candidates: Candidate[] = [];
  const threatDocs = input.threatsCommit ? await readJsons(store, 'threats', input.unsafePaths, input.threatsCommit) : new Map<string, unknown>();
  const invalidDocs = input.invalidCommit ? await readJsons(store, 'invalid', input.cameraFaultPaths, input.invalidCommit) : new Map<string, unknown>();
  for (const p of input.unsafePaths) {
    if (!input.threatsCommit) break;
    const doc = ThreatDocSchema.safeParse(threatDocs.get(p));
    if (!doc.success) throw new VigilError('E_CORRUPT', `threats@${input.threatsCommit}:${p} is missing or malformed`);
    candidates.push(...threatCandidates(doc.data, p, now));
  }
  for (const p of input.cameraFaultPaths) {
    if (!input.invalidCommit) break;
    const inv = InvalidDocSchema.safeParse(invalidDocs.get(p));
    if (!inv.success) throw new VigilError('E_CORRUPT', `invalid@${input.invalidCommit}:${p} is missing or malformed`);
    const d = inv.data;
    candidates.push({
      path: p.replace(/\.json$/, '-fault.json'),
      alert: {
        alertId: makeAlertId(`${d.tag}:${d.frameId}`, NO_RULES, 'camera_fault'),
        frameId: d.frameId, tag: d.tag, user: d.user, device: d.device, site: d.site, capturedAt: d.capturedAt, tz: d.tz,
        ruleId: 0, ruleName: `camera fault: ${d.reason}`, rulesCommit: input.rulesCommit ?? NO_RULES, matches: [],
        evidence: { repo: 'invalid', commit: input.invalidCommit, path: p, frameSha256: d.frameId },
        kind: 'camera_fault', createdAt: now,
      },
    });
  }
  candidates.sort((a, b) => a.alert.capturedAt.localeCompare(b.alert.capturedAt) || a.path.localeCompare(b.path));

  let refs: AlertRef[] = [];
  const keyOf = (c: Candidate) => `cooldowns/${c.alert.user}-${c.alert.device}-${c.alert.kind === 'camera_fault' ? 'fault' : `r${c.alert.ruleId}`}.json`;
  const live = input.deliver !== false;
  // Decided under the alerts repo's lock, against the head this commit builds on: chunks of one
  // batch run at once, and one that read a camera's cooldown before another's commit moved it
  // would send a second alert inside the cooldown.
  const decide = async (head: string | null): Promise<Change[]> => {
    const changes: Change[] = [];
    refs = [];
    const cooldowns = new Map<string, z.infer<typeof CooldownSchema>>();
    const current = head ? await readJsons(store, 'alerts', [...new Set(candidates.flatMap((c) => [c.path, keyOf(c)]))], head) : new Map<string, unknown>();
    for (const c of candidates) {
      const existing = AlertDocSchema.safeParse(current.get(c.path));
      // The same alert; or, when reprocessing, a live alert of the same frame and rule decided
      // under other rules: that one was meant for its user (its id is in the message they got, and
      // an auditor traces it), so it is kept, never replaced by a recorded one.
      if (existing.success && (existing.data.alert.alertId === c.alert.alertId || (!live && existing.data.status !== 'recorded'))) {
        refs.push({ alertId: existing.data.alert.alertId, path: c.path, status: existing.data.status });
        continue;
      }
      const key = keyOf(c);
      // Cooldowns are about what users are sent: reprocessing (nothing sent) neither reads nor moves them.
      const last = live ? (cooldowns.get(key) ?? CooldownSchema.safeParse(current.get(key)).data) : undefined;
      const at = Date.parse(c.alert.capturedAt);
      const suppressed = last !== undefined && last.alertId !== c.alert.alertId && Math.abs(at - Date.parse(last.lastAt)) < opts.cooldownMs;
      const contacts = rules?.users[c.alert.user]?.contacts ?? {};
      const deliveries: Delivery[] = suppressed || !live ? [] : planDeliveries(c.alert, contacts, opts.settings);
      const status = suppressed ? 'suppressed' : live ? 'pending' : 'recorded';
      const doc: AlertDoc = { kind: 'alert', alert: c.alert, status, ...(suppressed ? { suppressedBy: last!.alertId } : {}), deliveries };
      changes.push({ path: c.path, content: JSON.stringify(doc, null, 1) + '\n' });
      refs.push({ alertId: c.alert.alertId, path: c.path, status: doc.status });
      if (live && !suppressed && (!last || at >= Date.parse(last.lastAt))) {
        const next = { lastAt: c.alert.capturedAt, alertId: c.alert.alertId };
        cooldowns.set(key, next);
        changes.push({ path: key, content: JSON.stringify(next) + '\n' });
      }
    }
    return changes;
  };
  const inputs = [
    ...(input.threatsCommit ? [{ repo: 'threats', commit: input.threatsCommit }] : []),
    ...(input.invalidCommit && input.cameraFaultPaths.length ? [{ repo: 'invalid', commit: input.invalidCommit }] : []),
    ...(input.rulesCommit ? [{ repo: 'rules', commit: input.rulesCommit }] : []),
  ];
  const res = await commitChanges(store, {
    repo: 'alerts', changes: decide,
    provenance: { batchId: input.batchId, stage: 'alerts', stageVersion: ALERTS_STAGE_VERSION, inputs, extra: { cooldownMs: opts.cooldownMs } },
    summary: () => `alerts ${input.batchId}: ${refs.filter((r) => r.status === 'pending').length} to deliver, ${refs.filter((r) => r.status === 'suppressed').length} suppressed`,
    durable: true,
  });
  return { alertsCommit: res.commit, alerts: refs };
}

/** Result of delivering one alert on all its channels. */
export interface DeliverResult {
  alertId: string;
  delivered: number;
  failed: number;
  /** Deliveries sent without an answer on a channel that cannot be retried safely (never retried). */
  unknown: number;
  /** Deliveries still to retry (the caller retries with backoff). */
  retry: number;
}

/**
 * Delivers one alert on each planned channel, once: a delivery with a `delivered`, `failed` or
 * `unknown` attempt in the ledger is never attempted again, so retries and worker restarts do not resend.
 * Every attempt is recorded before the next step. On channels without an idempotency key (e-mail,
 * SMS) a `sending` mark is recorded before each request; a mark without the attempt it announces
 * (the worker was killed during the request) becomes an `unknown` attempt, not a second request:
 * at most once there, as for an unanswered request. A delivery that throws before its request
 * (deliver's contract: E_CONFIG, E_BAD_INPUT) withdraws its mark, so a later try sends it.
 * `finalAttempt` turns a retryable outcome into a recorded failure.
 */
export async function deliverAlert(
  store: RepoStore,
  input: { alertsCommit: string; path: string },
  settings: ChannelSettings,
  finalAttempt = false,
): Promise<DeliverResult> {
  const doc = AlertDocSchema.safeParse(await readJson(store, 'alerts', input.path, input.alertsCommit));
  if (!doc.success) throw new VigilError('E_CORRUPT', `alerts@${input.alertsCommit}:${input.path} is missing or malformed`);
  const { alert, deliveries } = doc.data;
  const result: DeliverResult = { alertId: alert.alertId, delivered: 0, failed: 0, unknown: 0, retry: 0 };
  const { attempts: history, sending } = await readLedger(store, alert.alertId);
  for (const d of deliveries) {
    const key = deliveryKey(d);
    const sameDelivery = history.filter((a) => a.channel === d.channel && a.target === key);
    if (sameDelivery.some((a) => a.outcome === 'delivered')) {
      result.delivered++;
      continue;
    }
    if (sameDelivery.some((a) => a.outcome === 'failed')) {
      result.failed++;
      continue;
    }
    if (sameDelivery.some((a) => a.outcome === 'unknown')) {
      result.unknown++;
      continue;
    }
    const attemptNo = sameDelivery.length + 1;
    let mark: Sending | null = null;
    if (!RESEND_SAFE_CHANNELS.has(d.channel)) {
      // A request begun and never answered in the ledger: the worker stopped during it, and the
      // provider may have accepted it. Not sent again.
      const cut = sending.find((s) => s.channel === d.channel && s.target === key && !sameDelivery.some((a) => a.attempt === s.attempt));
      if (cut) {
        await recordAttempt(store, cutOffAttempt(cut));
        result.unknown++;
        continue;
      }
      mark = { alertId: alert.alertId, channel: d.channel, target: key, attempt: attemptNo, at: new Date().toISOString() };
      await recordSending(store, mark);
    }
    let attempt: Attempt;
    try {
      attempt = await deliver(alert, d, settings, attemptNo);
    } catch (err) {
      // deliver() throws only before its request (a bad alert, missing credentials): nothing went out.
      if (mark) await recordWithdrawn(store, mark);
      throw err;
    }
    const recorded = { ...attempt, target: key };
    if (attempt.outcome === 'retry' && finalAttempt) recorded.outcome = 'failed';
    await recordAttempt(store, recorded);
    if (recorded.outcome === 'delivered') result.delivered++;
    else if (recorded.outcome === 'failed') result.failed++;
    else if (recorded.outcome === 'unknown') result.unknown++;
    else result.retry++;
  }
  return result;
}

/** The `unknown` attempt recorded for a request whose worker stopped before recording its answer. */
function cutOffAttempt(s: Sending): Attempt {
  return {
    alertId: s.alertId,
    channel: s.channel,
    target: s.target,
    attempt: s.attempt,
    at: s.at,
    requestSummary: `${s.channel} request begun at ${s.at}; the worker stopped before recording its answer`,
    statusCode: null,
    responseSummary: 'no answer recorded (worker stopped during the request): may have been delivered; not sent again',
    latencyMs: 0,
    outcome: 'unknown',
  };
}

/** What delivering the pending alerts of one chunk did, summed over its alerts. */
export interface DeliverManyResult {
  alerts: number;
  delivered: number;
  failed: number;
  unknown: number;
  /** Deliveries still to retry (the caller retries the whole call; what went out is never resent). */
  retry: number;
}

/**
 * {@link deliverAlert} for several alerts of one commit, `concurrency` at a time: one call (one
 * activity) per chunk instead of one per alert. Each alert keeps its own ledger, so a retry of the
 * whole call sends only the deliveries that have no `delivered`, `failed` or `unknown` attempt yet.
 */
export async function deliverAlerts(
  store: RepoStore,
  input: { alertsCommit: string; paths: string[] },
  settings: ChannelSettings,
  finalAttempt = false,
  concurrency = 4,
): Promise<DeliverManyResult> {
  const out: DeliverManyResult = { alerts: input.paths.length, delivered: 0, failed: 0, unknown: 0, retry: 0 };
  await mapLimit(input.paths, concurrency, async (path) => {
    const r = await deliverAlert(store, { alertsCommit: input.alertsCommit, path }, settings, finalAttempt);
    out.delivered += r.delivered;
    out.failed += r.failed;
    out.unknown += r.unknown;
    out.retry += r.retry;
  });
  return out;
}

/**
 * A stable, secret-free key naming one planned delivery: the channel and a hash of its target
 * (the ledger and the warehouse never hold an address, number or webhook URL).
 */
export function deliveryKey(d: Delivery): string {
  return `${d.channel}:${createHash('sha256').update(d.target).digest('hex').slice(0, 16)}`;
}
