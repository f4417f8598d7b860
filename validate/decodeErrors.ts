/**
 * Maps a failure reported by the image decoder (sharp / libvips) to a refusal reason. Pure.
 */
import type { ContainerScan, SniffedFormat } from './container.js';
import type { InvalidReason } from './reasons.js';

/** Reasons a decoder failure can map to. */
export type DecodeFailureReason = Extract<
  InvalidReason,
  'truncated' | 'corrupt' | 'unsupported_format' | 'too_many_pixels' | 'empty'
>;

const TRUNCATION = /premature end of (jpeg )?(image|file)|truncated|unexpected end of (file|data|input)|not enough data/i;

/**
 * First line of a decoder error message. libvips accumulates one line per problem it met, sometimes
 * repeated; the first line is the one that made the operation fail.
 */
export function decoderMessage(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return (text.split('\n')[0] ?? '').trim();
}

/**
 * Classifies a decoder failure.
 * - sharp's own guards: pixel limit → `too_many_pixels`, empty input → `empty`;
 * - a message that says the data ended early → `truncated`;
 * - a PNG or WebP whose container walk did not reach its end marker → `truncated` (libpng only says "read error");
 *   JPEG relies on the message, because damaged entropy data can derail a structural walk;
 * - "unsupported image format" for bytes with no known signature → `unsupported_format`;
 * - anything else, including a known signature the decoder then rejects → `corrupt`.
 */
export function classifyDecodeFailure(message: string, format: SniffedFormat, scan: ContainerScan): DecodeFailureReason {
  if (/exceeds pixel limit/i.test(message)) return 'too_many_pixels';
  if (/input buffer is empty/i.test(message)) return 'empty';
  if (TRUNCATION.test(message)) return 'truncated';
  if (format !== 'jpeg' && format !== 'unknown' && !scan.complete) return 'truncated';
  if (/unsupported image format/i.test(message) && format === 'unknown') return 'unsupported_format';
  return 'corrupt';
}
