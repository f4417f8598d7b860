import { VigilError } from '../lib/errors.js';
import { FrameDocSchema } from '../lib/schemas.js';
import { commitChanges, readJsons, type Change, type RepoStore } from '../repos/index.js';
import { validateFrame, type ValidateConfig } from '../validate/index.js';
import { configHash, datumKey } from './datum.js';
import {
  InvalidDocSchema, StandardizedDocSchema, type InvalidDoc, type StandardizedDoc, type ValidateInput, type ValidateOutput,
} from './schema.js';
import { checkFrameTags } from './tags.js';

/** Bump when the validate stage's output for the same input and config would change. */
export const VALIDATE_STAGE_VERSION = '2';

const json = (doc: unknown) => JSON.stringify(doc, null, 1) + '\n';

/**
 * The validate-and-standardize stage over a list of frames: every frame ends in exactly one of
 * `standardized` (auto-oriented, resized, metadata stripped, re-encoded; the image stored by hash)
 * or `invalid` (with a machine-readable reason). Frames whose output already carries the same datum
 * key are skipped, so re-running a batch does no work and writes no commit.
 */
export async function validateFrames(
  store: RepoStore,
  input: ValidateInput,
  config: ValidateConfig,
  onProgress: (done: number) => void = () => undefined,
): Promise<ValidateOutput> {
  const out: ValidateOutput = { standardizedCommit: null, invalidCommit: null, accepted: [], rejected: [], skipped: 0 };
  const stdChanges: Change[] = [];
  const invChanges: Change[] = [];
  const cfg = configHash(config);
  const paths = input.frames.map((f) => f.path);
  const none = new Map<string, unknown>();
  const [frames, prevStds, prevInvs] = await Promise.all([
    readJsons(store, 'frames', paths, input.framesCommit),
    readJsons(store, 'standardized', paths).catch(() => none),
    readJsons(store, 'invalid', paths).catch(() => none),
  ]);
  for (const [i, ref] of input.frames.entries()) {
    onProgress(i);
    const frame = FrameDocSchema.safeParse(frames.get(ref.path));
    if (!frame.success || frame.data.frameId !== ref.frameId) {
      throw new VigilError('E_CORRUPT', `frames@${input.framesCommit}:${ref.path} is missing or does not hold frame ${ref.frameId}`);
    }
    const doc = frame.data;
    const datum = datumKey('validate', VALIDATE_STAGE_VERSION, doc.frameId, cfg);
    const prevStd = StandardizedDocSchema.safeParse(prevStds.get(ref.path));
    const prevInv = InvalidDocSchema.safeParse(prevInvs.get(ref.path));
    if (prevStd.success && prevStd.data.datum === datum) {
      out.accepted.push({ path: ref.path, frameId: doc.frameId, sha256: prevStd.data.object.sha256 });
      out.skipped++;
      if (prevInv.success) invChanges.push({ path: ref.path, delete: true });
      continue;
    }
    if (prevInv.success && prevInv.data.datum === datum) {
      out.rejected.push({ path: ref.path, frameId: doc.frameId, reason: prevInv.data.reason, cameraFault: prevInv.data.cameraFault });
      out.skipped++;
      if (prevStd.success) stdChanges.push({ path: ref.path, delete: true });
      continue;
    }
    const common = {
      frameId: doc.frameId, tag: doc.tag, user: doc.user, device: doc.device, site: doc.site, capturedAt: doc.capturedAt,
      timestamp: doc.timestamp, tz: doc.tz, datum,
      source: { repo: 'frames', commit: input.framesCommit, path: ref.path, sha256: doc.frameId },
    };
    const tagProblem = checkFrameTags(doc, ref.path);
    const outcome = tagProblem
      ? ({ ok: false as const, reason: 'bad_tags' as const, message: tagProblem, cameraFault: false })
      : await validateFrame(await store.objects.get(doc.frameId), config);
    if (outcome.ok) {
      const put = await store.objects.put(outcome.image);
      const s = outcome.summary;
      const std: StandardizedDoc = {
        kind: 'standardized', ...common, object: { sha256: put.sha256, size: put.size, mediaType: 'image/jpeg' },
        format: s.format, width: s.width, height: s.height, outWidth: s.outWidth, outHeight: s.outHeight, encoding: s.encoding, stats: s.stats, warnings: s.warnings,
      };
      stdChanges.push({ path: ref.path, content: json(std) });
      if (prevInv.success) invChanges.push({ path: ref.path, delete: true });
      out.accepted.push({ path: ref.path, frameId: doc.frameId, sha256: put.sha256 });
    } else {
      const inv: InvalidDoc = { kind: 'invalid', ...common, reason: outcome.reason, message: outcome.message, cameraFault: outcome.cameraFault, ...('stats' in outcome && outcome.stats ? { stats: outcome.stats } : {}) };
      invChanges.push({ path: ref.path, content: json(inv) });
      if (prevStd.success) stdChanges.push({ path: ref.path, delete: true });
      out.rejected.push({ path: ref.path, frameId: doc.frameId, reason: outcome.reason, cameraFault: outcome.cameraFault });
    }
  }
  const provenance = {
    batchId: input.batchId, stage: 'validate', stageVersion: VALIDATE_STAGE_VERSION,
    inputs: [{ repo: 'frames', commit: input.framesCommit }], extra: { configHash: cfg },
  };
  const std = await commitChanges(store, { repo: 'standardized', changes: stdChanges, provenance, summary: `validate ${input.batchId}: ${out.accepted.length} standardized`, durable: true });
  const inv = await commitChanges(store, { repo: 'invalid', changes: invChanges, provenance, summary: `validate ${input.batchId}: ${out.rejected.length} invalid`, durable: true });
  out.standardizedCommit = std.commit;
  out.invalidCommit = inv.commit;
  return out;
}
