import { VigilError } from '../lib/errors.js';
import { FrameDocSchema } from '../lib/schemas.js';
import { listFiles, readFile, sha256Hex, type RepoStore } from '../repos/index.js';
import { AlertDocSchema } from './alerts.js';
import { DetectionDocSchema, InvalidDocSchema, StandardizedDocSchema } from './schema.js';

/** One verified step from an alert back to its source frame. */
export interface TraceHop {
  /** `repo@commit:path`, or `object <sha256>`. */
  at: string;
  what: string;
  /** The hash this hop was checked against, and what it is. */
  verified: string;
}

/**
 * Traces an alert back to its source frame for an auditor, verifying every hop: the alert's
 * evidence names a detection (or invalid) document at a commit; that document names the
 * standardized image by hash, which names the frame document, which names the original bytes.
 * Each named hash is re-computed from the stored bytes.
 * @throws VigilError E_NOT_FOUND (no such alert), E_HASH_MISMATCH or E_CORRUPT naming the broken hop.
 */
export async function traceAlert(store: RepoStore, alertId: string): Promise<TraceHop[]> {
  if (!/^[0-9a-f]{32}$/.test(alertId)) throw new VigilError('E_BAD_ID', `invalid alert id ${JSON.stringify(alertId)}`);
  const files = (await listFiles(store, 'alerts')).filter((f) => !f.path.startsWith('cooldowns/'));
  const hops: TraceHop[] = [];
  for (const f of files) {
    const bytes = await readFile(store, 'alerts', f.path);
    const doc = AlertDocSchema.safeParse(bytes ? JSON.parse(bytes.toString('utf8')) : null);
    if (!doc.success || doc.data.alert.alertId !== alertId) continue;
    const { alert } = doc.data;
    hops.push({ at: `alerts@main:${f.path}`, what: `alert ${alert.kind} rule ${alert.ruleId} (${alert.ruleName}) for ${alert.user}/${alert.device}`, verified: `git blob ${f.oid}` });
    const ev = alert.evidence;
    const evBytes = await mustRead(store, ev.repo, ev.path, ev.commit);
    let stdRef: { commit: string; path: string; sha256: string } | null = null;
    if (ev.repo === 'detections') {
      const det = DetectionDocSchema.parse(JSON.parse(evBytes.toString('utf8')));
      same(det.frameId, alert.frameId, `${ev.repo}@${ev.commit}:${ev.path} frameId`);
      hops.push({ at: `${ev.repo}@${ev.commit}:${ev.path}`, what: `detection by ${det.model.name}: ${det.objects.map((o) => `${o.class} ${o.score}`).join(', ')}`, verified: `model sha256 ${det.model.sha256}` });
      stdRef = det.source;
    } else {
      InvalidDocSchema.parse(JSON.parse(evBytes.toString('utf8')));
      hops.push({ at: `${ev.repo}@${ev.commit}:${ev.path}`, what: 'invalid frame (camera fault)', verified: `frame ${alert.frameId}` });
    }
    let framePath = ev.path;
    let frameCommit: string | null = null;
    if (stdRef) {
      const std = StandardizedDocSchema.parse(JSON.parse((await mustRead(store, 'standardized', stdRef.path, stdRef.commit)).toString('utf8')));
      same(std.object.sha256, stdRef.sha256, `standardized@${stdRef.commit}:${stdRef.path} image`);
      same(sha256Hex(await store.objects.get(std.object.sha256)), stdRef.sha256, `standardized image ${stdRef.sha256}`);
      hops.push({ at: `standardized@${stdRef.commit}:${stdRef.path}`, what: `standardized image ${std.outWidth}x${std.outHeight}`, verified: `object sha256 ${std.object.sha256}` });
      framePath = std.source.path;
      frameCommit = std.source.commit;
      same(std.source.sha256, alert.frameId, 'standardized source frame');
    } else {
      const inv = InvalidDocSchema.parse(JSON.parse(evBytes.toString('utf8')));
      framePath = inv.source.path;
      frameCommit = inv.source.commit;
    }
    const frame = FrameDocSchema.parse(JSON.parse((await mustRead(store, 'frames', framePath, frameCommit)).toString('utf8')));
    same(frame.frameId, alert.frameId, `frames@${frameCommit}:${framePath} frameId`);
    same(sha256Hex(await store.objects.get(frame.object.sha256)), alert.frameId, `source frame ${alert.frameId}`);
    hops.push({ at: `frames@${frameCommit}:${framePath}`, what: `frame ${frame.tag} received ${frame.receivedAt}`, verified: `object sha256 ${frame.frameId} (${frame.object.size} bytes, ${frame.object.mediaType})` });
    return hops;
  }
  throw new VigilError('E_NOT_FOUND', `no alert ${alertId} in the alerts repo`);
}

async function mustRead(store: RepoStore, repo: string, path: string, commit: string): Promise<Buffer> {
  const bytes = await readFile(store, repo, path, commit);
  if (!bytes) throw new VigilError('E_CORRUPT', `${repo}@${commit}:${path} is missing`);
  return bytes;
}

function same(actual: string, expected: string, what: string): void {
  if (actual !== expected) throw new VigilError('E_HASH_MISMATCH', `${what}: expected ${expected}, found ${actual}`);
}
