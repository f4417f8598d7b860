/**
 * Luma statistics and the camera-fault classification built on them. Pure functions.
 *
 * Statistics are taken on a downscaled greyscale copy of the frame: downscaling averages away
 * per-pixel sensor noise, so a covered lens or a dead sensor reads as uniform even when noisy,
 * while real scene structure (edges, objects, gradients) survives.
 */
import type { ValidateConfig } from './config.js';
import type { InvalidReason } from './reasons.js';
import type { LumaStats } from './schema.js';

/**
 * Mean and population standard deviation of 8-bit greyscale samples.
 * @param gray one byte per pixel, 0..255; must not be empty.
 */
export function lumaStats(gray: Uint8Array): LumaStats {
  if (gray.length === 0) throw new RangeError('lumaStats: no pixels');
  let sum = 0;
  let squares = 0;
  for (const v of gray) {
    sum += v;
    squares += v * v;
  }
  const mean = sum / gray.length;
  const variance = Math.max(0, squares / gray.length - mean * mean);
  return { mean, stdDev: Math.sqrt(variance) };
}

/**
 * Share of a frame's height, at its top and at its bottom, where cameras draw their overlays
 * (date and time, camera name): many keep drawing them over a dead sensor or a covered lens.
 */
export const OVERLAY_BAND = 0.12;

/**
 * Most rows, as a share of the height, that an overlay may light in either band: about one line
 * of text. A lamp, a lit window or a porch along the edge lights more and is scene.
 */
export const OVERLAY_MAX_ROWS = 0.05;

/** What an overlay at the edges leaves of a frame: see {@link edgeStats}. */
export interface EdgeStats {
  /** Luma statistics of the rows between the top and bottom bands. */
  middle: LumaStats;
  /** Rows with a pixel brighter than the level, in the top or the bottom band (the larger), as a share of the height. */
  litRowShare: number;
}

/**
 * Statistics of a greyscale copy (one byte per pixel, row by row) without its top and bottom
 * {@link OVERLAY_BAND}s, and how many rows of those bands hold a pixel brighter than `level`.
 * A copy too short to have bands is all middle.
 */
export function edgeStats(gray: Uint8Array, width: number, height: number, level: number): EdgeStats {
  const band = Math.floor(height * OVERLAY_BAND);
  if (band === 0 || height - 2 * band <= 0) return { middle: lumaStats(gray), litRowShare: 0 };
  const litRows = (from: number, to: number): number => {
    let n = 0;
    for (let y = from; y < to; y++) {
      const row = gray.subarray(y * width, (y + 1) * width);
      if (row.some((v) => v > level)) n++;
    }
    return n;
  };
  return {
    middle: lumaStats(gray.subarray(band * width, (height - band) * width)),
    litRowShare: Math.max(litRows(0, band), litRows(height - band, height)) / height,
  };
}

/** A luma-based refusal: its reason and a one-line explanation. */
export interface LumaVerdict {
  reason: Extract<InvalidReason, 'black' | 'blank' | 'low_contrast'>;
  message: string;
}

const fmt = (n: number): string => n.toFixed(1);

/**
 * Decides whether luma statistics show a broken or obstructed camera.
 * In order: `black` (mean under `blackMean` and std dev under `minStdDev`: dark and near-uniform;
 * also when only an overlay at the top or bottom edge breaks that: the whole frame's mean under
 * `blackMean`, the rows between the overlay bands dark and near-uniform, and at most
 * {@link OVERLAY_MAX_ROWS} of the height lit in either band, i.e. a line of text),
 * `blank` (std dev under `blankStdDev`: uniform at any brightness), `low_contrast` (std dev under
 * `minStdDev`). A dark scene with real structure (e.g. a lit doorway at night, a lamp along the
 * edge) passes.
 * @param edges see {@link edgeStats} (with `blackMean` as its level); without it, an overlay is
 *   taken for scene structure.
 * @returns the verdict, or undefined when the frame is usable.
 */
export function classifyLuma(stats: LumaStats, contrast: ValidateConfig['contrast'], edges?: EdgeStats): LumaVerdict | undefined {
  const { mean, stdDev } = stats;
  const darkAndFlat = (s: LumaStats) => s.mean < contrast.blackMean && s.stdDev < contrast.minStdDev;
  if (darkAndFlat(stats)) {
    return {
      reason: 'black',
      message: `frame is black (mean luma ${fmt(mean)} < ${contrast.blackMean}, std dev ${fmt(stdDev)}): camera covered, off or broken?`,
    };
  }
  if (edges && mean < contrast.blackMean && darkAndFlat(edges.middle) && edges.litRowShare <= OVERLAY_MAX_ROWS) {
    return {
      reason: 'black',
      message: `frame is black but for a line at its top or bottom edge (mean luma ${fmt(mean)}; without those edges ${fmt(edges.middle.mean)}, std dev ${fmt(edges.middle.stdDev)}): an overlay such as the time over a covered, off or broken camera?`,
    };
  }
  if (stdDev < contrast.blankStdDev) {
    return {
      reason: 'blank',
      message: `frame is uniform (luma std dev ${fmt(stdDev)} < ${contrast.blankStdDev}, mean ${fmt(mean)}): camera broken or showing a blank image?`,
    };
  }
  if (stdDev < contrast.minStdDev) {
    return {
      reason: 'low_contrast',
      message: `frame has very low contrast (luma std dev ${fmt(stdDev)} < ${contrast.minStdDev}): fog, glare or a dirty lens?`,
    };
  }
  return undefined;
}
