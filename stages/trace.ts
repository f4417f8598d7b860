import type { z } from 'zod';
import { isVigilError, VigilError } from '../lib/errors.js';
import { FrameDocSchema } from '../lib/schemas.js';
import { gitArgs, listFiles, readBlobBytes, readFile, replacedFiles, sha256Hex, type RepoStore } from '../repos/index.js';
import { AlertDocSchema, type AlertDoc } from './alerts.js';
import { DetectionDocSchema, InvalidDocSchema, StandardizedDocSchema } from './schema.js';

/** One verified step from an alert back to its source frame. */
export interface TraceHop {
  /** `repo@commit:path`, or `object <sha256>`. */
  at: string;
  what: string;
  /** The hash this hop was checked against, and what it is. */
  verified: string;
}

/** Shortest alert id prefix accepted: the 8 characters the alert messages show (`#498277af`). */
export const MIN_ALERT_ID_PREFIX = 8;

/** An alert document found: where (commit null: at the head of main), its blob and its content. */
interface FoundAlert {
  path: string;
  oid: string;
  doc: AlertDoc;
  commit: string | null;
}

/** Parses an alert document's bytes. @throws Error when it is not one */
function parseAlert(bytes: Buffer | null): AlertDoc {
  const parsed = AlertDocSchema.safeParse(bytes ? JSON.parse(bytes.toString('utf8')) : null);
  if (!parsed.success) throw new Error('not a valid alert document');
  return parsed.data;
}

/**
 * Alerts that a later run replaced, found in the alerts repo's history: a `recorded` alert that
 * reprocessing under newer rules decided again (same frame and rule, a new id). The warehouse
 * keeps its id, so an auditor may ask for it. The newest version of each alert id that starts with `id`.
 */
async function findReplacedAlerts(store: RepoStore, id: string): Promise<FoundAlert[]> {
  const found = new Map<string, FoundAlert>();
  const seen = new Set<string>();
  const args = gitArgs(store, 'alerts');
  for await (const f of replacedFiles(store, 'alerts', 'main', { skipFolder: 'cooldowns' })) {
    if (seen.has(f.oid)) continue;
    seen.add(f.oid);
    let doc: AlertDoc;
    try {
      doc = parseAlert(await readBlobBytes(args, f.oid));
    } catch {
      continue; // an old version that was damaged, or not an alert: not the one asked for
    }
    if (doc.alert.alertId.startsWith(id) && !found.has(doc.alert.alertId)) found.set(doc.alert.alertId, { path: f.path, oid: f.oid, doc, commit: f.commit });
  }
  return [...found.values()];
}

/**
 * Finds the alert document whose id is `alertId`, or starts with it (at least
 * {@link MIN_ALERT_ID_PREFIX} hex digits, any case), at the head of the alerts repo, else in its
 * history (an alert a later run replaced, see findReplacedAlerts). A document that cannot be read
 * (damaged, or not an alert) does not stop the search for another alert; if the alert is not
 * found, the error names them.
 * @throws VigilError E_BAD_ID (not a hex id or prefix), E_BAD_INPUT (a prefix several alerts
 *   share), E_NOT_FOUND (none), E_CORRUPT (none among the readable documents, some unreadable).
 */
async function findAlert(store: RepoStore, alertId: string): Promise<FoundAlert> {
  const id = alertId.toLowerCase();
  if (!new RegExp(`^[0-9a-f]{${MIN_ALERT_ID_PREFIX},32}$`).test(id)) {
    throw new VigilError('E_BAD_ID', `invalid alert id ${JSON.stringify(alertId)}: give its 32 hex digits, or at least the first ${MIN_ALERT_ID_PREFIX} (as in the alert message)`);
  }
  const files = (await listFiles(store, 'alerts')).filter((f) => !f.path.startsWith('cooldowns/'));
  let found: FoundAlert[] = [];
  const unreadable: string[] = [];
  for (const f of files) {
    let doc: AlertDoc;
    try {
      doc = parseAlert(await readFile(store, 'alerts', f.path));
    } catch (err) {
      unreadable.push(`alerts@main:${f.path} (${(err as Error).message})`);
      continue;
    }
    if (doc.alert.alertId.startsWith(id)) found.push({ path: f.path, oid: f.oid, doc, commit: null });
  }
  // History only when every document at main could be read: a damaged one may be the alert asked
  // for, and an older version of it must not stand in for it.
  if (found.length === 0 && unreadable.length === 0) found = await findReplacedAlerts(store, id);
  if (found.length > 1) throw new VigilError('E_BAD_INPUT', `${found.length} alerts start with ${id}: ${found.map((f) => f.doc.alert.alertId).join(', ')}; give more digits`);
  if (found[0]) return found[0];
  if (unreadable.length) {
    throw new VigilError('E_CORRUPT', `no alert ${id} among the readable alert documents; ${unreadable.length} could not be read: ${unreadable.slice(0, 5).join('; ')}${unreadable.length > 5 ? '; …' : ''} (see vigil repo fsck)`);
  }
  throw new VigilError('E_NOT_FOUND', `no alert ${id} in the alerts repo or its history`);
}

/** Runs one hop's checks; a failure names the hop (`repo@commit:path`) before its own message. */
async function hop<T>(where: string, check: () => Promise<T>): Promise<T> {
  try {
    return await check();
  } catch (err) {
    if (isVigilError(err)) throw new VigilError(err.code, `${where}: ${err.message}`);
    throw new VigilError('E_CORRUPT', `${where}: ${(err as Error).message}`);
  }
}

/**
 * Traces an alert back to its source frame for an auditor, verifying every hop: the alert's
 * evidence names a detection (or invalid) document at a commit, which must hold the alert's
 * frame and every object the alert matched; that document names the standardized image by
 * hash, which names the frame document, which names the original bytes. Each named hash is
 * re-computed from the stored bytes, and every git object read is re-hashed against its id.
 * `alertId` may be the first 8 or more hex digits of the id (as the alert messages show it).
 * @throws VigilError E_NOT_FOUND (no such alert), E_BAD_ID, E_BAD_INPUT (ambiguous prefix),
 *   E_HASH_MISMATCH or E_CORRUPT naming the broken hop.
 */
export async function traceAlert(store: RepoStore, alertId: string): Promise<TraceHop[]> {
  const f = await findAlert(store, alertId);
  const { alert } = f.doc;
  const hops: TraceHop[] = [];
  const replaced = f.commit ? `, ${f.doc.status}; replaced at main by a later run` : '';
  hops.push({ at: `alerts@${f.commit ?? 'main'}:${f.path}`, what: `alert ${alert.alertId} ${alert.kind} rule ${alert.ruleId} (${alert.ruleName}) for ${alert.user}/${alert.device}${replaced}`, verified: `git blob ${f.oid}` });
  const ev = alert.evidence;
  const evAt = `${ev.repo}@${ev.commit}:${ev.path}`;
  let stdRef: { commit: string; path: string; sha256: string } | null = null;
  let framePath: string;
  let frameCommit: string;
  if (ev.repo === 'detections') {
    const det = await hop(evAt, () => readDoc(store, ev.repo, ev.path, ev.commit, DetectionDocSchema));
    await hop(evAt, async () => {
      same(det.frameId, alert.frameId, 'frameId');
      for (const m of alert.matches) {
        const seen = det.objects.some((o) => o.class === m.class && o.score === m.score && JSON.stringify(o.box) === JSON.stringify(m.box));
        if (!seen) throw new VigilError('E_HASH_MISMATCH', `the alert's match ${m.class} ${m.score} is not among the detected objects`);
      }
    });
    hops.push({ at: evAt, what: `detection by ${det.model.name}: ${det.objects.map((o) => `${o.class} ${o.score}`).join(', ')}`, verified: `frame ${alert.frameId}; the alert's ${alert.matches.length} match(es) found in it` });
    stdRef = det.source;
    const std = await hop(`standardized@${stdRef.commit}:${stdRef.path}`, async () => {
      const doc = await readDoc(store, 'standardized', stdRef!.path, stdRef!.commit, StandardizedDocSchema);
      same(doc.object.sha256, stdRef!.sha256, 'image');
      same(sha256Hex(await store.objects.get(doc.object.sha256)), stdRef!.sha256, `standardized image ${stdRef!.sha256}`);
      same(doc.source.sha256, alert.frameId, 'source frame');
      return doc;
    });
    hops.push({ at: `standardized@${stdRef.commit}:${stdRef.path}`, what: `standardized image ${std.outWidth}x${std.outHeight}`, verified: `object sha256 ${std.object.sha256}` });
    framePath = std.source.path;
    frameCommit = std.source.commit;
  } else {
    const inv = await hop(evAt, async () => {
      const doc = await readDoc(store, ev.repo, ev.path, ev.commit, InvalidDocSchema);
      same(doc.frameId, alert.frameId, 'frameId');
      return doc;
    });
    hops.push({ at: evAt, what: 'invalid frame (camera fault)', verified: `frame ${alert.frameId}` });
    framePath = inv.source.path;
    frameCommit = inv.source.commit;
  }
  const frameAt = `frames@${frameCommit}:${framePath}`;
  const frame = await hop(frameAt, async () => {
    const doc = await readDoc(store, 'frames', framePath, frameCommit, FrameDocSchema);
    same(doc.frameId, alert.frameId, 'frameId');
    same(sha256Hex(await store.objects.get(doc.object.sha256)), alert.frameId, `source frame ${alert.frameId}`);
    return doc;
  });
  hops.push({ at: frameAt, what: `frame ${frame.tag} received ${frame.receivedAt}`, verified: `object sha256 ${frame.frameId} (${frame.object.size} bytes, ${frame.object.mediaType})` });
  return hops;
}

/** A document at a commit, parsed and checked against its schema (the caller's hop says where it is). */
async function readDoc<S extends z.ZodType>(store: RepoStore, repo: string, path: string, commit: string, schema: S): Promise<z.infer<S>> {
  const bytes = await readFile(store, repo, path, commit);
  if (!bytes) throw new VigilError('E_CORRUPT', 'the document is missing');
  return schema.parse(JSON.parse(bytes.toString('utf8')));
}

function same(actual: string, expected: string, what: string): void {
  if (actual !== expected) throw new VigilError('E_HASH_MISMATCH', `${what}: expected ${expected}, found ${actual}`);
}
