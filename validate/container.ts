/**
 * Pure byte-level inspection of image containers, done before any decoder runs:
 * magic-number sniffing (so only the allowed decoders ever see untrusted bytes) and a structural
 * walk that finds where the image ends (truncation, trailing bytes).
 */

/** Formats recognised from their magic numbers; `unknown` when none matches. */
export type SniffedFormat =
  | 'jpeg'
  | 'png'
  | 'webp'
  | 'gif'
  | 'tiff'
  | 'bmp'
  | 'heif'
  | 'avif'
  | 'jxl'
  | 'jp2'
  | 'pdf'
  | 'svg'
  | 'unknown';

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function ascii(bytes: Buffer, start: number, end: number): string {
  return bytes.subarray(start, end).toString('latin1');
}

function startsWith(bytes: Buffer, prefix: readonly number[]): boolean {
  if (bytes.length < prefix.length) return false;
  return prefix.every((b, i) => bytes[i] === b);
}

/**
 * Identifies an image format from its first bytes, without decoding anything.
 * @returns the format, or `'unknown'` when the bytes match no known signature.
 */
export function sniffFormat(bytes: Buffer): SniffedFormat {
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return 'jpeg';
  if (bytes.subarray(0, 8).equals(PNG_SIGNATURE)) return 'png';
  if (ascii(bytes, 0, 4) === 'RIFF' && ascii(bytes, 8, 12) === 'WEBP') return 'webp';
  const head6 = ascii(bytes, 0, 6);
  if (head6 === 'GIF87a' || head6 === 'GIF89a') return 'gif';
  if (startsWith(bytes, [0x49, 0x49, 0x2a, 0x00]) || startsWith(bytes, [0x4d, 0x4d, 0x00, 0x2a])) return 'tiff';
  if (ascii(bytes, 0, 2) === 'BM' && bytes.length >= 26) return 'bmp';
  if (ascii(bytes, 4, 8) === 'ftyp') {
    const brand = ascii(bytes, 8, 12);
    if (brand === 'avif' || brand === 'avis') return 'avif';
    if (['heic', 'heix', 'hevc', 'hevx', 'heim', 'heis', 'mif1', 'msf1'].includes(brand)) return 'heif';
    if (brand === 'jp2 ') return 'jp2';
  }
  if (startsWith(bytes, [0xff, 0x0a]) || ascii(bytes, 4, 8) === 'JXL ') return 'jxl';
  if (ascii(bytes, 4, 8) === 'jP  ') return 'jp2';
  if (ascii(bytes, 0, 5) === '%PDF-') return 'pdf';
  const text = ascii(bytes, 0, 256).replace(/^\uFEFF|^\xEF\xBB\xBF/, '').trimStart();
  if (/^<(\?xml|svg|!DOCTYPE svg)/i.test(text) && /<svg/i.test(ascii(bytes, 0, 4096))) return 'svg';
  return 'unknown';
}

/** Where the image data of a container ends, as found by walking its structure. */
export interface ContainerScan {
  /** True when the walk reached the format's end marker (JPEG EOI, PNG IEND, the RIFF length of WebP). */
  complete: boolean;
  /** Bytes after the end marker; 0 when incomplete or none. */
  trailingBytes: number;
}

const INCOMPLETE: ContainerScan = Object.freeze({ complete: false, trailingBytes: 0 });

function ended(bytes: Buffer, end: number): ContainerScan {
  return { complete: true, trailingBytes: Math.max(0, bytes.length - end) };
}

/**
 * From `i` inside a JPEG's entropy-coded data (after an SOS header), the offset of the next marker
 * that ends it: stuffed `FF 00` bytes and restart markers belong to the data, `FF` fill bytes are
 * skipped. Null when the bytes end first.
 */
export function skipEntropyData(bytes: Buffer, i: number): number | null {
  const n = bytes.length;
  while (i < n) {
    if (bytes[i] !== 0xff) {
      i++;
      continue;
    }
    const next = bytes[i + 1];
    if (next === undefined) return null;
    if (next === 0x00 || (next >= 0xd0 && next <= 0xd7)) i += 2;
    else if (next === 0xff) i++;
    else return i;
  }
  return null;
}

/** Walks JPEG markers (skipping segment payloads and entropy-coded data) to the EOI marker. */
function scanJpeg(bytes: Buffer): ContainerScan {
  let i = 2; // after SOI
  const n = bytes.length;
  while (i < n) {
    if (bytes[i] !== 0xff) return INCOMPLETE; // not at a marker: damaged, treat as not reaching EOI
    while (i < n && bytes[i] === 0xff) i++; // fill bytes
    if (i >= n) return INCOMPLETE;
    const marker = bytes[i] as number;
    i++;
    if (marker === 0xd9) return ended(bytes, i); // EOI
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) continue; // standalone markers
    if (i + 2 > n) return INCOMPLETE;
    const length = bytes.readUInt16BE(i);
    if (length < 2) return INCOMPLETE;
    i += length;
    if (i > n) return INCOMPLETE;
    if (marker === 0xda) {
      // SOS: entropy-coded data runs until a marker other than stuffing (FF00) or a restart (FFD0-FFD7).
      const end = skipEntropyData(bytes, i);
      if (end === null) return INCOMPLETE;
      i = end;
    }
  }
  return INCOMPLETE;
}

/** Walks PNG chunks to the end of IEND. */
function scanPng(bytes: Buffer): ContainerScan {
  let i = 8;
  while (i + 8 <= bytes.length) {
    const length = bytes.readUInt32BE(i);
    const type = ascii(bytes, i + 4, i + 8);
    const end = i + 12 + length;
    if (end > bytes.length) return INCOMPLETE;
    if (type === 'IEND') return ended(bytes, end);
    i = end;
  }
  return INCOMPLETE;
}

/** Uses the RIFF header length of a WebP file. */
function scanWebp(bytes: Buffer): ContainerScan {
  if (bytes.length < 12) return INCOMPLETE;
  const size = bytes.readUInt32LE(4);
  const end = 8 + size + (size % 2); // RIFF chunks are padded to an even length
  if (8 + size > bytes.length) return INCOMPLETE;
  return ended(bytes, Math.min(end, bytes.length));
}

/**
 * Walks the container structure of a JPEG, PNG or WebP file to where its image data ends.
 * Used to tell a truncated file from a corrupt one, and to notice bytes appended after the image.
 * Other formats are reported as complete with no trailing bytes (they are refused before decoding anyway).
 */
export function scanContainer(bytes: Buffer, format: SniffedFormat): ContainerScan {
  switch (format) {
    case 'jpeg':
      return scanJpeg(bytes);
    case 'png':
      return scanPng(bytes);
    case 'webp':
      return scanWebp(bytes);
    default:
      return { complete: true, trailingBytes: 0 };
  }
}
