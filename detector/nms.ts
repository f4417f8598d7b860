/**
 * Non-maximum suppression (pure).
 */

/** Axis-aligned box as corners: `x1 <= x2`, `y1 <= y2`. */
export interface CornerBox {
  readonly x1: number;
  readonly y1: number;
  readonly x2: number;
  readonly y2: number;
}

/** A scored, classed box (a detection candidate). */
export interface ScoredBox extends CornerBox {
  readonly score: number;
  readonly classId: number;
}

/** Intersection over union of two corner boxes, in [0, 1]; 0 when either box is empty. */
export function iou(a: CornerBox, b: CornerBox): number {
  const iw = Math.min(a.x2, b.x2) - Math.max(a.x1, b.x1);
  const ih = Math.min(a.y2, b.y2) - Math.max(a.y1, b.y1);
  if (iw <= 0 || ih <= 0) return 0;
  const inter = iw * ih;
  const areaA = Math.max(0, a.x2 - a.x1) * Math.max(0, a.y2 - a.y1);
  const areaB = Math.max(0, b.x2 - b.x1) * Math.max(0, b.y2 - b.y1);
  const union = areaA + areaB - inter;
  return union > 0 ? inter / union : 0;
}

/** Indices of `boxes` ordered by descending score (stable on ties). */
function byScoreDesc(boxes: readonly ScoredBox[], indices: readonly number[]): number[] {
  return [...indices].sort((i, j) => boxes[j]!.score - boxes[i]!.score || i - j);
}

/**
 * Greedy NMS ignoring classes: keeps the highest-scored box, drops every other box whose IoU with
 * a kept box is strictly greater than `iouThreshold`, repeats.
 *
 * @returns indices into `boxes` of the kept boxes, by descending score.
 */
export function nms(boxes: readonly ScoredBox[], iouThreshold: number, indices?: readonly number[]): number[] {
  const order = byScoreDesc(boxes, indices ?? boxes.map((_, i) => i));
  const kept: number[] = [];
  for (const i of order) {
    const box = boxes[i]!;
    if (kept.every((k) => iou(boxes[k]!, box) <= iouThreshold)) kept.push(i);
  }
  return kept;
}

/**
 * Per-class NMS: boxes of different classes never suppress each other.
 *
 * @returns indices into `boxes` of the kept boxes, by descending score (stable on ties).
 */
export function nmsPerClass(boxes: readonly ScoredBox[], iouThreshold: number): number[] {
  const groups = new Map<number, number[]>();
  boxes.forEach((b, i) => {
    const group = groups.get(b.classId);
    if (group) group.push(i);
    else groups.set(b.classId, [i]);
  });
  const kept: number[] = [];
  for (const group of groups.values()) kept.push(...nms(boxes, iouThreshold, group));
  return byScoreDesc(boxes, kept);
}
