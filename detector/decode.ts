/**
 * Pure decoder for YOLOv8-style detection heads.
 */
import { VigilError } from '../lib/errors.js';
import type { LetterboxTransform } from './letterbox.js';
import { nmsPerClass, type ScoredBox } from './nms.js';
import type { DetectedObject } from './schema.js';

/** Thresholds and labels for {@link decodeYolov8}. */
export interface DecodeOptions {
  /** Keep candidates whose best class score is strictly above this. */
  readonly scoreThreshold: number;
  /** Per-class NMS IoU threshold. */
  readonly iouThreshold: number;
  /** Cap on the returned detections (highest scores first). */
  readonly maxDetections: number;
  /** Class names indexed by class id; its length is the model's class count. */
  readonly classNames: readonly string[];
}

/** The part of a letterbox transform the decoder needs to map boxes back. */
export type BoxTransform = Pick<LetterboxTransform, 'scale' | 'padX' | 'padY' | 'width' | 'height'>;

/** Rounds to 0.1. */
export function round1(v: number): number {
  return Math.round(v * 10) / 10;
}

/** Rounds to 4 decimals. */
export function round4(v: number): number {
  return Math.round(v * 10_000) / 10_000;
}

/** Clamps `v` to `[lo, hi]`. */
function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}

/**
 * Candidate boxes from a `[1, 4 + C, N]` YOLOv8 output: for each of the N anchors, the best class
 * and its score; anchors whose best score is above `scoreThreshold` become corner boxes in
 * model-input pixels.
 *
 * @throws VigilError E_MODEL when the dims do not match `[1, 4 + numClasses, N]` or the data length.
 */
export function yolov8Candidates(
  output: ArrayLike<number>,
  dims: readonly number[],
  numClasses: number,
  scoreThreshold: number,
): ScoredBox[] {
  const [batch, channels, anchors] = dims;
  if (dims.length !== 3 || batch !== 1 || channels !== 4 + numClasses || anchors === undefined || anchors < 1) {
    throw new VigilError(
      'E_MODEL',
      `unexpected YOLOv8 output shape [${dims.join(', ')}], expected [1, ${4 + numClasses}, N]`,
      { dims: [...dims], numClasses },
    );
  }
  if (output.length !== channels * anchors) {
    throw new VigilError('E_MODEL', `YOLOv8 output has ${output.length} values, shape needs ${channels * anchors}`, {
      dims: [...dims],
    });
  }
  const at = (c: number, i: number): number => output[c * anchors + i]!;
  const out: ScoredBox[] = [];
  for (let i = 0; i < anchors; i++) {
    let best = -Infinity;
    let classId = -1;
    for (let c = 0; c < numClasses; c++) {
      const s = at(4 + c, i);
      if (s > best) {
        best = s;
        classId = c;
      }
    }
    if (!(best > scoreThreshold)) continue;
    const cx = at(0, i);
    const cy = at(1, i);
    const hw = at(2, i) / 2;
    const hh = at(3, i) / 2;
    out.push({ x1: cx - hw, y1: cy - hh, x2: cx + hw, y2: cy + hh, score: best, classId });
  }
  return out;
}

/**
 * Maps a corner box from model-input pixels back to original-image pixels, clamped to the image,
 * as `{x, y, width, height}` rounded to 0.1 px (corners are rounded first, so `x + width` never
 * exceeds the image width).
 */
export function unletterboxBox(box: Pick<ScoredBox, 'x1' | 'y1' | 'x2' | 'y2'>, t: BoxTransform): DetectedObject['box'] {
  const x1 = round1(clamp((box.x1 - t.padX) / t.scale, 0, t.width));
  const y1 = round1(clamp((box.y1 - t.padY) / t.scale, 0, t.height));
  const x2 = round1(clamp((box.x2 - t.padX) / t.scale, 0, t.width));
  const y2 = round1(clamp((box.y2 - t.padY) / t.scale, 0, t.height));
  return { x: x1, y: y1, width: round1(Math.max(0, x2 - x1)), height: round1(Math.max(0, y2 - y1)) };
}

/**
 * Decodes a YOLOv8 output tensor (`[1, 4 + C, N]`: cx, cy, w, h in model-input pixels, then C class
 * scores, no objectness) into detections in original-image pixels: score filter, per-class NMS,
 * mapping back through the letterbox, clamping, dropping boxes left empty by clamping, sorting by
 * score (desc) and capping at `maxDetections`. Scores are rounded to 4 decimals.
 *
 * @throws VigilError E_MODEL on a shape mismatch.
 */
export function decodeYolov8(
  output: ArrayLike<number>,
  dims: readonly number[],
  transform: BoxTransform,
  opts: DecodeOptions,
): DetectedObject[] {
  const candidates = yolov8Candidates(output, dims, opts.classNames.length, opts.scoreThreshold);
  const kept = nmsPerClass(candidates, opts.iouThreshold);
  const objects: DetectedObject[] = [];
  for (const i of kept) {
    if (objects.length >= opts.maxDetections) break;
    const c = candidates[i]!;
    const box = unletterboxBox(c, transform);
    if (box.width <= 0 || box.height <= 0) continue;
    objects.push({
      class: opts.classNames[c.classId] ?? `class_${c.classId}`,
      classId: c.classId,
      score: round4(c.score),
      box,
    });
  }
  return objects;
}
