/**
 * Machine-readable reasons why a frame is refused by the validate-and-standardize stage.
 */
import { z } from 'zod';

/**
 * Every reason a frame can be refused for.
 *
 * - `empty`: zero bytes.
 * - `truncated`: the file ends before the image data does (interrupted upload or write).
 * - `corrupt`: the container or the compressed pixel data is damaged.
 * - `unsupported_format`: not an image, or a format outside `config.formats` (gif, tiff, heif, avif, svg…).
 * - `too_small`: width or height under `config.minWidth` / `config.minHeight`.
 * - `too_large`: more bytes than `config.maxBytes`.
 * - `too_many_pixels`: width × height over `config.maxPixels` (decompression-bomb guard, refused from the header).
 * - `too_wide`: width or height over `config.maxWidth` / `config.maxHeight`.
 * - `animated`: more than one frame while `config.allowAnimated` is false.
 * - `low_contrast`: luma standard deviation under `config.contrast.minStdDev` (fog, glare, dirty lens).
 * - `blank`: luma standard deviation under `config.contrast.blankStdDev` (uniform frame).
 * - `black`: dark, near-uniform frame (mean luma under `config.contrast.blackMean`), also when only an
 *   overlay line at its top or bottom edge (the time, the camera name) breaks the uniformity.
 * - `bad_tags`: the frame's tags (user, device, capture time, zone, path) disagree (set by the stage, not by validateFrame).
 */
export const InvalidReasonSchema = z.enum([
  'empty',
  'truncated',
  'corrupt',
  'unsupported_format',
  'too_small',
  'too_large',
  'too_many_pixels',
  'too_wide',
  'animated',
  'low_contrast',
  'blank',
  'black',
  'bad_tags',
]);

/** A machine-readable reason a frame was refused. */
export type InvalidReason = z.infer<typeof InvalidReasonSchema>;

/**
 * True when the reason points at a broken or obstructed camera rather than a bad upload:
 * a blank or black frame means the user must be told, not merely that the frame is skipped.
 */
export function isCameraFault(reason: InvalidReason): boolean {
  return reason === 'blank' || reason === 'black';
}
