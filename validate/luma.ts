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

/** A luma-based refusal: its reason and a one-line explanation. */
export interface LumaVerdict {
  reason: Extract<InvalidReason, 'black' | 'blank' | 'low_contrast'>;
  message: string;
}

const fmt = (n: number): string => n.toFixed(1);

/**
 * Decides whether luma statistics show a broken or obstructed camera.
 * In order: `black` (mean under `blackMean` and std dev under `minStdDev`: dark and near-uniform),
 * `blank` (std dev under `blankStdDev`: uniform at any brightness), `low_contrast` (std dev under `minStdDev`).
 * A dark scene with real structure (e.g. a lit doorway at night) passes.
 * @returns the verdict, or undefined when the frame is usable.
 */
export function classifyLuma(stats: LumaStats, contrast: ValidateConfig['contrast']): LumaVerdict | undefined {
  const { mean, stdDev } = stats;
  if (mean < contrast.blackMean && stdDev < contrast.minStdDev) {
    return {
      reason: 'black',
      message: `frame is black (mean luma ${fmt(mean)} < ${contrast.blackMean}, std dev ${fmt(stdDev)}): camera covered, off or broken?`,
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
