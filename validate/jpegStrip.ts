/**
 * Lossless metadata removal from a baseline or progressive JPEG: the image data is copied byte for
 * byte, every metadata segment is left out. Pure, no decoder involved.
 */
import { skipEntropyData } from './container.js';

/** APP1..APP13, APP15 and COM: EXIF, XMP, ICC, IPTC/Photoshop, MPF, vendor data, comments. */
function isMetadata(marker: number): boolean {
  return (marker >= 0xe0 && marker <= 0xed) || marker === 0xef || marker === 0xfe;
}

/**
 * Returns the JPEG in `bytes` without metadata, ending at its EOI marker (anything appended after
 * the image is dropped). APP0 (JFIF, which may carry a thumbnail) and APP1..APP13, APP15 and COM
 * segments are removed; APP14 (Adobe: how the decoder reads the colour channels), tables, frame
 * and scan headers and the entropy-coded data are kept as they are.
 * @returns the stripped JPEG, or null when the marker walk does not reach a well-formed EOI (the
 *   caller then re-encodes from decoded pixels instead).
 */
export function stripJpegMetadata(bytes: Buffer): Buffer | null {
  if (bytes.length < 4 || bytes[0] !== 0xff || bytes[1] !== 0xd8) return null;
  const parts: Buffer[] = [bytes.subarray(0, 2)];
  const n = bytes.length;
  let i = 2;
  while (i < n) {
    if (bytes[i] !== 0xff) return null;
    while (i < n && bytes[i] === 0xff) i++; // fill bytes
    if (i >= n) return null;
    const marker = bytes[i] as number;
    const start = i - 1;
    i++;
    if (marker === 0xd9) {
      parts.push(bytes.subarray(start, i));
      return Buffer.concat(parts);
    }
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      parts.push(bytes.subarray(start, i));
      continue;
    }
    if (i + 2 > n) return null;
    const length = bytes.readUInt16BE(i);
    if (length < 2 || i + length > n) return null;
    i += length;
    if (marker === 0xda) {
      const end = skipEntropyData(bytes, i);
      if (end === null) return null;
      i = end;
    }
    if (!isMetadata(marker)) parts.push(bytes.subarray(start, i));
  }
  return null;
}
