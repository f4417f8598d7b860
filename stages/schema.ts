import { z } from 'zod';
import { FrameRefSchema, ObjectRefSchema, Sha256Schema } from '../lib/schemas.js';

/** Fields every per-frame stage document carries, copied from the frame. */
export const FrameFields = {
  frameId: Sha256Schema,
  tag: z.string(),
  user: z.string(),
  device: z.string(),
  site: z.string(),
  capturedAt: z.string(),
  timestamp: z.string(),
  tz: z.string(),
  /** Where the input came from: repo, path and the input's hash. */
  source: z.object({ repo: z.string(), commit: z.string(), path: z.string(), sha256: Sha256Schema }),
  /** Datum key: hash of (stage, stage version, input hash, config/model). Same datum = skip. */
  datum: Sha256Schema,
};

/** `standardized/<user>-<device>/<timestamp>.json`: a frame that passed validation. */
export const StandardizedDocSchema = z.object({
  kind: z.literal('standardized'),
  ...FrameFields,
  object: ObjectRefSchema,
  format: z.string(),
  width: z.number().int(),
  height: z.number().int(),
  outWidth: z.number().int(),
  outHeight: z.number().int(),
  /** How the standardized image was made (absent in documents from before it was recorded: reencoded). */
  encoding: z.enum(['reencoded', 'metadata_stripped']).optional(),
  stats: z.object({ mean: z.number(), stdDev: z.number() }),
  warnings: z.array(z.string()),
});
export type StandardizedDoc = z.infer<typeof StandardizedDocSchema>;

/** `invalid/<user>-<device>/<timestamp>.json`: a frame that failed validation, with its reason. */
export const InvalidDocSchema = z.object({
  kind: z.literal('invalid'),
  ...FrameFields,
  reason: z.string(),
  message: z.string(),
  cameraFault: z.boolean(),
  stats: z.object({ mean: z.number(), stdDev: z.number() }).optional(),
});
export type InvalidDoc = z.infer<typeof InvalidDocSchema>;

/** `detections/<user>-<device>/<timestamp>.json`: what the detector saw, boxes in original image pixels. */
export const DetectionDocSchema = z.object({
  kind: z.literal('detection'),
  ...FrameFields,
  model: z.object({ name: z.string(), sha256: Sha256Schema }),
  image: z.object({ width: z.number().int(), height: z.number().int() }),
  objects: z.array(
    z.object({
      class: z.string(),
      classId: z.number().int(),
      score: z.number(),
      box: z.object({ x: z.number(), y: z.number(), width: z.number(), height: z.number() }),
    }),
  ),
});
export type DetectionDoc = z.infer<typeof DetectionDocSchema>;

/** Input of the validate stage (an activity payload: refs and hashes only). */
export const ValidateInputSchema = z.object({ batchId: z.string(), framesCommit: z.string(), frames: z.array(FrameRefSchema) });
export type ValidateInput = z.infer<typeof ValidateInputSchema>;

/** A standardized frame handed to detection. */
export const StandardizedRefSchema = z.object({ path: z.string(), frameId: Sha256Schema, sha256: Sha256Schema });
export type StandardizedRef = z.infer<typeof StandardizedRefSchema>;

/** Output of the validate stage. */
export const ValidateOutputSchema = z.object({
  standardizedCommit: z.string().nullable(),
  invalidCommit: z.string().nullable(),
  accepted: z.array(StandardizedRefSchema),
  rejected: z.array(z.object({ path: z.string(), frameId: Sha256Schema, reason: z.string(), cameraFault: z.boolean() })),
  skipped: z.number().int(),
});
export type ValidateOutput = z.infer<typeof ValidateOutputSchema>;

/** Input of the detect stage. */
export const DetectInputSchema = z.object({ batchId: z.string(), standardizedCommit: z.string(), frames: z.array(StandardizedRefSchema) });
export type DetectInput = z.infer<typeof DetectInputSchema>;

/** Output of the detect stage. */
export const DetectOutputSchema = z.object({
  detectionsCommit: z.string().nullable(),
  detected: z.number().int(),
  skipped: z.number().int(),
  objects: z.number().int(),
});
export type DetectOutput = z.infer<typeof DetectOutputSchema>;
