/**
 * Configuration of the validate-and-standardize stage: which frames are accepted and what the
 * standardized output looks like. Every field has a default, so `{}` is a valid configuration.
 */
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { VigilError } from '../lib/errors.js';

/** Decoded formats a frame may arrive in. Anything else (gif, tiff, heif, avif, svg, …) is refused. */
export const AllowedFormatSchema = z.enum(['jpeg', 'png', 'webp']);

/** One decoded format a frame may arrive in. */
export type AllowedFormat = z.infer<typeof AllowedFormatSchema>;

const MiB = 1024 * 1024;
const positiveInt = () => z.int().positive();

/** Shape of the standardized output image. */
export const OutputConfigSchema = z.strictObject({
  /** Longest side of the output in pixels (default 1280). Larger frames are shrunk to fit inside; smaller ones are never enlarged. */
  maxDimension: positiveInt().max(16384).default(1280),
  /** Output encoding; only `jpeg` (default). */
  format: z.literal('jpeg').default('jpeg'),
  /** JPEG quality 1..100 (default 90). */
  quality: z.int().min(1).max(100).default(90),
  /**
   * `when_needed` (default): a JPEG that already fits (sRGB, 8-bit, 3 channels, no ICC profile, no
   * EXIF rotation, within `maxDimension`) keeps its image data; only its metadata segments are
   * removed, losslessly (no generation loss for evidence, and no encode cost). Everything else, and
   * every frame with `always`, is decoded and re-encoded at `quality`.
   */
  reencode: z.enum(['when_needed', 'always']).default('when_needed'),
});

/** Thresholds on the luma (0..255) of a downscaled greyscale copy, used to spot broken cameras. */
export const ContrastConfigSchema = z.strictObject({
  /** Luma standard deviation under which a frame is `low_contrast` (default 6). */
  minStdDev: z.number().min(0).max(255).default(6),
  /** Luma standard deviation under which a frame is uniform, i.e. `blank` (default 2). Must not exceed `minStdDev`. */
  blankStdDev: z.number().min(0).max(255).default(2),
  /** Mean luma under which a near-uniform frame (std dev under `minStdDev`) is `black` (default 12). */
  blackMean: z.number().min(0).max(255).default(12),
});

/**
 * Validate-stage configuration. Defaults:
 * - `formats`: `['jpeg', 'png', 'webp']`
 * - `maxBytes`: 15 MiB (15 728 640)
 * - `minWidth` / `minHeight`: 64 px (after EXIF orientation)
 * - `maxWidth` / `maxHeight`: 8192 px (after EXIF orientation)
 * - `maxPixels`: 40 000 000; passed to sharp's `limitInputPixels`, so a decompression bomb is refused from its header
 * - `output`: `{ maxDimension: 1280, format: 'jpeg', quality: 90 }`
 * - `contrast`: `{ minStdDev: 6, blankStdDev: 2, blackMean: 12 }`
 * - `allowAnimated`: false (when true, the first frame of an animation is used and a warning is recorded)
 * - `failOn`: `'warning'`; how strict pixel decoding is (sharp's `failOn`). `'warning'` also refuses JPEGs whose
 *   entropy-coded data is damaged mid-stream (they decode to smeared grey garbage otherwise); `'error'` and
 *   `'truncated'` are more lenient. Truncated files are refused at every level.
 *
 * Unknown keys are refused, so a typo in a config file is reported instead of silently ignored.
 */
export const ValidateConfigSchema = z
  .strictObject({
    /** Allowed decoded formats (default jpeg, png, webp). */
    formats: z.array(AllowedFormatSchema).min(1).default(['jpeg', 'png', 'webp']),
    /** Largest accepted input, in bytes (default 15 MiB). */
    maxBytes: positiveInt().default(15 * MiB),
    /** Smallest accepted width in pixels (default 64). */
    minWidth: positiveInt().default(64),
    /** Smallest accepted height in pixels (default 64). */
    minHeight: positiveInt().default(64),
    /** Largest accepted width in pixels (default 8192). */
    maxWidth: positiveInt().default(8192),
    /** Largest accepted height in pixels (default 8192). */
    maxHeight: positiveInt().default(8192),
    /** Largest accepted width × height (default 40 megapixels). */
    maxPixels: positiveInt().default(40_000_000),
    /** Standardized output. */
    output: OutputConfigSchema.prefault({}),
    /** Camera-fault thresholds. */
    contrast: ContrastConfigSchema.prefault({}),
    /** Accept animated images by keeping their first frame (default false: refused as `animated`). */
    allowAnimated: z.boolean().default(false),
    /** Decoder strictness (default `'warning'`, the strictest). */
    failOn: z.enum(['truncated', 'error', 'warning']).default('warning'),
  })
  .superRefine((c, ctx) => {
    if (c.minWidth > c.maxWidth) {
      ctx.addIssue({ code: 'custom', path: ['minWidth'], message: `must not exceed maxWidth (${c.maxWidth})` });
    }
    if (c.minHeight > c.maxHeight) {
      ctx.addIssue({ code: 'custom', path: ['minHeight'], message: `must not exceed maxHeight (${c.maxHeight})` });
    }
    if (c.minWidth * c.minHeight > c.maxPixels) {
      ctx.addIssue({ code: 'custom', path: ['maxPixels'], message: 'must be at least minWidth × minHeight' });
    }
    if (c.contrast.blankStdDev > c.contrast.minStdDev) {
      ctx.addIssue({
        code: 'custom',
        path: ['contrast', 'blankStdDev'],
        message: `must not exceed contrast.minStdDev (${c.contrast.minStdDev})`,
      });
    }
  });

/** Validate-stage configuration, all defaults applied. */
export type ValidateConfig = z.infer<typeof ValidateConfigSchema>;

/** Validate-stage configuration as written in a file: every field optional. */
export type ValidateConfigInput = z.input<typeof ValidateConfigSchema>;

/** The configuration used when none is given. */
export const defaultValidateConfig: ValidateConfig = deepFreeze(ValidateConfigSchema.parse({}));

/** Freezes an object and everything it holds, so shared defaults cannot be mutated by a caller. */
function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** Formats a zod issue path as `a.b[0]`, or `(root)` for the whole document. */
function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out === '' ? '(root)' : out;
}

/**
 * Parses an already-loaded configuration object, applying defaults.
 * @param input the raw value (e.g. parsed JSON).
 * @param source where it came from, named in errors (default `'validate config'`).
 * @throws VigilError `E_CONFIG` naming the source, each offending field path and the reason.
 */
export function parseValidateConfig(input: unknown, source = 'validate config'): ValidateConfig {
  const result = ValidateConfigSchema.safeParse(input);
  if (result.success) return result.data;
  const issues = result.error.issues.map((i) => ({ path: formatPath(i.path), message: i.message }));
  const summary = issues.map((i) => `${i.path}: ${i.message}`).join('; ');
  throw new VigilError('E_CONFIG', `invalid ${source}: ${summary}`, { source, issues });
}

/**
 * Loads the validate-stage configuration from a JSON file, or returns the defaults when no path is given.
 * @param path JSON file holding a (partial) {@link ValidateConfigInput}.
 * @throws VigilError `E_CONFIG` when the file cannot be read, is not JSON, or holds an invalid field
 *   (the message names the file, the field path and the reason).
 */
export async function loadValidateConfig(path?: string): Promise<ValidateConfig> {
  if (path === undefined) return defaultValidateConfig;
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new VigilError('E_CONFIG', `cannot read validate config ${path}: ${reason}`, { file: path });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new VigilError('E_CONFIG', `validate config ${path} is not valid JSON: ${reason}`, { file: path });
  }
  try {
    return parseValidateConfig(json, `validate config ${path}`);
  } catch (err) {
    if (err instanceof VigilError) throw new VigilError('E_CONFIG', err.message, { ...err.detail, file: path });
    throw err;
  }
}
