/**
 * Planning a reprocessing run: which frames, captured in a time window, go through the DAG again
 * (under the rules and model in force; the datum keys make unchanged work a no-op).
 */
import { FrameDocSchema, type FrameRef } from '../lib/schemas.js';
import { VigilError } from '../lib/errors.js';
import { listFiles, lookupBlobs, readBranchHead, readJsons, repoExists, resolveRef, type RepoStore } from '../repos/index.js';

/** Input of {@link planReprocess}: a capture-time window and a page. */
export interface ReprocessPlanInput {
  /** Window start (inclusive), ms since the epoch, capture time. */
  fromMs: number;
  /** Window end (exclusive). */
  toMs: number;
  /** Only frame paths after this one (the previous page's `next`). */
  after?: string | null;
  /** Most frames in this page. */
  limit: number;
}

/** One page of frames to reprocess, pinned to one frames commit. */
export interface ReprocessPlan {
  framesCommit: string | null;
  frames: FrameRef[];
  /** Pass as `after` for the next page; null when this page was the last. */
  next: string | null;
}

const compact = (ms: number) => new Date(ms).toISOString().replace(/[-:.]/g, '');

/**
 * Lists, in path order, the frames captured in `[fromMs, toMs)` that the pipeline already decided
 * (they have a `threats` or `invalid` document): frames still on their way through a live batch
 * are left to it, so a reprocessing run never records first an alert the live batch is about to
 * send. Reads the frame documents of the page (for their ids and sites) at the frames head.
 * @throws VigilError E_BAD_INPUT for a bad window or limit.
 */
export async function planReprocess(store: RepoStore, input: ReprocessPlanInput): Promise<ReprocessPlan> {
  if (!Number.isFinite(input.fromMs) || !Number.isFinite(input.toMs) || input.fromMs >= input.toMs) {
    throw new VigilError('E_BAD_INPUT', `reprocess window [${input.fromMs}, ${input.toMs}) is empty or invalid`);
  }
  if (!Number.isInteger(input.limit) || input.limit < 1 || input.limit > 5000) throw new VigilError('E_BAD_INPUT', `limit must be 1-5000, got ${input.limit}`);
  const framesCommit = repoExists(store, 'frames') ? await resolveRef(store, 'frames', 'main') : null;
  if (!framesCommit) return { framesCommit: null, frames: [], next: null };
  const [from, to] = [compact(input.fromMs), compact(input.toMs)];
  const inWindow = (p: string) => {
    const m = /^[a-z0-9_]+-[a-z0-9_]+\/(\d{8}T\d{9}Z)\.json$/.exec(p);
    return m !== null && m[1]! >= from && m[1]! < to;
  };
  const inRange = (await listFiles(store, 'frames', framesCommit)).map((f) => f.path).filter((p) => (input.after ? p > input.after : true) && inWindow(p));
  // Decided = has a threats or invalid document at its head (looked up, not listed: only these paths).
  const decided = new Set<string>();
  for (const repo of ['threats', 'invalid']) {
    for (const [p, oid] of await lookupBlobs(store, repo, await readBranchHead(store, repo), inRange)) if (oid) decided.add(p);
  }
  const candidates = inRange.filter((p) => decided.has(p));
  const page = candidates.slice(0, input.limit);
  const docs = await readJsons(store, 'frames', page, framesCommit);
  const frames: FrameRef[] = [];
  for (const p of page) {
    const doc = FrameDocSchema.safeParse(docs.get(p));
    if (!doc.success) throw new VigilError('E_CORRUPT', `frames@${framesCommit}:${p} is not a frame document`);
    frames.push({ path: p, frameId: doc.data.frameId, site: doc.data.site });
  }
  return { framesCommit, frames, next: candidates.length > page.length ? page[page.length - 1]! : null };
}
