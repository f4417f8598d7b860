/**
 * A generated bad-input corpus for Vigil, each case with its expected outcome. Deterministic: every
 * "random" byte comes from a seeded PRNG, so a failing case is reproducible by its id.
 *
 * Categories:
 * - `image`: frame bodies POSTed to `/v1/frames` (zero bytes, truncations, wrong magic, bombs, odd colour
 *   spaces, camera faults…). Each expects a 4xx from the API, or acceptance followed by a specific
 *   validate outcome (`standardized`, or `invalid` with a reason).
 * - `request`: malformed or hostile HTTP requests (keys, timestamps, zones, framing, methods, slow clients).
 * - `rules`: rule folders with one bad file; `checkRules` must answer ok:false naming that file.
 * - `ids`: `DeviceRegistry.add` with ids that must never reach a path (E_BAD_ID) or bad zones (E_BAD_INPUT).
 *
 * Also a child-process entry point (`--check-rules dir…`) so rule checks that might crash or hang the
 * process are run out of the test process, under a deadline.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';
import sharp, { type Sharp } from 'sharp';
import { checkRules } from '../../rules/index.js';
import type { InvalidReason } from '../../validate/index.js';
import { seededRandom } from '../../lib/seededRandom.js';
import { crc32 } from '../../lib/crc32.js';

// ---------------------------------------------------------------------------------------------------
// Deterministic randomness
// ---------------------------------------------------------------------------------------------------

/** mulberry32: a small seeded PRNG returning floats in [0, 1). */
export const prng = seededRandom;

/** `n` seeded pseudo-random bytes. */
export function seededBytes(seed: number, n: number): Buffer {
  const rand = prng(seed);
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor(rand() * 256);
  return out;
}

/** Integer in [lo, hi] from a PRNG. */
function between(rand: () => number, lo: number, hi: number): number {
  return lo + Math.floor(rand() * (hi - lo + 1));
}

// ---------------------------------------------------------------------------------------------------
// Image cases
// ---------------------------------------------------------------------------------------------------

/** API limit the test server is started with, and the (smaller) validate-stage limit. */
export const SERVER_MAX_BYTES = 3 * 1024 * 1024;
export const STAGE_MAX_BYTES = 2 * 1024 * 1024;

/** What should become of an uploaded frame. */
export type ImageExpect =
  | { kind: 'reject'; status: 400 | 413 | 415; code: 'E_BAD_INPUT' | 'E_TOO_LARGE' | 'E_UNSUPPORTED' }
  | { kind: 'standardized'; warning?: string; size?: readonly [number, number] }
  | { kind: 'invalid'; reason: InvalidReason };

export interface ImageCase {
  readonly id: string;
  /** Sub-family, for the summary (truncated, magic, bomb, colour, luma…). */
  readonly group: string;
  readonly bytes: Buffer;
  /** The label sent; the ingest API only checks it names an accepted image type. */
  readonly contentType: string;
  readonly expect: ImageExpect;
}

const reject415 = { kind: 'reject', status: 415, code: 'E_UNSUPPORTED' } as const;
const invalid = (reason: InvalidReason) => ({ kind: 'invalid', reason }) as const;
const standardized = (warning?: string, size?: readonly [number, number]): ImageExpect => ({
  kind: 'standardized',
  ...(warning !== undefined ? { warning } : {}),
  ...(size !== undefined ? { size } : {}),
});

function pngChunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** A hand-made 8-bit greyscale PNG whose IHDR declares `width`×`height` but whose IDAT holds two rows. */
export function pngHeaderOnly(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width >>> 0, 0);
  ihdr.writeUInt32BE(height >>> 0, 4);
  ihdr[8] = 8;
  ihdr[9] = 0;
  const rows = zlib.deflateSync(Buffer.alloc((Math.min(width, 100_000) + 1) * 2));
  return Buffer.concat([PNG_SIGNATURE, pngChunk('IHDR', ihdr), pngChunk('IDAT', rows), pngChunk('IEND', Buffer.alloc(0))]);
}

/** Rewrites the dimensions in a JPEG's SOFn segment (the rest of the file still describes the original). */
export function jpegWithDimensions(jpeg: Buffer, width: number, height: number): Buffer {
  const b = Buffer.from(jpeg);
  let i = 2;
  while (i + 4 < b.length) {
    if (b[i] !== 0xff) throw new Error('jpegWithDimensions: lost marker sync');
    const marker = b[i + 1] as number;
    const len = b.readUInt16BE(i + 2);
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      b.writeUInt16BE(height, i + 5);
      b.writeUInt16BE(width, i + 7);
      return b;
    }
    i += 2 + len;
  }
  throw new Error('jpegWithDimensions: no SOF marker');
}

/** Rewrites the frame size of a lossy (`VP8 `) WebP. */
function webpLossyWithDimensions(webp: Buffer, width: number, height: number): Buffer {
  if (webp.toString('latin1', 12, 16) !== 'VP8 ') throw new Error('webpLossyWithDimensions: not a simple lossy WebP');
  const b = Buffer.from(webp);
  b.writeUInt16LE(width & 0x3fff, 26);
  b.writeUInt16LE(height & 0x3fff, 28);
  return b;
}

/** Greyscale PNG whose luma is `f(x, y)`. */
function grayFrom(width: number, height: number, f: (x: number, y: number) => number): Promise<Buffer> {
  const data = Buffer.alloc(width * height);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data[y * width + x] = f(x, y);
  return sharp(data, { raw: { width, height, channels: 1 } }).png().toBuffer();
}

function solid(width: number, height: number, v: number): Sharp {
  return sharp({ create: { width, height, channels: 3, background: { r: v, g: v, b: v } } });
}

/** Offsets to cut a file at: fixed edges plus seeded ones in between, deduplicated and sorted. */
function cutOffsets(length: number, fixed: readonly number[], seed: number, count: number): number[] {
  const rand = prng(seed);
  const out = new Set(fixed.filter((o) => o > 0 && o < length));
  for (let i = 0; i < count; i++) out.add(between(rand, 1024, length - 64));
  return [...out].sort((a, b) => a - b);
}

/**
 * Builds the image corpus. `fixturesDir` holds the shared real photos (test/helpers/tmp.ts FIXTURES).
 * The expectations assume the API limit {@link SERVER_MAX_BYTES} and a validate config with
 * `maxBytes: STAGE_MAX_BYTES` and every other field at its default (64 px minimum, 8192 px maximum,
 * 40 Mpx, no animation, `failOn: 'warning'`).
 */
export async function buildImageCases(fixturesDir: string): Promise<ImageCase[]> {
  const fixture = (name: string) => readFileSync(path.join(fixturesDir, name));
  const home = fixture('home.jpg'); // 512x384 baseline JPEG
  const coffee = fixture('coffee.png'); // 600x400 RGB PNG
  const cases: ImageCase[] = [];
  const add = (group: string, id: string, bytes: Buffer, expect: ImageExpect, extra: { contentType?: string } = {}) => {
    const contentType = extra.contentType ?? 'image/jpeg';
    cases.push({ id: `image/${group}/${id}`, group, bytes, contentType, expect });
  };

  // --- Truncations: JPEG, PNG and WebP cut at fixed edges and at seeded offsets. --------------------
  // Under the magic length the API cannot even tell the type (415); from there on, validate says truncated.
  const jpeg = home;
  for (const off of cutOffsets(jpeg.length, [1, 2, 3, 4, 11, 20, 100, 300, 600, 700, 1000, jpeg.length >> 1, jpeg.length - 100, jpeg.length - 2, jpeg.length - 1], 0x1e9, 6)) {
    add('truncated', `jpeg@${off}`, jpeg.subarray(0, off), off < 3 ? reject415 : invalid('truncated'));
  }
  const png = await sharp(home).resize(320, 240).png().toBuffer();
  // A PNG cut anywhere in its final IEND chunk (or right before it) still holds all its pixel data:
  // accepted with a `no_end_marker` warning. One byte earlier (the last IDAT's CRC) it is truncated.
  for (const off of cutOffsets(png.length, [1, 4, 7, 8, 16, 33, 50, 100, 1000, png.length >> 1, png.length - 13, png.length - 12, png.length - 11, png.length - 4, png.length - 1], 0x9a6, 6)) {
    const expect = off < 8 ? reject415 : off >= png.length - 12 ? standardized('no_end_marker') : invalid('truncated');
    add('truncated', `png@${off}`, png.subarray(0, off), expect, { contentType: 'image/png' });
  }
  const webp = await sharp(coffee).resize(320, 214).webp({ quality: 80 }).toBuffer();
  for (const off of cutOffsets(webp.length, [1, 4, 11, 12, 16, 30, 100, 1000, webp.length >> 1, webp.length - 10, webp.length - 1], 0x3eb, 5)) {
    add('truncated', `webp@${off}`, webp.subarray(0, off), off < 12 ? reject415 : invalid('truncated'), { contentType: 'image/webp' });
  }

  // --- Empty, over the limits. ---------------------------------------------------------------------
  add('size', 'zero-bytes', Buffer.alloc(0), { kind: 'reject', status: 400, code: 'E_BAD_INPUT' });
  const pad = (to: number) => Buffer.concat([home, Buffer.alloc(to - home.length)]);
  add('size', 'over-api-limit-by-1', pad(SERVER_MAX_BYTES + 1), { kind: 'reject', status: 413, code: 'E_TOO_LARGE' });
  add('size', 'over-api-limit-8MiB', pad(8 * 1024 * 1024), { kind: 'reject', status: 413, code: 'E_TOO_LARGE' });
  add('size', 'at-api-limit-over-stage-limit', pad(SERVER_MAX_BYTES), invalid('too_large'));
  add('size', 'stage-limit-plus-1', pad(STAGE_MAX_BYTES + 1), invalid('too_large'));
  add('size', 'at-stage-limit-trailing-zeros', pad(STAGE_MAX_BYTES), standardized('trailing_bytes'));
  const noise = seededBytes(0x5eed, 900 * 900 * 3);
  add('size', 'noise-png-2.4MB', await sharp(noise, { raw: { width: 900, height: 900, channels: 3 } }).png({ compressionLevel: 0 }).toBuffer(), invalid('too_large'), {
    contentType: 'image/png',
  });

  // --- Wrong magic, other formats, not images at all: the API sniffs the bytes and answers 415. --------
  const flip = (b: Buffer, i: number, v: number) => {
    const c = Buffer.from(b);
    c[i] = v;
    return c;
  };
  add('magic', 'jpeg-ffd8-00', flip(home, 2, 0x00), reject415);
  add('magic', 'jpeg-soi-only-2-bytes', Buffer.from([0xff, 0xd8]), reject415);
  add('magic', 'png-first-byte', flip(png, 0, 0x88), reject415, { contentType: 'image/png' });
  add('magic', 'png-crlf-mangled', Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0a, 0x1a, 0x0a]), png.subarray(8)]), reject415, { contentType: 'image/png' });
  add('magic', 'webp-rifx', Buffer.concat([Buffer.from('RIFX', 'latin1'), webp.subarray(4)]), reject415, { contentType: 'image/webp' });
  add('magic', 'webp-webq', Buffer.concat([webp.subarray(0, 8), Buffer.from('WEBQ', 'latin1'), webp.subarray(12)]), reject415, { contentType: 'image/webp' });
  add('magic', 'utf8-bom-then-jpeg', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), home]), reject415);
  add('magic', 'leading-space-then-png', Buffer.concat([Buffer.from(' '), png]), reject415, { contentType: 'image/png' });
  for (const [i, n] of [1, 17, 512, 4096, 65_536, 300_000].entries()) {
    const bytes = seededBytes(0xbad0 + i, n);
    bytes[0] = 0x42; // never a JPEG/PNG/WebP signature
    add('random', `random-${n}-bytes`, bytes, reject415);
  }
  const text = (s: string) => Buffer.from(s, 'utf8');
  add('not-image', 'plain-text', text('hello, this is not an image\n'), reject415);
  add('not-image', 'html', text('<!DOCTYPE html><html><body><img src=x onerror=alert(1)></body></html>'), reject415);
  add('not-image', 'json', text('{"frame":"data:image/jpeg;base64,/9j/4AAQ"}'), reject415);
  add('not-image', 'base64-jpeg', text(home.subarray(0, 3000).toString('base64')), reject415);
  add('not-image', 'shell-script', text('#!/bin/sh\nrm -rf /\n'), reject415);
  add('not-image', 'svg', text('<svg xmlns="http://www.w3.org/2000/svg" width="640" height="480"><rect width="640" height="480"/></svg>'), reject415, {
    contentType: 'image/png',
  });
  add('not-image', 'svg-xml-decl', text('<?xml version="1.0"?>\n<!DOCTYPE svg><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'), reject415);
  add('not-image', 'pdf', text('%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n'), reject415);
  add('not-image', 'zip', Buffer.concat([Buffer.from([0x50, 0x4b, 0x03, 0x04]), seededBytes(0x21b, 200)]), reject415);
  add('not-image', 'elf', Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]), Buffer.alloc(120)]), reject415);
  add('other-format', 'tiff-le', await sharp(coffee).resize(200).tiff().toBuffer(), reject415);
  add('other-format', 'tiff-be-header', Buffer.concat([Buffer.from([0x4d, 0x4d, 0x00, 0x2a]), seededBytes(0x71f, 300)]), reject415);
  const bmp = Buffer.alloc(54 + 64 * 64 * 3);
  bmp.write('BM', 0, 'latin1');
  bmp.writeUInt32LE(bmp.length, 2);
  bmp.writeUInt32LE(54, 10);
  bmp.writeUInt32LE(40, 14);
  bmp.writeInt32LE(64, 18);
  bmp.writeInt32LE(64, 22);
  bmp.writeUInt16LE(1, 26);
  bmp.writeUInt16LE(24, 28);
  add('other-format', 'bmp', bmp, reject415);
  add('other-format', 'gif-still', await sharp(coffee).resize(200).gif().toBuffer(), reject415, { contentType: 'image/png' });
  const animFrames = await Promise.all([0, 100].map((left) => sharp(coffee).extract({ left, top: 0, width: 200, height: 150 }).raw().toBuffer()));
  const anim = () => sharp(Buffer.concat(animFrames), { raw: { width: 200, height: 300, channels: 3, pageHeight: 150 } });
  add('other-format', 'gif-animated', await anim().gif().toBuffer(), reject415, { contentType: 'image/webp' });
  add('other-format', 'heif-ftyp', Buffer.concat([Buffer.from([0, 0, 0, 0x18]), Buffer.from('ftypheic\0\0\0\0mif1heic', 'latin1'), seededBytes(0x4e1f, 400)]), reject415);
  add('other-format', 'avif', await sharp(coffee).resize(128).avif().toBuffer(), reject415);
  add('other-format', 'jxl-codestream', Buffer.concat([Buffer.from([0xff, 0x0a]), seededBytes(0x1a1, 300)]), reject415);
  add('other-format', 'jp2', Buffer.concat([Buffer.from([0, 0, 0, 0x0c]), Buffer.from('jP  \r\n\x87\n', 'latin1'), seededBytes(0x1b2, 300)]), reject415);
  add('other-format', 'ico', Buffer.concat([Buffer.from([0, 0, 1, 0, 1, 0]), seededBytes(0x1c0, 200)]), reject415);

  // --- Right magic, wrong content: accepted by the API (it sniffs only), refused by validate. ---------
  const jpegMagic = Buffer.from([0xff, 0xd8, 0xff]);
  add('polyglot', 'jpeg-magic-only', jpegMagic, invalid('truncated'));
  add('polyglot', 'png-signature-only', PNG_SIGNATURE, invalid('truncated'), { contentType: 'image/png' });
  add('polyglot', 'riff-webp-header-claims-10000-bytes', Buffer.from('RIFF\x10\x27\x00\x00WEBP', 'latin1'), invalid('truncated'), { contentType: 'image/webp' });
  add('polyglot', 'riff-webp-complete-but-empty', Buffer.from('RIFF\x04\x00\x00\x00WEBP', 'latin1'), invalid('corrupt'), { contentType: 'image/webp' });
  add('polyglot', 'jpeg-magic-then-random', Buffer.concat([jpegMagic, seededBytes(0x10, 10_000)]), invalid('corrupt'));
  add('polyglot', 'jpeg-magic-then-svg', Buffer.concat([jpegMagic, text('<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100"/>')]), invalid('corrupt'));
  add('polyglot', 'jpeg-magic-then-gif', Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), await anim().gif().toBuffer()]), invalid('corrupt'));
  add('polyglot', 'png-signature-then-random', Buffer.concat([PNG_SIGNATURE, seededBytes(0x11, 10_000)]), invalid('truncated'), { contentType: 'image/png' });
  add('polyglot', 'riff-webp-then-random', Buffer.concat([Buffer.from('RIFF\x10\x27\x00\x00WEBPVP8 ', 'latin1'), seededBytes(0x12, 10_000)]), invalid('corrupt'), {
    contentType: 'image/webp',
  });

  // --- Damaged data. ---------------------------------------------------------------------------------
  {
    const b = Buffer.from(home);
    seededBytes(0xd1, 400).copy(b, b.length >> 1);
    add('damaged', 'jpeg-entropy-data', b, invalid('corrupt'));
  }
  {
    const b = Buffer.from(png);
    b[29] = (b[29] as number) ^ 0xff; // IHDR CRC
    add('damaged', 'png-ihdr-crc', b, invalid('corrupt'), { contentType: 'image/png' });
  }
  {
    const b = Buffer.from(png);
    const idat = b.indexOf('IDAT', 8, 'latin1');
    for (let k = idat + 104; k < idat + 154; k++) b[k] = (b[k] as number) ^ 0x55;
    add('damaged', 'png-idat-data', b, invalid('corrupt'), { contentType: 'image/png' });
  }
  add('damaged', 'jpeg-sof-0x0', jpegWithDimensions(await sharp(home).resize(64, 48).jpeg().toBuffer(), 0, 0), invalid('corrupt'));
  add('damaged', 'png-ihdr-0x0', pngHeaderOnly(0, 0), invalid('corrupt'), { contentType: 'image/png' });

  // --- Decompression bombs and extreme geometry, refused from the header. ------------------------------
  const smallJpeg = await sharp(home).resize(64, 48).jpeg().toBuffer();
  add('bomb', 'png-20000x20000', pngHeaderOnly(20_000, 20_000), invalid('too_many_pixels'), { contentType: 'image/png' });
  add('bomb', 'png-8000x6000', pngHeaderOnly(8000, 6000), invalid('too_many_pixels'), { contentType: 'image/png' });
  add('bomb', 'png-9000x100', pngHeaderOnly(9000, 100), invalid('too_wide'), { contentType: 'image/png' });
  add('bomb', 'png-100x9000', pngHeaderOnly(100, 9000), invalid('too_wide'), { contentType: 'image/png' });
  add('bomb', 'png-1x1000000', pngHeaderOnly(1, 1_000_000), invalid('too_small'), { contentType: 'image/png' });
  add('bomb', 'jpeg-sof-65000x65000', jpegWithDimensions(smallJpeg, 65_000, 65_000), invalid('too_many_pixels'));
  add('bomb', 'jpeg-sof-9000x100', jpegWithDimensions(smallJpeg, 9000, 100), invalid('too_wide'));
  add('bomb', 'jpeg-sof-8000x6000', jpegWithDimensions(smallJpeg, 8000, 6000), invalid('too_many_pixels'));
  add('bomb', 'webp-vp8-16383x16383', webpLossyWithDimensions(await sharp(coffee).resize(100, 80).webp().toBuffer(), 16_383, 16_383), invalid('too_many_pixels'), {
    contentType: 'image/webp',
  });

  // --- Too small (after EXIF orientation), and the 64x64 boundary. ---------------------------------------
  const tex = (w: number, h: number) => sharp(coffee).resize(w, h, { fit: 'fill' });
  add('tiny', 'png-1x1', await tex(1, 1).png().toBuffer(), invalid('too_small'), { contentType: 'image/png' });
  add('tiny', 'jpeg-1x1', await sharp({ create: { width: 1, height: 1, channels: 3, background: '#f00' } }).jpeg().toBuffer(), invalid('too_small'));
  add('tiny', 'png-16x16', await tex(16, 16).png().toBuffer(), invalid('too_small'), { contentType: 'image/png' });
  add('tiny', 'webp-16x16', await tex(16, 16).webp().toBuffer(), invalid('too_small'), { contentType: 'image/webp' });
  add('tiny', 'png-63x63', await tex(63, 63).png().toBuffer(), invalid('too_small'), { contentType: 'image/png' });
  add('tiny', 'png-63x64', await tex(63, 64).png().toBuffer(), invalid('too_small'), { contentType: 'image/png' });
  add('tiny', 'png-64x63', await tex(64, 63).png().toBuffer(), invalid('too_small'), { contentType: 'image/png' });
  add('tiny', 'jpeg-exif6-70x63-is-63x70', await tex(70, 63).withMetadata({ orientation: 6 }).jpeg().toBuffer(), invalid('too_small'));
  add('tiny', 'png-64x64-boundary-ok', await tex(64, 64).png().toBuffer(), standardized(undefined, [64, 64]), { contentType: 'image/png' });

  // --- Odd but valid encodings: standardized. ------------------------------------------------------------
  add('colour', 'jpeg-cmyk', await sharp(home).toColourspace('cmyk').jpeg().toBuffer(), standardized(undefined, [512, 384]));
  add('colour', 'png-16bit-rgb', await sharp(coffee).toColourspace('rgb16').png().toBuffer(), standardized(undefined, [600, 400]), { contentType: 'image/png' });
  add('colour', 'png-16bit-grey', await sharp(coffee).greyscale().toColourspace('grey16').png().toBuffer(), standardized(undefined, [600, 400]), { contentType: 'image/png' });
  add('colour', 'png-grey', await sharp(coffee).greyscale().png().toBuffer(), standardized(), { contentType: 'image/png' });
  add('colour', 'jpeg-grey', await sharp(coffee).greyscale().jpeg().toBuffer(), standardized());
  add('colour', 'png-rgba-half-transparent', await sharp(coffee).ensureAlpha(0.5).png().toBuffer(), standardized('alpha_flattened'), { contentType: 'image/png' });
  add('colour', 'png-grey-alpha', await sharp(coffee).greyscale().ensureAlpha(1).png().toBuffer(), standardized('alpha_flattened'), { contentType: 'image/png' });
  add('colour', 'webp-alpha', await sharp(home).ensureAlpha(0.5).webp().toBuffer(), standardized('alpha_flattened'), { contentType: 'image/webp' });
  add('colour', 'png-palette-16', await sharp(home).png({ palette: true, colours: 16 }).toBuffer(), standardized(), { contentType: 'image/png' });
  add('colour', 'png-interlaced', await sharp(home).resize(256).png({ progressive: true }).toBuffer(), standardized(), { contentType: 'image/png' });
  add('colour', 'jpeg-progressive', await sharp(home).jpeg({ progressive: true }).toBuffer(), standardized());
  add('colour', 'webp-lossless', await sharp(home).resize(256).webp({ lossless: true }).toBuffer(), standardized(), { contentType: 'image/webp' });
  add('colour', 'png-labelled-webp', png, standardized(undefined, [320, 240]), { contentType: 'image/webp' });
  add('colour', 'jpeg-labelled-png-with-params', await sharp(home).resize(300).jpeg().toBuffer(), standardized(), { contentType: 'IMAGE/PNG; charset=binary' });
  add('exif', 'jpeg-orientation-6', await sharp(home).resize(200, 100, { fit: 'fill' }).withMetadata({ orientation: 6 }).jpeg().toBuffer(), standardized(undefined, [100, 200]));
  add('exif', 'png-orientation-8', await sharp(home).resize(200, 100, { fit: 'fill' }).withMetadata({ orientation: 8 }).png().toBuffer(), standardized(undefined, [100, 200]), {
    contentType: 'image/png',
  });
  add('exif', 'webp-orientation-6', await sharp(home).resize(200, 100, { fit: 'fill' }).withMetadata({ orientation: 6 }).webp().toBuffer(), standardized(undefined, [100, 200]), {
    contentType: 'image/webp',
  });
  add('exif', 'jpeg-orientation-3', await sharp(home).resize(200, 100, { fit: 'fill' }).withMetadata({ orientation: 3 }).jpeg().toBuffer(), standardized(undefined, [200, 100]));
  add('trailing', 'jpeg-trailing-garbage', Buffer.concat([home, seededBytes(0x7a, 5000)]), standardized('trailing_bytes'));
  add('trailing', 'jpeg-trailing-html', Buffer.concat([home, text('<script>alert(1)</script>')]), standardized('trailing_bytes'));
  add('trailing', 'jpeg-two-concatenated', Buffer.concat([home, smallJpeg]), standardized('trailing_bytes', [512, 384]));
  add('trailing', 'png-trailing-garbage', Buffer.concat([png, text('garbage')]), standardized('trailing_bytes'), { contentType: 'image/png' });
  add('trailing', 'webp-trailing-garbage', Buffer.concat([webp, seededBytes(0x7b, 101)]), standardized('trailing_bytes'), { contentType: 'image/webp' });

  // --- Animation. -------------------------------------------------------------------------------------
  add('animated', 'webp-2-frames', await anim().webp().toBuffer(), invalid('animated'), { contentType: 'image/webp' });

  // --- Camera faults and luma. ---------------------------------------------------------------------------
  add('luma', 'black-png', await solid(640, 480, 0).png().toBuffer(), invalid('black'), { contentType: 'image/png' });
  add('luma', 'black-jpeg', await solid(640, 480, 0).jpeg().toBuffer(), invalid('black'));
  add('luma', 'black-webp', await solid(320, 240, 0).webp().toBuffer(), invalid('black'), { contentType: 'image/webp' });
  add('luma', 'blank-grey-128', await solid(640, 480, 128).png().toBuffer(), invalid('blank'), { contentType: 'image/png' });
  add('luma', 'blank-grey-jpeg', await solid(320, 240, 128).jpeg().toBuffer(), invalid('blank'));
  add('luma', 'blank-white', await solid(320, 240, 255).png().toBuffer(), invalid('blank'), { contentType: 'image/png' });
  add('luma', 'transparent-rgba-is-black', await sharp({ create: { width: 200, height: 200, channels: 4, background: { r: 255, g: 255, b: 255, alpha: 0 } } }).png().toBuffer(), invalid('black'), {
    contentType: 'image/png',
  });
  add('luma', 'noisy-dark', await grayFrom(640, 480, (x, y) => 4 + ((x * 7 + y * 13) % 7)), invalid('black'), { contentType: 'image/png' });
  const grain = seededBytes(0x6a1, 640 * 480);
  add('luma', 'pixel-noise-around-120-is-blank', await grayFrom(640, 480, (x, y) => 120 + ((grain[y * 640 + x] as number) % 5)), invalid('blank'), { contentType: 'image/png' });
  add('luma', 'low-contrast-gradient', await grayFrom(640, 480, (x) => 118 + Math.round((10 * x) / 639)), invalid('low_contrast'), { contentType: 'image/png' });
  add('luma', 'low-contrast-gradient-jpeg', await sharp(await grayFrom(640, 480, (x) => 118 + Math.round((10 * x) / 639))).jpeg().toBuffer(), invalid('low_contrast'));
  add('luma', 'dark-scene-with-lamp-ok', await solid(640, 480, 3).composite([{ input: await solid(60, 100, 200).png().toBuffer(), left: 300, top: 100 }]).jpeg().toBuffer(), standardized());

  return cases;
}

// ---------------------------------------------------------------------------------------------------
// Request cases
// ---------------------------------------------------------------------------------------------------

/**
 * Placeholders in headers, paths and raw heads, filled by the runner:
 * `{{key:alice}}` (alice/cam1), `{{key:bob}}` (bob/cam2), `{{key:revoked}}` (carol/cam3, revoked),
 * `{{time}}` (a capture time unique to the case), `{{future1h}}` (now + 1 h), `{{len}}` (body length).
 */
export type Body = 'good' | 'other' | 'none' | Buffer;

export interface RequestExpect {
  /** HTTP status; 0 = no answer by design (the client itself reset the connection). */
  status: number;
  code?: string;
  /** For 202: the `user-device` the answer's path and tag must name. */
  device?: string;
  /** For 202: whether the answer says `duplicate`. */
  duplicate?: boolean;
  /** A regexp the one-line error message must match. */
  message?: RegExp;
}

/** A request sent with node's http client. */
export interface HttpRequestCase {
  readonly id: string;
  readonly group: string;
  readonly via: 'http';
  readonly method: string;
  readonly path: string;
  readonly headers: Readonly<Record<string, string | readonly string[]>>;
  readonly body: Body;
  /** Send the body chunked, in chunks of this size. */
  readonly chunkSize?: number;
  /** Send `Expect: 100-continue` and hold the body until told to continue. */
  readonly waitContinue?: boolean;
  /** Use this exact capture time (for duplicate / conflict cases) instead of a fresh one. */
  readonly fixedTime?: string;
  readonly expect: RequestExpect;
}

/** A request written byte by byte on a raw socket. */
export interface RawRequestCase {
  readonly id: string;
  readonly group: string;
  readonly via: 'raw';
  /** Request line and headers (with placeholders), ending with the blank line unless `trickleHeaders`. */
  readonly head: string;
  /** How the head is encoded on the wire (utf8 to smuggle non-latin1 characters). */
  readonly encoding?: 'latin1' | 'utf8';
  readonly body?: Body;
  /** Only send this many body bytes. */
  readonly bodyBytes?: number;
  /** After writing: wait for the answer (default), half-close, reset, or trickle. */
  readonly then?: 'wait' | 'end' | 'destroy' | 'trickleHeaders' | 'trickleBody';
  readonly expect: RequestExpect;
}

export type RequestCase = HttpRequestCase | RawRequestCase;

const UNKNOWN_KEY = `vk_${'0'.repeat(12)}_${'A'.repeat(43)}`;
const bad = (status: number, code: string, message?: RegExp): RequestExpect => ({ status, code, ...(message ? { message } : {}) });

/** Standard upload headers for alice's device, with overrides (undefined removes a header). */
function uploadHeaders(over: Record<string, string | readonly string[] | undefined> = {}): Record<string, string | readonly string[]> {
  const h: Record<string, string | readonly string[] | undefined> = {
    Authorization: 'Bearer {{key:alice}}',
    'Content-Type': 'image/jpeg',
    'X-Capture-Time': '{{time}}',
    ...over,
  };
  return Object.fromEntries(Object.entries(h).filter((e): e is [string, string | readonly string[]] => e[1] !== undefined));
}

/** Builds the request corpus. Deterministic. */
export function buildRequestCases(): RequestCase[] {
  const cases: RequestCase[] = [];
  const post = (group: string, id: string, headers: Record<string, string | readonly string[]>, expect: RequestExpect, extra: Partial<HttpRequestCase> = {}) =>
    cases.push({ id: `request/${group}/${id}`, group, via: 'http', method: 'POST', path: '/v1/frames', headers, body: 'good', expect, ...extra });
  const raw = (group: string, id: string, c: Omit<RawRequestCase, 'id' | 'group' | 'via'>) => cases.push({ id: `request/${group}/${id}`, group, via: 'raw', ...c });

  // --- Keys: every unknown, malformed, revoked or missing key is a 401 before any body byte is stored. ---
  const u401 = bad(401, 'E_UNAUTHORIZED');
  post('auth', 'no-key', uploadHeaders({ Authorization: undefined }), bad(401, 'E_UNAUTHORIZED', /key is required/));
  post('auth', 'bearer-without-token', uploadHeaders({ Authorization: 'Bearer' }), u401);
  post('auth', 'basic-scheme', uploadHeaders({ Authorization: `Basic ${Buffer.from('alice:cam1').toString('base64')}` }), u401);
  post('auth', 'token-scheme', uploadHeaders({ Authorization: 'Token {{key:alice}}' }), u401);
  post('auth', 'two-tokens', uploadHeaders({ Authorization: 'Bearer {{key:alice}} {{key:bob}}' }), u401);
  post('auth', 'unknown-well-formed-key', uploadHeaders({ Authorization: `Bearer ${UNKNOWN_KEY}` }), u401);
  post('auth', 'right-key-id-wrong-secret', uploadHeaders({ Authorization: 'Bearer {{key:alice:wrong-secret}}' }), u401);
  post('auth', 'key-missing-last-char', uploadHeaders({ Authorization: 'Bearer {{key:alice:truncated}}' }), u401);
  post('auth', 'key-plus-one-char', uploadHeaders({ Authorization: 'Bearer {{key:alice}}A' }), u401);
  post('auth', 'key-uppercased', uploadHeaders({ Authorization: 'Bearer {{key:alice:upper}}' }), u401);
  post('auth', 'revoked-key', uploadHeaders({ Authorization: 'Bearer {{key:revoked}}' }), u401);
  post('auth', 'path-like-key', uploadHeaders({ Authorization: 'Bearer vk_../../devices.json' }), u401);
  post('auth', 'huge-key-8KiB', uploadHeaders({ Authorization: `Bearer vk_${'a'.repeat(8192)}` }), u401);
  post('auth', 'x-device-key-unknown', uploadHeaders({ Authorization: undefined, 'X-Device-Key': UNKNOWN_KEY }), u401);
  post('auth', 'x-device-key-empty', uploadHeaders({ Authorization: undefined, 'X-Device-Key': '' }), u401);
  post('auth', 'malformed-authorization-beats-good-x-device-key', uploadHeaders({ Authorization: 'Bearer', 'X-Device-Key': '{{key:alice}}' }), u401);
  post('auth', 'key-in-query-string-only', uploadHeaders({ Authorization: undefined }), u401, { path: '/v1/frames?key={{key:alice}}' });
  post('auth', 'expect-100-continue-unknown-key', uploadHeaders({ Authorization: `Bearer ${UNKNOWN_KEY}` }), u401, { waitContinue: true });
  post('auth', 'unknown-key-big-body', uploadHeaders({ Authorization: `Bearer ${UNKNOWN_KEY}` }), u401, { body: 'other' });
  cases.push({ id: 'request/auth/revoked-key-devices-me', group: 'auth', via: 'http', method: 'GET', path: '/v1/devices/me', headers: { Authorization: 'Bearer {{key:revoked}}' }, body: 'none', expect: u401 });
  raw('auth', 'nul-in-key', { head: 'POST /v1/frames HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {{key:alice}}\0\r\nContent-Type: image/jpeg\r\nX-Capture-Time: {{time}}\r\nContent-Length: {{len}}\r\n\r\n', body: 'good', expect: bad(400, 'E_BAD_INPUT') });

  // --- Another device's identity: there is no user/device header. Whatever a request claims, a key
  //     writes only to its own `<user>-<device>` path (the key is the identity; OpenAPI lists no such header).
  const bob = { status: 202, device: 'bob-cam2', duplicate: false };
  post('spoof', 'bob-key-claims-alice-headers', uploadHeaders({ Authorization: 'Bearer {{key:bob}}', 'X-User': 'alice', 'X-Device': 'cam1', 'X-Vigil-User': 'alice', 'X-Vigil-Device': 'cam1', 'X-Device-Id': 'cam1' }), bob);
  post('spoof', 'bob-key-claims-alice-query', uploadHeaders({ Authorization: 'Bearer {{key:bob}}' }), bob, { path: '/v1/frames?user=alice&device=cam1' });
  // Two keys in one request (each header names one): ambiguous, refused.
  post('spoof', 'bob-bearer-and-alice-x-device-key', uploadHeaders({ Authorization: 'Bearer {{key:bob}}', 'X-Device-Key': '{{key:alice}}' }), bad(401, 'E_UNAUTHORIZED'));
  post('spoof', 'bob-x-device-key-forwarded-user-alice', uploadHeaders({ Authorization: undefined, 'X-Device-Key': '{{key:bob}}', 'X-Forwarded-User': 'alice', Forwarded: 'for=alice' }), bob);

  // --- Capture times. ---------------------------------------------------------------------------------
  const b400 = bad(400, 'E_BAD_INPUT');
  const times: [string, string][] = [
    ['empty', ''],
    ['no-zone', '2024-03-05T06:07:08'],
    ['words', 'yesterday'],
    ['year-1900', '1900-01-01T00:00:00Z'],
    ['year-1999', '1999-12-31T23:59:59Z'],
    ['far-future-2150', '2150-01-01T00:00:00Z'],
    ['year-9999', '9999-12-31T23:59:59Z'],
    ['one-hour-ahead', '{{future1h}}'],
    ['month-13', '2024-13-01T00:00:00Z'],
    ['month-00', '2024-00-10T00:00:00Z'],
    ['day-32', '2024-03-32T00:00:00Z'],
    ['hour-25', '2024-03-05T25:00:00Z'],
    ['minute-60', '2024-03-05T23:60:00Z'],
    ['offset-24h', '2024-03-05T06:07:08+24:00'],
    ['lowercase-z', '2024-03-05T06:07:08z'],
    ['space-separator', '2024-03-05 06:07:08Z'],
    ['basic-format', '20240305T060708Z'],
    ['epoch-seconds-is-1970', '1709618828'],
    ['epoch-too-short', '12'],
    ['epoch-negative', '-1000'],
    ['epoch-14-digits', '17096188280000'],
    ['two-instants', '2024-03-05T06:07:08Z, 2024-03-05T06:07:09Z'],
    ['sql-ish', "2024-03-05T06:07:08Z' OR '1'='1"],
  ];
  const rand = prng(0x71e);
  for (let i = 0; i < 3; i++) {
    let s = '';
    const n = between(rand, 5, 40);
    for (let k = 0; k < n; k++) s += String.fromCharCode(between(rand, 0x21, 0x7e));
    times.push([`garbage-${i}`, s]);
  }
  for (const [id, value] of times) post('time', id, uploadHeaders({ 'X-Capture-Time': value }), b400);
  post('time', 'missing', uploadHeaders({ 'X-Capture-Time': undefined }), bad(400, 'E_BAD_INPUT', /X-Capture-Time/));
  post('time', 'february-30', uploadHeaders({ 'X-Capture-Time': '2024-02-30T10:00:00Z' }), b400);
  post('time', 'april-31', uploadHeaders({ 'X-Capture-Time': '2024-04-31T10:00:00Z' }), b400);

  // --- Time zones. ------------------------------------------------------------------------------------
  const zones: [string, string][] = [
    ['mars-base', 'Mars/Base'],
    ['path-traversal', '../../etc/passwd'],
    ['absolute-path', '/etc/localtime'],
    ['empty', ''],
    ['200-chars', `Europe/${'A'.repeat(193)}`],
    ['trailing-slash', 'Europe/Paris/'],
    ['backslash', 'Europe\\Paris'],
    ['shell', 'UTC; rm -rf /'],
    ['gmt-plus-15', 'Etc/GMT+15'],
    ['localtime', 'localtime'],
    ['percent-nul', 'UTC%00'],
  ];
  for (const [id, value] of zones) post('zone', id, uploadHeaders({ 'X-Time-Zone': value }), b400);
  post('zone', 'two-zone-headers', uploadHeaders({ 'X-Time-Zone': ['Europe/Paris', 'UTC'] }), b400);
  const zoneHead = (zone: string) =>
    `POST /v1/frames HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {{key:alice}}\r\nContent-Type: image/jpeg\r\nX-Capture-Time: {{time}}\r\nX-Time-Zone: ${zone}\r\nContent-Length: {{len}}\r\n\r\n`;
  raw('zone', 'utc-nul', { head: zoneHead('UTC\0'), body: 'good', expect: b400 });
  raw('zone', 'cyrillic-a-lookalike', { head: zoneHead('Europe/P\u0430ris'), encoding: 'utf8', body: 'good', expect: bad(400, 'E_BAD_INPUT', /zone/) });
  raw('zone', 'fullwidth-solidus', { head: zoneHead('Europe\uff0fParis'), encoding: 'utf8', body: 'good', expect: bad(400, 'E_BAD_INPUT', /zone/) });
  raw('zone', 'zero-width-space', { head: zoneHead('Europe/Par\u200bis'), encoding: 'utf8', body: 'good', expect: bad(400, 'E_BAD_INPUT', /zone/) });

  // --- Content types. ---------------------------------------------------------------------------------
  const u415 = bad(415, 'E_UNSUPPORTED');
  for (const [id, ct] of [
    ['text-plain', 'text/plain'],
    ['gif', 'image/gif'],
    ['svg', 'image/svg+xml'],
    ['octet-stream', 'application/octet-stream'],
    ['multipart', 'multipart/form-data; boundary=x'],
    ['jpeg2000', 'image/jpeg2000'],
    ['bare-image', 'image/'],
    ['no-slash', 'jpeg'],
  ] as const) {
    post('content-type', id, uploadHeaders({ 'Content-Type': ct }), u415);
  }
  post('content-type', 'missing', uploadHeaders({ 'Content-Type': undefined }), bad(415, 'E_UNSUPPORTED', /got none/));

  // --- Methods and paths. -----------------------------------------------------------------------------
  for (const m of ['GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD']) {
    cases.push({ id: `request/method/${m}-frames`, group: 'method', via: 'http', method: m, path: '/v1/frames', headers: uploadHeaders(), body: 'none', expect: bad(405, 'E_METHOD_NOT_ALLOWED') });
  }
  post('method', 'POST-health', uploadHeaders(), bad(405, 'E_METHOD_NOT_ALLOWED'), { path: '/v1/health' });
  post('method', 'POST-devices-me', uploadHeaders(), bad(405, 'E_METHOD_NOT_ALLOWED'), { path: '/v1/devices/me' });
  for (const [id, p] of [
    ['singular', '/v1/frame'],
    ['trailing-slash', '/v1/frames/'],
    ['upper-case', '/V1/FRAMES'],
    ['double-slash', '/v1//frames'],
    ['dot-dot', '/v1/frames/../frames'],
    ['encoded-dot-dot', '/v1/%2e%2e/v1/frames'],
    ['encoded-nul', '/v1/frames%00'],
    ['v2', '/v2/frames'],
    ['root', '/'],
  ] as const) {
    post('path', id, uploadHeaders(), bad(404, 'E_NOT_FOUND'), { path: p });
  }

  // --- Framing, sizes and slow clients. ---------------------------------------------------------------
  post('framing', 'header-20KiB', uploadHeaders({ 'X-Pad': 'x'.repeat(20_000) }), bad(431, 'E_TOO_LARGE'));
  // (node's parser counts many small headers loosely: ~1500 of them, 22 KB, still pass; 3000, 45 KB, do not)
  raw('framing', 'many-headers-45KB', { head: `POST /v1/frames HTTP/1.1\r\nHost: t\r\n${Array.from({ length: 3000 }, (_, i) => `X-H${i}: v${i}\r\n`).join('')}\r\n`, expect: bad(431, 'E_TOO_LARGE') });
  raw('framing', 'url-20KiB', { head: `POST /v1/frames?${'a'.repeat(20_000)} HTTP/1.1\r\nHost: t\r\n\r\n`, expect: bad(431, 'E_TOO_LARGE') });
  post('framing', 'chunked-over-limit', uploadHeaders(), bad(413, 'E_TOO_LARGE'), { body: Buffer.alloc(SERVER_MAX_BYTES + 64 * 1024, 0x61), chunkSize: 64 * 1024 });
  const upload = (extra: string, cl: string | null = '{{len}}') =>
    `POST /v1/frames HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {{key:alice}}\r\nContent-Type: image/jpeg\r\nX-Capture-Time: {{time}}\r\n${extra}${cl === null ? '' : `Content-Length: ${cl}\r\n`}\r\n`;
  raw('framing', 'content-length-huge-lie', { head: upload('', '999999999'), body: 'good', bodyBytes: 100, expect: bad(413, 'E_TOO_LARGE') });
  raw('framing', 'content-length-lie-then-half-close', { head: upload(''), body: 'good', bodyBytes: 1000, then: 'end', expect: b400 });
  raw('framing', 'content-length-lie-held-open', { head: upload(''), body: 'good', bodyBytes: 1000, expect: bad(408, 'E_TIMEOUT') });
  raw('framing', 'content-length-lie-then-reset', { head: upload(''), body: 'good', bodyBytes: 1000, then: 'destroy', expect: { status: 0 } });
  raw('framing', 'content-length-and-chunked', { head: upload('Transfer-Encoding: chunked\r\n'), body: 'good', expect: b400 });
  raw('framing', 'content-length-negative', { head: upload('', '-5'), body: 'good', expect: b400 });
  raw('framing', 'content-length-not-a-number', { head: upload('', 'abc'), body: 'good', expect: b400 });
  raw('framing', 'content-length-twice-different', { head: upload('Content-Length: 10\r\n', '20'), body: 'good', bodyBytes: 20, expect: b400 });
  raw('framing', 'chunk-size-not-hex', { head: upload('Transfer-Encoding: chunked\r\n', null) + 'zz\r\nabc\r\n0\r\n\r\n', expect: b400 });
  raw('framing', 'transfer-encoding-gzip', { head: upload('Transfer-Encoding: gzip\r\n', null), body: 'good', expect: b400 });
  raw('framing', 'obs-fold-header', { head: upload('X-A: 1\r\n  continued\r\n'), body: 'good', expect: b400 });
  raw('framing', 'bare-lf-line-endings', { head: 'GET /v1/health HTTP/1.1\nHost: t\n\n', expect: b400 });
  raw('framing', 'lowercase-method', { head: 'post /v1/frames HTTP/1.1\r\nHost: t\r\n\r\n', expect: b400 });
  raw('framing', 'garbage-request-line', { head: 'HELLO\r\n\r\n', expect: b400 });
  raw('framing', 'http2-preface', { head: 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', expect: b400 });
  raw('framing', 'space-in-header-name', { head: upload('X Bad: 1\r\n'), body: 'good', expect: b400 });
  raw('framing', 'missing-host', { head: 'POST /v1/frames HTTP/1.1\r\nAuthorization: Bearer {{key:alice}}\r\nContent-Type: image/jpeg\r\nX-Capture-Time: {{time}}\r\nContent-Length: {{len}}\r\n\r\n', body: 'good', expect: b400 });
  raw('framing', 'unknown-expectation', { head: upload('Expect: 200-ok\r\n'), expect: bad(417, 'E_BAD_INPUT') });
  raw('slow', 'headers-loris', { head: 'POST /v1/frames HTTP/1.1\r\nHost: t\r\n', then: 'trickleHeaders', expect: bad(408, 'E_TIMEOUT') });
  raw('slow', 'body-trickle', { head: upload(''), body: 'good', then: 'trickleBody', expect: bad(408, 'E_TIMEOUT') });

  // --- Same device and instant twice: identical bytes are a duplicate; other bytes a conflict (nothing stored).
  const fixedTime = '2024-05-01T00:00:00.000Z';
  post('replay', 'first', uploadHeaders(), { status: 202, device: 'alice-cam1', duplicate: false }, { fixedTime });
  post('replay', 'same-bytes-again', uploadHeaders(), { status: 202, device: 'alice-cam1', duplicate: true }, { fixedTime });
  post('replay', 'other-bytes-same-instant', uploadHeaders(), bad(409, 'E_CONFLICT'), {
    fixedTime,
    body: 'other',
  });

  return cases;
}

// ---------------------------------------------------------------------------------------------------
// Device id cases
// ---------------------------------------------------------------------------------------------------

export interface IdCase {
  readonly id: string;
  readonly input: { user: unknown; device: unknown; site?: unknown; tz?: unknown };
  readonly field: 'user' | 'device' | 'site' | 'tz';
  readonly expectCode: 'E_BAD_ID' | 'E_BAD_INPUT';
}

/** Ids that must never become a path segment, and zones that are not IANA names. */
export function buildIdCases(): IdCase[] {
  const bads: [string, unknown][] = [
    ['dot-dot-slash', '../x'],
    ['dot-dot', '..'],
    ['dot', '.'],
    ['slash', 'a/b'],
    ['backslash', 'a\\b'],
    ['absolute', '/etc'],
    ['nul', 'a\u0000b'],
    ['newline', 'alice\n'],
    ['space', 'al ice'],
    ['leading-dash', '-rf'],
    ['dash', 'a-b'],
    ['dotted', 'a.b'],
    ['upper', 'Alice'],
    ['empty', ''],
    ['64-chars', 'a'.repeat(64)],
    ['leading-underscore', '_x'],
    ['fullwidth-a', '\uff41lice'],
    ['cyrillic-a', '\u0430lice'],
    ['zero-width', 'al\u200bice'],
    ['combining-acute', 'alice\u0301'],
    ['e-acute', '\u00e9'],
    ['ligature-fi', '\ufb01le'],
    ['rtl-override', 'a\u202eb'],
    ['emoji', 'cam\u{1f4f7}'],
    ['percent-encoded', 'a%2fb'],
    ['number', 42],
    ['null', null],
    ['array', ['alice']],
  ];
  const out: IdCase[] = [];
  const fields = ['user', 'device', 'site'] as const;
  bads.forEach(([name, value], i) => {
    // `site` is optional (null/undefined mean "default"), so a null goes to a required field.
    const field = value === null ? 'device' : (fields[i % 3] as (typeof fields)[number]);
    const input = { user: 'okuser', device: 'okcam', site: 'oksite', [field]: value };
    out.push({ id: `ids/${field}/${name}`, input, field, expectCode: 'E_BAD_ID' });
  });
  for (const [name, tz] of [
    ['mars', 'Mars/Base'],
    ['traversal', '../../etc/passwd'],
    ['nul', 'UTC\u0000'],
    ['lookalike', 'Europe/P\u0430ris'],
    ['long', `Europe/${'A'.repeat(193)}`],
  ] as const) {
    out.push({ id: `ids/tz/${name}`, input: { user: 'okuser', device: 'okcam', tz }, field: 'tz', expectCode: 'E_BAD_INPUT' });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Rule file cases
// ---------------------------------------------------------------------------------------------------

/** A valid global file and user file; each case replaces or adds files around them. */
export const GOOD_GLOBAL = `rules:
  - id: 100
    name: animals
    unsafe: [dog, cat]
    minScore: 0.8
  - id: 200
    name: people
    unsafe: [person]
    minScore: 0.95
`;
export const GOOD_USER = `user: demo
rules: [100]
contacts:
  email: [security@example.com]
devices:
  lobby:
    exclude: [person]
`;

export type RuleFileContent = string | Buffer | { symlink: string } | { dir: true };

export interface RuleCase {
  readonly id: string;
  readonly group: string;
  /** Files relative to the rules folder; merged over `global.yaml` and `users/demo.yaml` (null removes one). */
  readonly files: Readonly<Record<string, RuleFileContent | null>>;
  /** The file (relative) an error must name. */
  readonly badFile: string;
  /** A regexp that error's message must match. */
  readonly message?: RegExp;
  /** Run alone in a fresh process (deep nesting can leave V8 in a state that crashes a later parse). */
  readonly isolate?: boolean;
}

/** Seeded YAML-ish garbage built from YAML's own punctuation. */
export function yamlGarbage(seed: number): string {
  const tokens = [
    'a', 'rules', 'id', 'user', 'devices', ': ', ':', '- ', '-', '[', ']', '{', '}', ', ', '"', "'", '&x ', '*x', '&y ', '*y', '!!str ', '!!map ', '!!seq ',
    '!!binary ', '!foo ', '? ', '|', '>-', '# c', '\n', '\n  ', '\n    ', '\n- ', '\t', '%YAML 1.2\n', '---\n', '...\n', '@', '`', '0x1F', '.inf', '.nan', '~', 'null',
    '1e999', '-0', '"\\x00"', '"\\uD800"', '<<: ', '%', '\r', '\u2028', '\ufeff', 'é', '9'.repeat(40),
  ];
  const rand = prng(seed);
  let s = '';
  const n = between(rand, 8, 300);
  for (let i = 0; i < n; i++) s += tokens[Math.floor(rand() * tokens.length)];
  return s;
}

/** Builds the rule-file corpus. Deterministic. */
export function buildRuleCases(): RuleCase[] {
  const cases: RuleCase[] = [];
  const add = (group: string, id: string, c: Omit<RuleCase, 'id' | 'group'>) => cases.push({ id: `rules/${group}/${id}`, group, ...c });
  const g = (text: string, extra: Partial<RuleCase> = {}) => ({ files: { 'global.yaml': text }, badFile: 'global.yaml', ...extra });
  const u = (text: string, extra: Partial<RuleCase> = {}) => ({ files: { 'users/demo.yaml': text }, badFile: 'users/demo.yaml', ...extra });
  const rule = (over: string) => `rules:\n  - { id: 100, name: animals, unsafe: [dog], minScore: 0.8${over} }\n`;

  // Seeded garbage, in the global file and in a user file.
  for (let i = 0; i < 8; i++) add('garbage', `global-${i}`, g(yamlGarbage(0x6a0 + i)));
  for (let i = 0; i < 8; i++) add('garbage', `user-${i}`, u(yamlGarbage(0x7a0 + i)));
  add('garbage', 'binary-user', u(seededBytes(0xb1, 2000).toString('latin1')));
  add('garbage', 'invalid-utf8', { files: { 'global.yaml': Buffer.from([0x72, 0x75, 0x6c, 0x65, 0x73, 0x3a, 0x20, 0xff, 0xfe, 0x0a]) }, badFile: 'global.yaml', message: /UTF-8/ });

  // Wrong types.
  add('types', 'minScore-string', g(rule('').replace('0.8', '"high"')));
  add('types', 'minScore-over-1', g(rule('').replace('0.8', '80')));
  add('types', 'id-string', g(rule('').replace('id: 100', 'id: one')));
  add('types', 'id-float', g(rule('').replace('id: 100', 'id: 1.5')));
  add('types', 'id-1e400', g(rule('').replace('id: 100', 'id: 1e400')));
  add('types', 'minScore-nan', g(rule('').replace('0.8', '.nan')));
  add('types', 'unsafe-scalar', g(rule('').replace('[dog]', 'dog')));
  add('types', 'unsafe-empty', g(rule('').replace('[dog]', '[]')));
  add('types', 'rules-mapping', g('rules: { a: 1 }\n'));
  add('types', 'name-number', g(rule('').replace('name: animals', 'name: 123')));
  add('types', 'activeHours-string', g(rule(', activeHours: "22-06"')));
  add('types', 'activeHours-equal', g(rule(', activeHours: { from: "22:00", to: "22:00" }')));
  add('types', 'activeHours-25h', g(rule(', activeHours: { from: "25:00", to: "06:00" }')));
  add('types', 'binary-tag', g('rules: !!binary aGVsbG8=\n'));
  add('types', 'user-number', u('user: 42\n'));
  add('types', 'user-bad-id', { files: { 'users/Bad User.yaml': 'user: Bad User\n' }, badFile: 'users/Bad User.yaml' });
  add('types', 'contacts-email-scalar', u('user: demo\ncontacts:\n  email: security@example.com\n'));
  add('types', 'email-yaml11-yes', u('user: demo\ncontacts:\n  email: [yes]\n'));
  add('types', 'phone-unquoted-number', u('user: demo\ncontacts:\n  phone: [15555550100]\n'));
  add('types', 'webhook-javascript-url', u('user: demo\ncontacts:\n  webhook: [{ url: "javascript:alert(1)" }]\n'));
  add('types', 'pagerduty-without-key', u('user: demo\ncontacts:\n  webhook: [{ url: "https://events.pagerduty.com/v2/enqueue", format: pagerduty }]\n'));
  add('types', 'devices-list', u('user: demo\ndevices: [lobby]\n'));
  add('types', 'device-id-bad', u('user: demo\ndevices:\n  "../lobby": { exclude: [cat] }\n'));
  add('types', 'device-id-proto', u('user: demo\nrules: [100]\ndevices:\n  __proto__: { rules: [999] }\n'));

  // References and duplicates.
  add('refs', 'unknown-rule-id-user', u('user: demo\nrules: [999]\n', { message: /unknown rule id 999/ }));
  add('refs', 'unknown-rule-id-device', u('user: demo\ndevices:\n  lobby: { rules: [999] }\n', { message: /unknown rule id 999/ }));
  add('refs', 'rule-id-zero', g(rule('').replace('id: 100', 'id: 0')));
  add('refs', 'duplicate-rule-id', g(`${rule('')}  - { id: 100, name: again, unsafe: [cat], minScore: 0.5 }\n`, { message: /duplicate rule id 100/ }));
  add('refs', 'duplicate-rule-id-three-times', g(`${rule('')}  - { id: 100, name: b, unsafe: [cat], minScore: 0.5 }\n  - { id: 100, name: c, unsafe: [cow], minScore: 0.5 }\n`));
  add('refs', 'duplicate-include', u('user: demo\ninclude: [{ class: dog, minScore: 0.5 }, { class: Dog, minScore: 0.7 }]\n'));
  add('refs', 'duplicate-user', { files: { 'users/demo.yml': GOOD_USER }, badFile: 'users/demo.yml', message: /duplicate user|must be in users/ });
  add('refs', 'user-file-name-mismatch', { files: { 'users/bob.yaml': GOOD_USER }, badFile: 'users/bob.yaml', message: /must be in users\/demo.yaml/ });

  // Unknown keys and YAML-level errors.
  add('keys', 'top-level-typo', g(GOOD_GLOBAL.replace('rules:', 'rule:'), { message: /unknown key "rule"/ }));
  add('keys', 'rule-key-case', g(rule(', minscore: 0.5')));
  add('keys', 'user-contact-typo', u('user: demo\ncontact:\n  email: [a@b.c]\n', { message: /unknown key "contact"/ }));
  add('keys', 'device-unknown-key', u('user: demo\ndevices:\n  lobby: { exclud: [cat] }\n'));
  add('keys', 'proto-top-level', g(`__proto__: { polluted: 1 }\n${GOOD_GLOBAL}`));
  add('keys', 'merge-key', u('base: &b { user: demo }\n<<: *b\n'));
  add('keys', 'duplicate-key', g(`${GOOD_GLOBAL}rules: []\n`, { message: /unique/ }));
  add('keys', 'tab-indentation', g('rules:\n\t- id: 1\n'));
  add('keys', 'multiple-documents', g(`${GOOD_GLOBAL}---\n${GOOD_GLOBAL}`));
  add('keys', 'nul-byte', g(`${GOOD_GLOBAL}\u0000\n`));
  add('keys', 'json-syntax-error', { files: { 'global.yaml': null, 'global.json': '{"rules": [}' }, badFile: 'global.json', message: /JSON/ });
  add('keys', 'json-duplicate-key', { files: { 'global.yaml': null, 'global.json': '{"rules": [], "rules": []}' }, badFile: 'global.json' });

  // Not a mapping at the top.
  for (const [id, text] of [
    ['list', '- a\n- b\n'],
    ['string', 'hello\n'],
    ['number', '42\n'],
    ['empty', ''],
    ['comment-only', '# nothing here\n'],
    ['null', '~\n'],
  ] as const) {
    add('top-level', `global-${id}`, g(text, { message: /must contain a mapping/ }));
  }
  add('top-level', 'user-list', u('- user: demo\n', { message: /must contain a mapping/ }));
  add('top-level', 'user-json-array', { files: { 'users/x.json': '[1, 2]' }, badFile: 'users/x.json', message: /must contain a mapping/ });

  // Folder layout.
  add('layout', 'no-global-file', { files: { 'global.yaml': null }, badFile: 'global.yaml', message: /missing/ });
  add('layout', 'two-global-files', { files: { 'global.yml': GOOD_GLOBAL }, badFile: 'global.yml', message: /several global/ });
  add('layout', 'users-is-a-file', { files: { 'users/demo.yaml': null, users: 'not a folder' }, badFile: 'users', message: /must be a folder/ });
  add('layout', 'symlinked-user-file', { files: { 'users/evil.yaml': { symlink: '/etc/passwd' } }, badFile: 'users/evil.yaml', message: /symbolic link/ });
  add('layout', 'symlinked-global', { files: { 'global.yaml': { symlink: 'users/demo.yaml' } }, badFile: 'global.yaml', message: /symbolic link/ });
  add('layout', 'global-is-a-folder', { files: { 'global.yaml': { dir: true } }, badFile: 'global.yaml' });

  // Size.
  add('size', 'global-over-1MiB', g(`${GOOD_GLOBAL}# ${'x'.repeat(1024 * 1024)}\n`, { message: /1 MiB/ }));
  add('size', 'user-over-1MiB', u(`${GOOD_USER}# ${'y'.repeat(1024 * 1024)}\n`, { message: /1 MiB/ }));

  // Resource exhaustion: aliases, nesting, key counts. Each runs alone in a fresh process, under a deadline.
  const laughs = (prefix: string) => {
    let s = `${prefix}a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n`;
    const L = 'abcdefghi';
    for (let i = 1; i < L.length; i++) s += `${prefix}${L[i]}: &${L[i]} [${Array(9).fill(`*${L[i - 1]}`).join(',')}]\n`;
    return s;
  };
  add('exhaustion', 'billion-laughs-global', g(laughs(''), { message: /alias/i, isolate: true }));
  add('exhaustion', 'billion-laughs-user', u(`user: demo\n${laughs('x_')}`, { message: /alias/i, isolate: true }));
  add('exhaustion', 'billion-laughs-in-rules-list', g(`x: &x [1,1,1,1,1,1,1,1,1,1]\ny: &y [*x,*x,*x,*x,*x,*x,*x,*x,*x,*x]\nz: &z [*y,*y,*y,*y,*y,*y,*y,*y,*y,*y]\nrules: [*z,*z,*z,*z,*z,*z,*z,*z,*z,*z]\n`, { isolate: true }));
  // Cycles: an alias inside its own anchor's node makes a circular value (the yaml parser builds it).
  add('cycles', 'alias-cycle-top-level-list', g('rules: &r [*r]\n', { isolate: true }));
  add('cycles', 'alias-cycle-unknown-key', g(`${GOOD_GLOBAL}a: &a { b: *a }\n`, { isolate: true }));
  add('cycles', 'alias-cycle-in-a-rule', g(rule(', next: &x { again: *x }'), { isolate: true }));
  add('cycles', 'alias-cycle-in-a-device', u('user: demo\ndevices:\n  lobby: &l { exclude: [cat], also: *l }\n', { isolate: true }));
  add('cycles', 'alias-cycle-user-rules', u('user: demo\nrules: &r [100, *r]\n', { isolate: true }));
  add('exhaustion', 'alias-120-times', g(`x: &x 1\nrules: [${Array(120).fill('*x').join(',')}]\n`, { message: /alias/i, isolate: true }));
  add('exhaustion', 'nested-flow-5000', g(`${'['.repeat(5000)}${']'.repeat(5000)}`, { isolate: true }));
  add('exhaustion', 'nested-flow-map-in-rules-20000', g(`rules: ${'{a: '.repeat(20_000)}1${'}'.repeat(20_000)}`, { isolate: true }));
  let block = '';
  for (let i = 0; i < 1000; i++) block += `${' '.repeat(i)}k${i}:\n`;
  add('exhaustion', 'nested-block-1000', g(block, { isolate: true }));
  add('exhaustion', 'nested-flow-two-files', {
    files: { 'global.yaml': `${'['.repeat(5000)}${']'.repeat(5000)}`, 'users/demo.yaml': `${'['.repeat(100_000)}${']'.repeat(100_000)}` },
    badFile: 'users/demo.yaml',
    isolate: true,
  });
  add('exhaustion', 'thirty-thousand-keys', g(Array.from({ length: 30_000 }, (_, i) => `k${i}: ${i}`).join('\n'), { isolate: true }));
  return cases;
}

/** Per-case deadline for a rule check in the child process (a 1 MiB file must not take longer). */
export const RULE_CASE_DEADLINE_MS = 6000;

// ---------------------------------------------------------------------------------------------------
// Child process: `node --import tsx test/helpers/corpus.ts --check-rules <dir>…`
// Prints one JSON line `{start}` before and one `{dir, …}` after each check, so the parent can tell which
// case crashed or hung the process.
// ---------------------------------------------------------------------------------------------------

/** What the child reports for one rules folder. */
export interface RuleCheckReport {
  dir: string;
  ms: number;
  ok?: boolean;
  errorCount?: number;
  errors?: { file: string; path: string; line?: number; message: string }[];
  threw?: string;
}

async function checkRulesChild(dirs: string[]): Promise<void> {
  const emit = (o: unknown) => process.stdout.write(`${JSON.stringify(o)}\n`);
  for (const dir of dirs) {
    emit({ start: dir });
    const t0 = performance.now();
    let report: RuleCheckReport;
    try {
      const r = await checkRules(dir);
      report = { dir, ms: Math.round(performance.now() - t0), ok: r.ok, errorCount: r.errors.length, errors: r.errors.slice(0, 50).map((e) => ({ file: e.file, path: e.path, ...(e.line !== undefined ? { line: e.line } : {}), message: e.message.slice(0, 2000) })) };
    } catch (err) {
      report = { dir, ms: Math.round(performance.now() - t0), threw: err instanceof Error ? `${err.name}: ${err.message}` : String(err) };
    }
    emit(report);
  }
}

const isMain = process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain && process.argv[2] === '--check-rules') {
  checkRulesChild(process.argv.slice(3)).catch((err: unknown) => {
    console.error(err);
    process.exitCode = 2;
  });
}
