/**
 * Replaying history under other rules, without inference and without writing anything: every
 * stored detection of a `detections` ref is re-evaluated and compared with the decision the
 * `threats` repo holds for it, so a user sees which alerts a rule change would add or remove
 * before putting it in force.
 */
import { VigilError } from '../lib/errors.js';
import { repoExists, resolveRef, walkBlobBatches, type RepoStore, type WalkedBlob } from '../repos/index.js';
import { compileRuleSet, ruleSetHash, type RuleSet } from '../rules/index.js';
import { DetectionDocSchema } from './schema.js';

/** A frame whose decision the replayed rules change. */
export interface ReplayChange {
  path: string;
  frameId: string;
  user: string;
  device: string;
  capturedAt: string;
  /** Rules that fired under the decision on record (null: the frame has no threat decision yet). */
  before: number[] | null;
  /** Rules that fire under the replayed rules (empty: safe). */
  after: number[];
}

/** What {@link replayRules} found. */
export interface ReplayReport {
  detectionsCommit: string | null;
  threatsCommit: string | null;
  rulesHash: string;
  /** Detections re-evaluated. */
  frames: number;
  unsafeBefore: number;
  unsafeAfter: number;
  /** Safe (or undecided) on record, unsafe now: alerts that would be raised. */
  newlyUnsafe: number;
  /** Unsafe on record, safe now: alerts that would not have been raised. */
  noLongerUnsafe: number;
  /** Unsafe both times, but other rules fire (alerts per rule change). */
  otherRules: number;
  /** The changed frames, in path order, at most `limit` of them. */
  changes: ReplayChange[];
  ms: number;
}

const sameRules = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((x, i) => x === b[i]);

/**
 * Re-evaluates every detection at `ref` (default main) of the `detections` repo under `ruleSet`
 * and compares each decision with the one on record in `threats` at main. Reads both repos in one
 * streaming pass each (see walkBlobs: every blob hash-checked), merged by path.
 * @param opts.prefix only detections under this folder (`<user>-<device>/`).
 * @param opts.limit most changes listed (default 1000; the counts always cover everything).
 * @throws VigilError E_CORRUPT for a malformed detection document.
 */
export async function replayRules(store: RepoStore, ruleSet: RuleSet, opts: { ref?: string; prefix?: string; limit?: number } = {}): Promise<ReplayReport> {
  const t0 = performance.now();
  const limit = opts.limit ?? 1000;
  const report: ReplayReport = {
    // An empty data folder has no detections repo yet: nothing to replay. An unknown ref is an error.
    detectionsCommit: repoExists(store, 'detections') ? await resolveRef(store, 'detections', opts.ref ?? 'main') : null,
    threatsCommit: await resolveRef(store, 'threats', 'main').catch(() => null),
    rulesHash: ruleSetHash(ruleSet),
    frames: 0, unsafeBefore: 0, unsafeAfter: 0, newlyUnsafe: 0, noLongerUnsafe: 0, otherRules: 0, changes: [], ms: 0,
  };
  if (!report.detectionsCommit) return { ...report, ms: Math.round(performance.now() - t0) };
  const rulesFired = compileRuleSet(ruleSet);
  // Both streams are in path order and hand over one chunk of blobs at a time: the threat decision
  // of a detection is looked up by advancing a cursor over the current chunk of threats.
  const threats = report.threatsCommit ? walkBlobBatches(store, 'threats', report.threatsCommit, { prefix: opts.prefix, resolved: true }) : null;
  let recorded: WalkedBlob[] = [];
  let at = 0;
  let threatsDone = threats === null;
  try {
    for await (const batch of walkBlobBatches(store, 'detections', report.detectionsCommit, { prefix: opts.prefix, resolved: true })) {
      for (const blob of batch) {
        if (blob.path.startsWith('.')) continue;
        const parsed = DetectionDocSchema.safeParse(JSON.parse(blob.bytes.toString('utf8')));
        if (!parsed.success) throw new VigilError('E_CORRUPT', `detections@${report.detectionsCommit}:${blob.path} is not a detection document`);
        const det = parsed.data;
        const after = rulesFired(det);
        // The threat decision stored at this path (null: none), advancing the threats cursor.
        let before: number[] | null = null;
        for (;;) {
          if (at === recorded.length) {
            if (threatsDone) break;
            const n = await threats!.next();
            if (n.done) threatsDone = true;
            else [recorded, at] = [n.value, 0];
            continue;
          }
          const here = recorded[at]!;
          if (here.path > blob.path) break;
          at++;
          if (here.path === blob.path) {
            const doc = JSON.parse(here.bytes.toString('utf8')) as { decision?: { unsafe?: boolean; rulesFired?: number[] } };
            before = doc.decision?.unsafe ? (doc.decision.rulesFired ?? []) : [];
            break;
          }
        }
        report.frames++;
        if (before?.length) report.unsafeBefore++;
        if (after.length) report.unsafeAfter++;
        if (sameRules(before ?? [], after)) continue;
        if (!before?.length) report.newlyUnsafe++;
        else if (!after.length) report.noLongerUnsafe++;
        else report.otherRules++;
        if (report.changes.length < limit) {
          report.changes.push({ path: blob.path, frameId: det.frameId, user: det.user, device: det.device, capturedAt: det.capturedAt, before, after });
        }
      }
    }
  } finally {
    await threats?.return(undefined);
  }
  report.ms = Math.round(performance.now() - t0);
  return report;
}
