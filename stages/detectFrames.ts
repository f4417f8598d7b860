import { VigilError } from '../lib/errors.js';
import type { ImageDetector } from '../detector/index.js';
import { commitChanges, readJsons, type Change, type RepoStore } from '../repos/index.js';
import { datumKey } from './datum.js';
import { DetectionDocSchema, StandardizedDocSchema, type DetectInput, type DetectOutput, type DetectionDoc, type StandardizedDoc } from './schema.js';

/** Bump when the detect stage's output for the same input and model would change. */
export const DETECT_STAGE_VERSION = '1';

const round1 = (v: number) => Math.round(v * 10) / 10;

/**
 * The detect stage: runs the detector on each standardized frame and commits
 * `detections/<user>-<device>/<timestamp>.json` with the frame hash, the model and its sha256, the
 * original image size and every object with boxes in original image pixels. A frame whose detection
 * already carries the same datum key (same standardized image, stage version and model) is skipped:
 * no inference, no new commit. A new model reprocesses.
 */
export async function detectFrames(
  store: RepoStore,
  input: DetectInput,
  detector: ImageDetector,
  onProgress: (done: number) => void = () => undefined,
): Promise<DetectOutput> {
  const out: DetectOutput = { detectionsCommit: null, detected: 0, skipped: 0, objects: 0 };
  const changes: Change[] = [];
  const model = detector.model;
  const paths = input.frames.map((f) => f.path);
  const [stds, prevs] = await Promise.all([
    readJsons(store, 'standardized', paths, input.standardizedCommit),
    readJsons(store, 'detections', paths).catch(() => new Map<string, unknown>()),
  ]);
  // First the frames that need inference (a detection with the same datum key is reused)…
  const work: Array<{ i: number; ref: (typeof input.frames)[number]; std: StandardizedDoc; datum: string }> = [];
  for (const [i, ref] of input.frames.entries()) {
    const parsed = StandardizedDocSchema.safeParse(stds.get(ref.path));
    if (!parsed.success || parsed.data.object.sha256 !== ref.sha256) {
      throw new VigilError('E_CORRUPT', `standardized@${input.standardizedCommit}:${ref.path} is missing or does not hold ${ref.sha256}`);
    }
    const datum = datumKey('detect', DETECT_STAGE_VERSION, parsed.data.object.sha256, model.sha256);
    const prev = DetectionDocSchema.safeParse(prevs.get(ref.path));
    if (prev.success && prev.data.datum === datum) {
      out.skipped++;
      out.objects += prev.data.objects.length;
      continue;
    }
    work.push({ i, ref, std: parsed.data, datum });
  }
  // …then inference, with the next image read and decoded while the current one is inferred.
  const launch = (w: (typeof work)[number]) => {
    const p = store.objects.get(w.std.object.sha256).then((bytes) => detector.detect(bytes));
    p.catch(() => undefined); // awaited below; an early failure must not go unhandled meanwhile
    return p;
  };
  let next = work[0] ? launch(work[0]) : null;
  for (const [k, w] of work.entries()) {
    onProgress(w.i);
    const current = next!;
    next = work[k + 1] ? launch(work[k + 1]!) : null;
    const result = await current;
    const { std, ref, datum } = w;
    const sx = std.width / result.image.width;
    const sy = std.height / result.image.height;
    const doc: DetectionDoc = {
      kind: 'detection',
      frameId: std.frameId, tag: std.tag, user: std.user, device: std.device, site: std.site,
      capturedAt: std.capturedAt, timestamp: std.timestamp, tz: std.tz, datum,
      source: { repo: 'standardized', commit: input.standardizedCommit, path: ref.path, sha256: std.object.sha256 },
      model: { name: model.name, sha256: model.sha256 },
      image: { width: std.width, height: std.height },
      objects: result.objects.map((o) => ({
        class: o.class, classId: o.classId, score: o.score,
        box: { x: round1(o.box.x * sx), y: round1(o.box.y * sy), width: round1(o.box.width * sx), height: round1(o.box.height * sy) },
      })),
    };
    changes.push({ path: ref.path, content: JSON.stringify(doc, null, 1) + '\n' });
    out.detected++;
    out.objects += doc.objects.length;
  }
  const res = await commitChanges(store, {
    repo: 'detections',
    changes,
    provenance: {
      batchId: input.batchId, stage: 'detect', stageVersion: DETECT_STAGE_VERSION,
      inputs: [{ repo: 'standardized', commit: input.standardizedCommit }], model: { name: model.name, sha256: model.sha256 },
    },
    summary: `detect ${input.batchId}: ${out.detected} frame(s) with ${model.name}`,
    durable: true,
  });
  out.detectionsCommit = res.commit;
  return out;
}
