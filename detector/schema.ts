/**
 * Schemas (zod) and inferred types of the detector's output.
 */
import { z } from 'zod';

/** A box in original-image pixels: top-left corner plus size, rounded to 0.1 px. */
export const BoxSchema = z.object({
  x: z.number().nonnegative(),
  y: z.number().nonnegative(),
  width: z.number().nonnegative(),
  height: z.number().nonnegative(),
});

/** A box in original-image pixels. */
export type Box = z.infer<typeof BoxSchema>;

/** One detected object. */
export const DetectedObjectSchema = z.object({
  /** Class name, e.g. `person`. */
  class: z.string().min(1),
  /** Class index in the model's label list. */
  classId: z.number().int().nonnegative(),
  /** Class confidence in [0, 1], rounded to 4 decimals. */
  score: z.number().min(0).max(1),
  box: BoxSchema,
});

/** One detected object. */
export type DetectedObject = z.infer<typeof DetectedObjectSchema>;

/** Wall-clock timings of one detection, in milliseconds. */
export const DetectionTimingsSchema = z.object({
  preprocess: z.number().nonnegative(),
  inference: z.number().nonnegative(),
  postprocess: z.number().nonnegative(),
});

/** Wall-clock timings of one detection, in milliseconds. */
export type DetectionTimings = z.infer<typeof DetectionTimingsSchema>;

/** Result of `Detector.detect` for one image. */
export const DetectionResultSchema = z.object({
  /** The model that produced the result (the sha256 is the verified weights hash). */
  model: z.object({
    name: z.string().min(1),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
  }),
  /** Original image size after EXIF orientation. Boxes are in this coordinate space. */
  image: z.object({
    width: z.number().int().positive(),
    height: z.number().int().positive(),
  }),
  /** Detections sorted by descending score. */
  objects: z.array(DetectedObjectSchema),
  timingsMs: DetectionTimingsSchema,
});

/** Result of `Detector.detect` for one image. */
export type DetectionResult = z.infer<typeof DetectionResultSchema>;
