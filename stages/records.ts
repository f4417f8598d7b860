import path from 'node:path';
import {
  appendRecords, autoCompact, clearCredentials, type AlertRow, type DeliveryRow, type DetectionRow, type FrameRow, type NonMatchRow, type ThreatRow,
} from '../warehouse/index.js';
import { localTime } from '../ingest/frameTag.js';
import { VigilError } from '../lib/errors.js';
import { FrameDocSchema, type FrameRef } from '../lib/schemas.js';
import { readJson, readJsons, type RepoStore } from '../repos/index.js';
import { InvalidReasonSchema } from '../validate/reasons.js';
import { ruleSetHash } from '../rules/index.js';
import { AlertDocSchema } from './alerts.js';
import { readAttempts } from './ledger.js';
import { readRuleSet } from './rulesVersion.js';
import { DetectionDocSchema, InvalidDocSchema, StandardizedDocSchema } from './schema.js';
import { ThreatDocSchema } from './threats.js';

/** Input of the records stage: the commits a chunk produced, by reference. */
export interface RecordsInput {
  batchId: string;
  part: string;
  framesCommit: string;
  frames: FrameRef[];
  standardizedCommit: string | null;
  invalidCommit: string | null;
  detectionsCommit: string | null;
  threatsCommit: string | null;
  rulesCommit: string | null;
  alertsCommit: string | null;
  alertPaths: string[];
  /**
   * A reprocessing run (history under other rules, nothing delivered): its frames, detections
   * and decisions are on record from their live batch already, so only the `recorded` alerts
   * among `alertPaths` and the rule version are appended, each recorded alert once whichever run
   * (or retry) meets it first. Appending the rest again counted every frame, threat and delivery
   * once more per run.
   */
  history?: boolean;
}

/** Rows written per table. */
export type RecordsOutput = Record<string, number>;

/** Folder of the records warehouse inside the data folder. */
export const warehouseRoot = (store: RepoStore) => path.join(store.dataDir, 'warehouse');

const hourOf = (iso: string) => new Date(Math.floor(Date.parse(iso) / 3_600_000) * 3_600_000).toISOString();

/**
 * The records stage: appends what a chunk did to the Parquet warehouse — frames (with invalid
 * reasons), detections, threat matches, safe frames aggregated per user, device and hour, alerts
 * and every delivery attempt with the provider's response, and the rule version. Append-only and
 * idempotent: a re-run of the same batch part finds its files and writes nothing. Then runs the
 * warehouse's automatic compaction (`autoCompact`: closed days and months, at most hourly).
 */
export async function recordsStage(store: RepoStore, input: RecordsInput): Promise<RecordsOutput> {
  const live = input.history ? null : await frameRows(store, input);
  const { alerts, deliveries } = await alertRows(store, input);
  const root = warehouseRoot(store);
  const opts = { batchId: input.batchId, part: input.part };
  const out: RecordsOutput = {};
  const put = async <T extends Parameters<typeof appendRecords>[1]>(table: T, rows: Parameters<typeof appendRecords<T>>[2]) => {
    if (rows.length === 0) return;
    out[table] = (await appendRecords(root, table, rows, opts)).rows;
  };
  if (live) {
    await put('frames', live.frames);
    await put('detections', live.detections);
    await put('threats', live.threats);
    await put('non_matches', live.nonMatches);
  }
  if (!input.history) {
    await put('alerts', alerts);
    await put('deliveries', deliveries);
  } else {
    // Only `recorded` alerts here (see alertRows), each under a file key of its own: a later run
    // (or a retry after this one died) that meets the same alert finds its file and appends nothing.
    let n = 0;
    for (const a of alerts) n += (await appendRecords(root, 'alerts', [a], { batchId: `recorded-${a.alert_id}` })).rows;
    if (n) out.alerts = n;
  }
  if (input.rulesCommit) {
    const set = await readRuleSet(store, input.rulesCommit);
    if (set) {
      const r = await appendRecords(root, 'rule_versions', [{
        rules_commit: input.rulesCommit, rules_hash: ruleSetHash(set), at: new Date().toISOString(),
        rule_ids: set.rules.map((x) => x.id).sort((a, b) => a - b).join(','),
      }], { batchId: `rules-${input.rulesCommit}` });
      out.rule_versions = r.rows;
    }
  }
  // Now and then (at most hourly per warehouse, within a time budget, only when no other
  // compaction runs) merge the small files of closed days and months. Never fails the stage.
  await autoCompact(root).catch((err: unknown) => console.warn(`vigil: warehouse compaction skipped: ${err instanceof Error ? err.message : String(err)}`));
  return out;
}

/** The rows of a chunk's frames: each frame, its detections, its threat matches or its safe-frame aggregate. */
async function frameRows(store: RepoStore, input: RecordsInput): Promise<{ frames: FrameRow[]; detections: DetectionRow[]; threats: ThreatRow[]; nonMatches: NonMatchRow[] }> {
  const frames: FrameRow[] = [];
  const detections: DetectionRow[] = [];
  const threats: ThreatRow[] = [];
  const safe = new Map<string, NonMatchRow>();
  const paths = input.frames.map((f) => f.path);
  const none = new Map<string, unknown>();
  // A commit the chunk produced names an existing repo: a failed read is an error to retry, never
  // "no documents" (which would fail the batch for good as E_CORRUPT below).
  const at = (repo: string, commit: string | null) => (commit ? readJsons(store, repo, paths, commit) : Promise.resolve(none));
  const [frameDocs, stds, invs, dets, ths] = await Promise.all([
    readJsons(store, 'frames', paths, input.framesCommit),
    at('standardized', input.standardizedCommit),
    at('invalid', input.invalidCommit),
    at('detections', input.detectionsCommit),
    at('threats', input.threatsCommit),
  ]);
  for (const ref of input.frames) {
    const f = FrameDocSchema.safeParse(frameDocs.get(ref.path));
    if (!f.success) throw new VigilError('E_CORRUPT', `frames@${input.framesCommit}:${ref.path} is missing or malformed`);
    const frame = f.data;
    const [localDate, clock] = localTime(new Date(frame.capturedAt), frame.tz).split('T') as [string, string];
    const localHour = Number(clock.slice(0, 2));
    const std = input.standardizedCommit ? StandardizedDocSchema.safeParse(stds.get(ref.path)) : null;
    const inv = !std?.success && input.invalidCommit ? InvalidDocSchema.safeParse(invs.get(ref.path)) : null;
    if (!std?.success && !inv?.success) throw new VigilError('E_CORRUPT', `frame ${ref.path} is in neither standardized nor invalid`);
    const reason = inv?.success ? InvalidReasonSchema.parse(inv.data.reason) : null;
    frames.push({
      frame_id: frame.frameId, tag: frame.tag, user_id: frame.user, device_id: frame.device, site: frame.site,
      captured_at: frame.capturedAt, tz: frame.tz, local_date: localDate, local_hour: localHour, received_at: frame.receivedAt,
      batch_id: input.batchId, status: std?.success ? 'standardized' : 'invalid', reason, camera_fault: inv?.success ? inv.data.cameraFault : false,
    });
    if (!std?.success || !input.detectionsCommit) continue;
    const det = DetectionDocSchema.safeParse(dets.get(ref.path));
    if (!det.success) throw new VigilError('E_CORRUPT', `standardized frame ${ref.path} has no detection`);
    for (const o of det.data.objects) {
      detections.push({
        frame_id: frame.frameId, user_id: frame.user, device_id: frame.device, captured_at: frame.capturedAt, batch_id: input.batchId,
        model_sha256: det.data.model.sha256, class: o.class, score: o.score, box_x: o.box.x, box_y: o.box.y, box_w: o.box.width, box_h: o.box.height,
      });
    }
    const th = input.threatsCommit ? ThreatDocSchema.safeParse(ths.get(ref.path)) : null;
    if (th?.success && th.data.decision.unsafe && th.data.rulesCommit) {
      for (const m of th.data.decision.matches) {
        threats.push({
          frame_id: frame.frameId, tag: frame.tag, user_id: frame.user, device_id: frame.device, captured_at: frame.capturedAt,
          local_hour: localHour, batch_id: input.batchId, rules_commit: th.data.rulesCommit, rule_id: m.ruleId, rule_name: m.ruleName,
          class: m.class, score: m.score,
        });
      }
    } else {
      const key = `${frame.user}/${frame.device}/${hourOf(frame.capturedAt)}`;
      const row = safe.get(key) ?? { user_id: frame.user, device_id: frame.device, hour: hourOf(frame.capturedAt), batch_id: input.batchId, frames: 0, objects: 0 };
      row.frames++;
      row.objects += det.data.objects.length;
      safe.set(key, row);
    }
  }
  return { frames, detections, threats, nonMatches: [...safe.values()] };
}

/**
 * The rows of a chunk's alerts and of their delivery attempts (from the ledger); summaries are
 * cleared of anything that looks like a credential (a provider's answer may quote a header).
 * For a history run, only its `recorded` alerts (which have no attempts).
 */
async function alertRows(store: RepoStore, input: RecordsInput): Promise<{ alerts: AlertRow[]; deliveries: DeliveryRow[] }> {
  const alerts: AlertRow[] = [];
  const deliveries: DeliveryRow[] = [];
  for (const p of input.alertPaths) {
    if (!input.alertsCommit) break;
    const doc = AlertDocSchema.safeParse(await readJson(store, 'alerts', p, input.alertsCommit));
    if (!doc.success) throw new VigilError('E_CORRUPT', `alerts@${input.alertsCommit}:${p} is missing or malformed`);
    const { alert, status, deliveries: planned } = doc.data;
    // A history run records only `recorded` alerts: a live one it met is on record, so its
    // delivery ledger is not read.
    if (input.history && status !== 'recorded') continue;
    const attempts = await readAttempts(store, alert.alertId);
    for (const a of attempts) {
      deliveries.push({
        alert_id: a.alertId, channel: a.channel, attempt: a.attempt, at: a.at, request_summary: clearCredentials(a.requestSummary),
        status_code: a.statusCode, response_summary: clearCredentials(a.responseSummary), latency_ms: a.latencyMs, outcome: a.outcome,
      });
    }
    const deliveredReal = attempts.some((a) => a.outcome === 'delivered' && a.channel !== 'outbox');
    const unknown = attempts.some((a) => a.outcome === 'unknown');
    const allOutbox = planned.length === 0 || planned.every((d) => d.channel === 'outbox');
    alerts.push({
      alert_id: alert.alertId, frame_id: alert.frameId, user_id: alert.user, device_id: alert.device, rule_id: alert.ruleId,
      classes: [...new Set(alert.matches.map((m) => m.class))], max_score: Math.max(0, ...alert.matches.map((m) => m.score)),
      created_at: alert.createdAt, batch_id: input.batchId,
      status: status === 'suppressed' || status === 'recorded' ? status : deliveredReal ? 'delivered' : allOutbox ? 'outbox' : unknown ? 'unknown' : 'failed',
      channels: planned.length,
    });
  }
  return { alerts, deliveries };
}
