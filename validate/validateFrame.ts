/**
 * The validate-and-standardize operation: untrusted frame bytes in, either a standardized JPEG
 * or a machine-readable refusal out. No I/O besides the in-memory image codec.
 */
import sharp, { type Metadata, type OutputInfo, type Sharp } from 'sharp';
import { VigilError } from '../lib/errors.js';
import type { ValidateConfig } from './config.js';
import { scanContainer, sniffFormat, type ContainerScan, type SniffedFormat } from './container.js';
import { classifyDecodeFailure, decoderMessage } from './decodeErrors.js';
import { classifyLuma, edgeStats, lumaStats, type EdgeStats } from './luma.js';
import { stripJpegMetadata } from './jpegStrip.js';
import { isCameraFault, type InvalidReason } from './reasons.js';
import type { LumaStats, ValidationOutcome, ValidationRejection } from './schema.js';

/** Longest side of the greyscale copy luma statistics are computed on. */
const STATS_MAX_DIMENSION = 256;

/**
 * Luma statistics of a small greyscale copy of `image` (at most STATS_MAX_DIMENSION a side): of
 * the whole copy, and what an overlay at its edges would leave (see edgeStats; `level`: the luma
 * a lit pixel is over).
 */
async function grayStats(image: Sharp, level: number): Promise<{ stats: LumaStats; edges: EdgeStats }> {
  const gray = await image
    .greyscale()
    .resize({ width: STATS_MAX_DIMENSION, height: STATS_MAX_DIMENSION, fit: 'inside', withoutEnlargement: true })
    .raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true });
  if (gray.info.channels !== 1) {
    throw new VigilError('E_UNSUPPORTED', `validateFrame: expected 1 greyscale channel, got ${gray.info.channels}`);
  }
  return { stats: lumaStats(gray.data), edges: edgeStats(gray.data, gray.info.width, gray.info.height, level) };
}

/** Builds a refusal; the message is forced onto one line. */
function reject(reason: InvalidReason, message: string, stats?: LumaStats): ValidationRejection {
  const rejection: ValidationRejection = {
    ok: false,
    reason,
    message: message.replace(/\s+/g, ' ').trim(),
    cameraFault: isCameraFault(reason),
  };
  if (stats !== undefined) rejection.stats = roundStats(stats);
  return rejection;
}

function roundStats(stats: LumaStats): LumaStats {
  const r = (n: number) => Math.round(n * 100) / 100;
  return { mean: r(stats.mean), stdDev: r(stats.stdDev) };
}

/** Refusal for a decoder failure at the given step. */
function decodeFailure(err: unknown, step: 'header' | 'pixels', format: SniffedFormat, scan: ContainerScan) {
  const detail = decoderMessage(err);
  const reason = classifyDecodeFailure(detail, format, scan);
  const what: Record<typeof reason, string> = {
    truncated: `${format} frame is truncated`,
    corrupt: `${format} frame is corrupt`,
    unsupported_format: 'frame is not a recognised image',
    too_many_pixels: 'frame has too many pixels',
    empty: 'frame is empty',
  };
  return reject(reason, `${what[reason]} (${step === 'header' ? 'reading header' : 'decoding pixels'}: ${detail})`);
}

/** True when the sniffed format is one the configuration accepts. */
function isAllowed(format: SniffedFormat, allowed: ValidateConfig['formats']): boolean {
  return (allowed as readonly string[]).includes(format);
}

/**
 * Validates one camera frame and standardizes it. Never throws for bad image input: every bad input
 * maps to a refusal with a reason; only programmer errors (e.g. `bytes` not a Buffer) throw.
 *
 * Checks, in order: empty → byte size → format (magic number, then decoder header) → animation →
 * dimensions (after EXIF orientation) → pixel count → full decode (truncated / corrupt data) →
 * luma statistics (black / blank / low contrast) → standardize.
 *
 * The standardized image is auto-oriented from EXIF, flattened onto black if it had alpha, converted
 * to sRGB 8-bit 3-channel (CMYK, 16-bit, greyscale and ICC-tagged inputs included), shrunk to fit
 * inside `output.maxDimension` (never enlarged), and encoded as JPEG at `output.quality`. It carries
 * no metadata at all (no EXIF, GPS, ICC, XMP, IPTC). A JPEG that already has that form (see
 * `output.reencode`) keeps its image data byte for byte and only loses its metadata segments;
 * anything else is re-encoded from raw pixels.
 *
 * Bytes appended after the end of a complete JPEG/PNG/WebP (some cameras pad or append vendor data)
 * are ignored and reported as a `trailing_bytes` warning rather than refused.
 *
 * @param bytes the frame as received.
 * @param config validate-stage configuration (see `ValidateConfigSchema`).
 */
export async function validateFrame(bytes: Buffer, config: ValidateConfig): Promise<ValidationOutcome> {
  if (!Buffer.isBuffer(bytes)) {
    throw new VigilError('E_BAD_INPUT', 'validateFrame: bytes must be a Buffer', { got: typeof bytes });
  }
  if (bytes.length === 0) return reject('empty', 'frame is empty (0 bytes)');
  if (bytes.length > config.maxBytes) {
    return reject('too_large', `frame is ${bytes.length} bytes, over the limit of ${config.maxBytes} bytes`);
  }

  // Only hand the bytes to a decoder we allow: no SVG, PDF, TIFF… parser ever sees them.
  const sniffed = sniffFormat(bytes);
  const allowedList = config.formats.join(', ');
  if (!isAllowed(sniffed, config.formats)) {
    return reject(
      'unsupported_format',
      sniffed === 'unknown'
        ? `frame is not a recognised image (allowed: ${allowedList})`
        : `frame format ${sniffed} is not accepted (allowed: ${allowedList})`,
    );
  }
  const scan = scanContainer(bytes, sniffed);

  // Header only: the pixel limit refuses a decompression bomb before any pixel is decoded.
  let meta: Metadata;
  try {
    meta = await sharp(bytes, { limitInputPixels: config.maxPixels, failOn: 'truncated' }).metadata();
  } catch (err) {
    return decodeFailure(err, 'header', sniffed, scan);
  }
  if (meta.format !== sniffed) {
    return reject('corrupt', `frame looks like ${sniffed} but decodes as ${meta.format}`);
  }

  const warnings: string[] = [];
  const pages = meta.pages ?? 1;
  if (pages > 1) {
    if (!config.allowAnimated) return reject('animated', `frame is animated (${pages} frames); a still image is required`);
    warnings.push(`animated_first_frame: animated ${meta.format} with ${pages} frames; the first frame was used`);
  }

  const width = meta.autoOrient.width;
  const height = meta.autoOrient.height;
  if (width < config.minWidth || height < config.minHeight) {
    return reject('too_small', `frame is ${width}x${height}, under the minimum ${config.minWidth}x${config.minHeight}`);
  }
  if (width > config.maxWidth || height > config.maxHeight) {
    return reject('too_wide', `frame is ${width}x${height}, over the maximum ${config.maxWidth}x${config.maxHeight}`);
  }
  if (width * height > config.maxPixels) {
    return reject('too_many_pixels', `frame has ${width * height} pixels, over the limit of ${config.maxPixels}`);
  }

  const max = config.output.maxDimension;
  if (fitsAsIs(meta, scan, config, width, height)) {
    const stripped = stripJpegMetadata(bytes);
    if (stripped) return keepImageData(stripped, meta, scan, config, warnings);
  }

  // Full decode, straight into the standardized geometry and colour space.
  let pipeline = sharp(bytes, { limitInputPixels: config.maxPixels, failOn: config.failOn }).autoOrient();
  if (meta.hasAlpha) {
    pipeline = pipeline.flatten({ background: '#000000' });
    warnings.push('alpha_flattened: transparent pixels were composited onto black');
  }
  pipeline = pipeline
    .toColourspace('srgb')
    .resize({ width: max, height: max, fit: 'inside', withoutEnlargement: true })
    .raw({ depth: 'uchar' });
  let pixels: { data: Buffer; info: OutputInfo };
  try {
    pixels = await pipeline.toBuffer({ resolveWithObject: true });
  } catch (err) {
    return decodeFailure(err, 'pixels', sniffed, scan);
  }
  const { info } = pixels;
  if (info.channels !== 3) {
    throw new VigilError('E_UNSUPPORTED', `validateFrame: expected 3 decoded channels, got ${info.channels}`, {
      format: meta.format,
      space: meta.space,
    });
  }
  const raw = { raw: { width: info.width, height: info.height, channels: info.channels } } as const;

  // Camera-fault checks on a small greyscale copy of what will be output.
  const { stats, edges } = await grayStats(sharp(pixels.data, raw), config.contrast.blackMean);
  const verdict = classifyLuma(stats, config.contrast, edges);
  if (verdict !== undefined) return reject(verdict.reason, verdict.message, stats);

  if (scan.trailingBytes > 0) {
    warnings.push(`trailing_bytes: ${scan.trailingBytes} bytes after the end of the ${meta.format} image were ignored`);
  }
  if (!scan.complete) {
    warnings.push(`no_end_marker: the ${meta.format} file lacks its end marker, but all pixel data decoded`);
  }

  // Re-encoded from raw pixels: no metadata of the source can survive.
  const image = await sharp(pixels.data, raw).jpeg({ quality: config.output.quality }).toBuffer();
  return {
    ok: true,
    image,
    summary: {
      format: meta.format,
      width,
      height,
      outWidth: info.width,
      outHeight: info.height,
      outBytes: image.length,
      encoding: 'reencoded',
      stats: roundStats(stats),
      warnings,
    },
  };
}

/**
 * True when a JPEG already is what standardizing would produce (sRGB, 8-bit, 3 channels, no ICC
 * profile to apply, no EXIF rotation, within the output size, one image, structurally complete),
 * so its image data can be kept and only its metadata removed.
 */
function fitsAsIs(meta: Metadata, scan: ContainerScan, config: ValidateConfig, width: number, height: number): boolean {
  return (
    config.output.reencode === 'when_needed' &&
    meta.format === 'jpeg' &&
    scan.complete &&
    (meta.orientation ?? 1) === 1 &&
    !meta.hasAlpha &&
    meta.channels === 3 &&
    meta.space === 'srgb' &&
    meta.depth === 'uchar' &&
    meta.icc === undefined &&
    (meta.pages ?? 1) === 1 &&
    width <= config.output.maxDimension &&
    height <= config.output.maxDimension
  );
}

/**
 * The lossless path: `stripped` (the source JPEG without metadata) is decoded once, straight to a
 * small greyscale copy (libjpeg's DCT scaling makes that cheap, and it still reads every scan, so a
 * corrupt or truncated stream fails as in the full decode), for the camera-fault checks.
 */
async function keepImageData(stripped: Buffer, meta: Metadata, scan: ContainerScan, config: ValidateConfig, warnings: string[]): Promise<ValidationOutcome> {
  let stats: LumaStats;
  let edges: EdgeStats;
  try {
    ({ stats, edges } = await grayStats(sharp(stripped, { limitInputPixels: config.maxPixels, failOn: config.failOn }), config.contrast.blackMean));
  } catch (err) {
    if (err instanceof VigilError) throw err;
    return decodeFailure(err, 'pixels', 'jpeg', scan);
  }
  const verdict = classifyLuma(stats, config.contrast, edges);
  if (verdict !== undefined) return reject(verdict.reason, verdict.message, stats);
  if (scan.trailingBytes > 0) {
    warnings.push(`trailing_bytes: ${scan.trailingBytes} bytes after the end of the ${meta.format} image were ignored`);
  }
  const width = meta.width;
  const height = meta.height;
  return {
    ok: true,
    image: stripped,
    summary: { format: 'jpeg', width, height, outWidth: width, outHeight: height, outBytes: stripped.length, encoding: 'metadata_stripped', stats: roundStats(stats), warnings },
  };
}
