/**
 * Outcome of validating one frame: either the standardized image with a serialisable summary,
 * or a refusal with a machine-readable reason.
 */
import { z } from 'zod';
import { InvalidReasonSchema } from './reasons.js';

/** Luma statistics (0..255) of a downscaled greyscale copy of the frame. */
export const LumaStatsSchema = z.strictObject({
  /** Mean luma. */
  mean: z.number().min(0).max(255),
  /** Population standard deviation of luma. */
  stdDev: z.number().min(0),
});

/** Luma statistics of a frame. */
export type LumaStats = z.infer<typeof LumaStatsSchema>;

/** Serialisable description of an accepted frame and of its standardized output. */
export const ValidationSummarySchema = z.strictObject({
  /** Decoded source format (`jpeg`, `png` or `webp`). */
  format: z.string().min(1),
  /** Source width in pixels, after EXIF orientation. */
  width: z.int().positive(),
  /** Source height in pixels, after EXIF orientation. */
  height: z.int().positive(),
  /** Standardized output width in pixels. */
  outWidth: z.int().positive(),
  /** Standardized output height in pixels. */
  outHeight: z.int().positive(),
  /** Size of the standardized output in bytes. */
  outBytes: z.int().positive(),
  /** `reencoded` from decoded pixels, or the source JPEG's own data with its `metadata_stripped`. */
  encoding: z.enum(['reencoded', 'metadata_stripped']),
  /** Luma statistics of the frame. */
  stats: LumaStatsSchema,
  /** Non-fatal observations, each `code: explanation` (e.g. `trailing_bytes: …`, `alpha_flattened: …`). */
  warnings: z.array(z.string()),
});

/** Serialisable description of an accepted frame. */
export type ValidationSummary = z.infer<typeof ValidationSummarySchema>;

/** A refused frame. Fully serialisable. */
export const ValidationRejectionSchema = z.strictObject({
  ok: z.literal(false),
  /** Machine-readable reason. */
  reason: InvalidReasonSchema,
  /** Human-readable explanation, one line. */
  message: z.string().min(1).regex(/^[^\n]*$/, 'must be one line'),
  /** True when the frame suggests a broken or obstructed camera (see `isCameraFault`). */
  cameraFault: z.boolean(),
  /** Luma statistics, present when the refusal is based on them. */
  stats: LumaStatsSchema.optional(),
});

/** A refused frame. */
export type ValidationRejection = z.infer<typeof ValidationRejectionSchema>;

/** An accepted frame: the standardized JPEG bytes plus their summary. The image is not JSON-serialisable. */
export const ValidationAcceptedSchema = z.strictObject({
  ok: z.literal(true),
  /** Standardized image: sRGB 8-bit JPEG, auto-oriented, every metadata block stripped. */
  image: z.custom<Buffer>((v) => Buffer.isBuffer(v), { message: 'expected a Buffer' }),
  /** Serialisable summary. */
  summary: ValidationSummarySchema,
});

/** An accepted frame. */
export type ValidationAccepted = z.infer<typeof ValidationAcceptedSchema>;

/** Result of `validateFrame`, discriminated on `ok`. */
export const ValidationOutcomeSchema = z.discriminatedUnion('ok', [ValidationAcceptedSchema, ValidationRejectionSchema]);

/** Result of `validateFrame`. */
export type ValidationOutcome = z.infer<typeof ValidationOutcomeSchema>;

/** Serialisable form of a {@link ValidationOutcome} (the image bytes left out), e.g. for workflow payloads. */
export const ValidationReportSchema = z.discriminatedUnion('ok', [
  z.strictObject({ ok: z.literal(true), summary: ValidationSummarySchema }),
  ValidationRejectionSchema,
]);

/** Serialisable form of a {@link ValidationOutcome}. */
export type ValidationReport = z.infer<typeof ValidationReportSchema>;

/** Drops the image bytes from an outcome, keeping what can be serialised. */
export function toValidationReport(outcome: ValidationOutcome): ValidationReport {
  return outcome.ok ? { ok: true, summary: outcome.summary } : outcome;
}
