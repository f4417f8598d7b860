/**
 * Image preprocessing for YOLO models: decode (auto-oriented), letterbox to a square input with
 * gray padding, and convert to a normalised CHW float tensor.
 */
import sharp, { type OutputInfo } from 'sharp';
import { VigilError } from '../lib/errors.js';

/** Gray level of the letterbox padding (Ultralytics' convention). */
export const PAD_VALUE = 114;

/**
 * How the original image sits inside the square model input:
 * `inputX = originalX * scale + padX` (same for y).
 */
export interface LetterboxTransform {
  /** Side of the square model input, in pixels. */
  readonly inputSize: number;
  /** Resize factor applied to the original image. */
  readonly scale: number;
  /** Left padding in model-input pixels. */
  readonly padX: number;
  /** Top padding in model-input pixels. */
  readonly padY: number;
  /** Original width after EXIF orientation. */
  readonly width: number;
  /** Original height after EXIF orientation. */
  readonly height: number;
  /** Size of the resized image inside the input (before padding). */
  readonly resizedWidth: number;
  /** Size of the resized image inside the input (before padding). */
  readonly resizedHeight: number;
}

/** Result of {@link letterbox}: the model input tensor data plus the mapping back to the original. */
export interface LetterboxResult extends LetterboxTransform {
  /** `[3, inputSize, inputSize]` RGB, planar (CHW), values in [0, 1]. */
  readonly data: Float32Array;
}

/**
 * Pure letterbox geometry: the scale that fits `width x height` inside `inputSize` keeping the
 * aspect ratio, and the centring padding.
 *
 * @throws VigilError E_BAD_INPUT on non-positive dimensions.
 */
export function letterboxGeometry(width: number, height: number, inputSize: number): LetterboxTransform {
  if (!(width > 0 && height > 0 && inputSize > 0)) {
    throw new VigilError('E_BAD_INPUT', `invalid image dimensions ${width}x${height}`, { width, height, inputSize });
  }
  const scale = Math.min(inputSize / width, inputSize / height);
  const resizedWidth = Math.min(inputSize, Math.max(1, Math.round(width * scale)));
  const resizedHeight = Math.min(inputSize, Math.max(1, Math.round(height * scale)));
  return {
    inputSize,
    scale,
    padX: Math.floor((inputSize - resizedWidth) / 2),
    padY: Math.floor((inputSize - resizedHeight) / 2),
    width,
    height,
    resizedWidth,
    resizedHeight,
  };
}

/** Maps a sharp/libvips failure to a VigilError with a one-line message. */
function decodeError(err: unknown): VigilError {
  const message = err instanceof Error ? err.message : String(err);
  const firstLine = message.split('\n')[0]?.trim() ?? message;
  if (/pixel limit/i.test(message)) {
    return new VigilError('E_TOO_LARGE', `image too large to decode: ${firstLine}`, { reason: firstLine });
  }
  return new VigilError('E_BAD_INPUT', `cannot decode image: ${firstLine}`, { reason: firstLine });
}

/** Interleaved 8-bit RGB (HWC) -> planar float (CHW) divided by 255. */
export function hwcToChwFloat(rgb: Uint8Array, width: number, height: number): Float32Array {
  const plane = width * height;
  const out = new Float32Array(3 * plane);
  for (let i = 0, p = 0; p < plane; p++, i += 3) {
    out[p] = rgb[i]! / 255;
    out[plane + p] = rgb[i + 1]! / 255;
    out[2 * plane + p] = rgb[i + 2]! / 255;
  }
  return out;
}

/**
 * Decodes image bytes (JPEG, PNG, WebP, ...), applies the EXIF orientation, letterboxes to
 * `inputSize x inputSize` (aspect kept, gray 114 padding, centred) and returns RGB CHW floats in
 * [0, 1] with the transform needed to map boxes back to original pixels.
 *
 * Truncated or corrupt input is refused (`failOn: 'error'`), never partially decoded.
 *
 * @throws VigilError E_BAD_INPUT for empty/undecodable/truncated input, E_TOO_LARGE beyond
 *   sharp's pixel limit.
 */
export async function letterbox(bytes: Uint8Array, inputSize: number): Promise<LetterboxResult> {
  if (!(bytes instanceof Uint8Array) || bytes.length === 0) {
    throw new VigilError('E_BAD_INPUT', 'image is empty');
  }
  const open = () => sharp(bytes, { failOn: 'error' });

  let width: number;
  let height: number;
  try {
    const meta = await open().metadata();
    width = meta.autoOrient.width;
    height = meta.autoOrient.height;
  } catch (err) {
    throw decodeError(err);
  }
  const geo = letterboxGeometry(width, height, inputSize);

  let raw: { data: Buffer; info: OutputInfo };
  try {
    raw = await open()
      .rotate()
      .removeAlpha()
      .toColourspace('srgb')
      .resize(geo.resizedWidth, geo.resizedHeight, { fit: 'fill' })
      .extend({
        top: geo.padY,
        bottom: inputSize - geo.resizedHeight - geo.padY,
        left: geo.padX,
        right: inputSize - geo.resizedWidth - geo.padX,
        background: { r: PAD_VALUE, g: PAD_VALUE, b: PAD_VALUE },
      })
      .raw()
      .toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw decodeError(err);
  }
  const { info, data } = raw;
  if (info.width !== inputSize || info.height !== inputSize || info.channels !== 3 || data.length !== inputSize * inputSize * 3) {
    throw new VigilError(
      'E_UNSUPPORTED',
      `unexpected decoded layout ${info.width}x${info.height}x${info.channels} (${data.length} bytes)`,
      { width: info.width, height: info.height, channels: info.channels },
    );
  }
  return { ...geo, data: hwcToChwFloat(data, inputSize, inputSize) };
}
