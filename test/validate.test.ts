/**
 * Validate-and-standardize stage: real images through real sharp, no mocks.
 * Bad inputs are generated here at run time.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import sharp, { type OverlayOptions } from 'sharp';
import { isVigilError } from '../lib/errors.js';
import {
  classifyLuma,
  defaultValidateConfig,
  isCameraFault,
  InvalidReasonSchema,
  loadValidateConfig,
  lumaStats,
  edgeStats,
  parseValidateConfig,
  scanContainer,
  sniffFormat,
  toValidationReport,
  validateFrame,
  ValidationOutcomeSchema,
  ValidationReportSchema,
  type ValidateConfig,
  type ValidationOutcome,
} from '../validate/index.js';

const FIXTURES = path.resolve(import.meta.dirname, 'fixtures/images');
const GOOD = [
  'astronaut.png',
  'camera.png',
  'chelsea.png',
  'coffee.png',
  'home.jpg',
  'messi5.jpg',
  'motorcycle_left.png',
  'rocket.jpg',
];

const fixture = (name: string): Promise<Buffer> => readFile(path.join(FIXTURES, name));
const cfg = (over: Record<string, unknown> = {}): ValidateConfig => parseValidateConfig(over);

/** Asserts a refusal and returns it, typed. */
function refused(outcome: ValidationOutcome, reason: string) {
  assert.equal(outcome.ok, false, `expected refusal '${reason}', got ok`);
  if (outcome.ok) throw new Error('unreachable');
  assert.equal(outcome.reason, reason, `expected '${reason}', got '${outcome.reason}': ${outcome.message}`);
  assert.equal(outcome.cameraFault, isCameraFault(outcome.reason));
  assert.doesNotMatch(outcome.message, /\n/);
  assert.ok(ValidationOutcomeSchema.safeParse(outcome).success, 'refusal matches its schema');
  return outcome;
}

/** Asserts acceptance and returns it, typed. */
function accepted(outcome: ValidationOutcome) {
  if (!outcome.ok) assert.fail(`expected ok, got ${outcome.reason}: ${outcome.message}`);
  assert.ok(ValidationOutcomeSchema.safeParse(outcome).success, 'outcome matches its schema');
  return outcome;
}

/** Deterministic pseudo-random bytes (xorshift32). */
function pseudoRandom(n: number, seed = 0x9e3779b9): Buffer {
  const out = Buffer.alloc(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

/** Uniform RGB image. */
function solid(width: number, height: number, v: number, format: 'png' | 'jpeg' = 'png'): Promise<Buffer> {
  const img = sharp({ create: { width, height, channels: 3, background: { r: v, g: v, b: v } } });
  return (format === 'png' ? img.png() : img.jpeg()).toBuffer();
}

/** Greyscale PNG whose luma is `f(x, y)`. */
function grayFrom(width: number, height: number, f: (x: number, y: number) => number): Promise<Buffer> {
  const data = Buffer.alloc(width * height);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data[y * width + x] = f(x, y);
  return sharp(data, { raw: { width, height, channels: 1 } }).png().toBuffer();
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(buf: Buffer): number {
  let c = 0xffffffff;
  for (const b of buf) c = (CRC_TABLE[(c ^ b) & 0xff] as number) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function pngChunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}
/**
 * A tiny hand-made PNG whose IHDR declares `width`×`height` (8-bit greyscale) but whose IDAT holds only
 * a few rows: a decoder that went past the header would fail with truncated/corrupt, not a size reason.
 */
function pngHeaderOnly(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 0; // greyscale
  const rows = zlib.deflateSync(Buffer.alloc((width + 1) * 2));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', rows),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

async function assertStandardJpeg(image: Buffer, maxDimension: number) {
  const m = await sharp(image).metadata();
  assert.equal(m.format, 'jpeg');
  assert.equal(m.space, 'srgb');
  assert.equal(m.channels, 3);
  assert.equal(m.depth, 'uchar');
  assert.ok(m.width <= maxDimension && m.height <= maxDimension, `${m.width}x${m.height} > ${maxDimension}`);
  assert.equal(m.exif, undefined, 'no EXIF');
  assert.equal(m.icc, undefined, 'no ICC profile');
  assert.equal(m.xmp, undefined, 'no XMP');
  assert.equal(m.iptc, undefined, 'no IPTC');
  assert.equal(m.orientation, undefined, 'no orientation tag');
  return m;
}

test('every real fixture passes and comes out as a standard JPEG within maxDimension', async () => {
  for (const name of GOOD) {
    const bytes = await fixture(name);
    const src = await sharp(bytes).metadata();
    const out = accepted(await validateFrame(bytes, defaultValidateConfig));
    const m = await assertStandardJpeg(out.image, defaultValidateConfig.output.maxDimension);
    const { summary } = out;
    assert.equal(summary.format, name.endsWith('.png') ? 'png' : 'jpeg', name);
    assert.deepEqual([summary.width, summary.height], [src.width, src.height], `${name}: source dims`);
    // all fixtures are under 1280 px: never enlarged, so output keeps the source size
    assert.deepEqual([summary.outWidth, summary.outHeight], [src.width, src.height], `${name}: not resized`);
    assert.deepEqual([m.width, m.height], [summary.outWidth, summary.outHeight]);
    assert.equal(summary.outBytes, out.image.length);
    assert.ok(summary.stats.stdDev > defaultValidateConfig.contrast.minStdDev, name);
    assert.deepEqual(summary.warnings, [], name);
    // the summary is the serialisable part
    const report = toValidationReport(out);
    assert.deepEqual(ValidationReportSchema.parse(JSON.parse(JSON.stringify(report))), report);
  }
});

test('large frames are shrunk to fit inside output.maxDimension, keeping aspect ratio', async () => {
  const bytes = await fixture('motorcycle_left.png'); // 741x500
  const out = accepted(await validateFrame(bytes, cfg({ output: { maxDimension: 256, quality: 80 } })));
  assert.deepEqual([out.summary.width, out.summary.height], [741, 500]);
  assert.equal(out.summary.outWidth, 256);
  assert.ok(Math.abs(out.summary.outHeight - (256 * 500) / 741) <= 1);
  await assertStandardJpeg(out.image, 256);

  const tall = await sharp(await fixture('coffee.png')).rotate(90).png().toBuffer(); // 400x600
  const t = accepted(await validateFrame(tall, cfg({ output: { maxDimension: 300 } })));
  assert.deepEqual([t.summary.outWidth, t.summary.outHeight], [200, 300]);
});

test('truncated.jpg fixture is refused as truncated', async () => {
  const out = refused(await validateFrame(await fixture('truncated.jpg'), defaultValidateConfig), 'truncated');
  assert.equal(out.cameraFault, false);
  assert.match(out.message, /truncated/);
});

test('JPEG, PNG and WebP cut short anywhere are refused as truncated', async () => {
  const jpeg = await fixture('home.jpg');
  const png = await fixture('coffee.png');
  const webp = await sharp(await fixture('chelsea.png')).webp({ quality: 80 }).toBuffer();
  for (const [name, full] of [['jpeg', jpeg], ['png', png], ['webp', webp]] as const) {
    for (const frac of [0.01, 0.1, 0.5, 0.9, 0.99]) {
      const cut = full.subarray(0, Math.max(16, Math.floor(full.length * frac)));
      const out = await validateFrame(cut, defaultValidateConfig);
      refused(out, 'truncated');
      assert.ok(!out.ok && out.message.startsWith(`${name} frame is truncated`), `${name} @${frac}: ${!out.ok && out.message}`);
    }
  }
});

test('JPEG with damaged entropy-coded data mid-stream is refused as corrupt', async () => {
  const jpeg = Buffer.from(await fixture('home.jpg'));
  const at = Math.floor(jpeg.length / 2);
  pseudoRandom(400, 7).copy(jpeg, at);
  refused(await validateFrame(jpeg, defaultValidateConfig), 'corrupt');
  // a lenient decoder setting lets the smeared frame through (documented trade-off of `failOn`)
  accepted(await validateFrame(jpeg, cfg({ failOn: 'error' })));
});

test('zero bytes are refused as empty', async () => {
  const out = refused(await validateFrame(Buffer.alloc(0), defaultValidateConfig), 'empty');
  assert.equal(out.cameraFault, false);
});

test('random bytes are refused as unsupported_format', async () => {
  refused(await validateFrame(pseudoRandom(5000), defaultValidateConfig), 'unsupported_format');
  refused(await validateFrame(Buffer.from('hello, this is not an image'), defaultValidateConfig), 'unsupported_format');
});

test('a known signature followed by garbage is refused as corrupt or truncated, never accepted', async () => {
  const pngSig = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  for (const head of [Buffer.from([0xff, 0xd8, 0xff]), pngSig, Buffer.from('RIFF\x10\x27\x00\x00WEBPVP8 ', 'latin1')]) {
    const out = await validateFrame(Buffer.concat([head, pseudoRandom(10_000, 3)]), defaultValidateConfig);
    assert.equal(out.ok, false);
    assert.ok(!out.ok && ['corrupt', 'truncated'].includes(out.reason), !out.ok ? out.reason : '');
  }
});

test('a 16x16 image is refused as too_small', async () => {
  const out = refused(await validateFrame(await grayFrom(16, 16, (x, y) => (x * 16 + y) % 256), defaultValidateConfig), 'too_small');
  assert.match(out.message, /16x16/);
});

test('an all-black 640x480 frame is black and a camera fault', async () => {
  for (const format of ['png', 'jpeg'] as const) {
    const out = refused(await validateFrame(await solid(640, 480, 0, format), defaultValidateConfig), 'black');
    assert.equal(out.cameraFault, true);
    assert.ok(out.stats !== undefined && out.stats.mean < 1 && out.stats.stdDev < 1);
  }
});

test('a noisy dark frame (covered lens, sensor noise) is black too', async () => {
  const bytes = await grayFrom(640, 480, (x, y) => 4 + ((x * 7 + y * 13) % 7)); // 4..10
  const out = refused(await validateFrame(bytes, defaultValidateConfig), 'black');
  assert.equal(out.cameraFault, true);
});

test('a uniform grey (128) frame is blank and a camera fault', async () => {
  const out = refused(await validateFrame(await solid(640, 480, 128), defaultValidateConfig), 'blank');
  assert.equal(out.cameraFault, true);
  assert.ok(out.stats !== undefined && Math.abs(out.stats.mean - 128) < 1);
});

test('a very low-contrast frame is low_contrast, not a camera fault', async () => {
  // a smooth 118..128 gradient (std dev ≈ 2.9): fog-like; survives the stats downscale, unlike pixel noise
  const bytes = await grayFrom(640, 480, (x) => 118 + Math.round((10 * x) / 639));
  const out = refused(await validateFrame(bytes, defaultValidateConfig), 'low_contrast');
  assert.equal(out.cameraFault, false);
  assert.ok(out.stats !== undefined && out.stats.stdDev > 2 && out.stats.stdDev < 6, JSON.stringify(out.stats));
  // 120..124 per-pixel noise averages out on the stats copy and reads as uniform: blank
  const noise = pseudoRandom(640 * 480, 11);
  const flat = await grayFrom(640, 480, (x, y) => 120 + ((noise[y * 640 + x] as number) % 5));
  refused(await validateFrame(flat, defaultValidateConfig), 'blank');
});

/** A black 640x480 frame with an on-screen display: a line of 24 white glyph-sized blocks at `top`, as cameras draw the time. */
async function blackWithOverlay(top: number, format: 'png' | 'jpeg' = 'png', extra: OverlayOptions[] = []): Promise<Buffer> {
  const glyph = await sharp({ create: { width: 8, height: 14, channels: 3, background: '#ffffff' } }).png().toBuffer();
  const osd = Array.from({ length: 24 }, (_, i) => ({ input: glyph, left: 12 + i * 11, top }));
  const img = sharp({ create: { width: 640, height: 480, channels: 3, background: '#000000' } }).composite([...osd, ...extra]);
  return (format === 'png' ? img.png() : img.jpeg()).toBuffer();
}

test('a black frame with the time drawn over it (top or bottom edge) is black and a camera fault', async () => {
  for (const [top, format] of [[10, 'png'], [450, 'jpeg']] as const) {
    const out = refused(await validateFrame(await blackWithOverlay(top, format), defaultValidateConfig), 'black');
    assert.equal(out.cameraFault, true);
    assert.match(out.message, /but for a line at its top or bottom edge/);
    assert.ok(out.stats !== undefined && out.stats.stdDev >= defaultValidateConfig.contrast.minStdDev, 'the overlay alone breaks the whole-frame test');
  }
  // The same line in the middle of the frame is scene structure: not refused.
  accepted(await validateFrame(await blackWithOverlay(240), defaultValidateConfig));
  // Nor is a night scene with the time drawn over it and a lamp in view.
  const lamp = await sharp({ create: { width: 60, height: 100, channels: 3, background: { r: 200, g: 180, b: 120 } } }).png().toBuffer();
  accepted(await validateFrame(await blackWithOverlay(10, 'jpeg', [{ input: lamp, left: 300, top: 100 }]), defaultValidateConfig));
  // Nor a night scene lit only along an edge: a street lamp at the top, a porch-lit strip at the bottom.
  const dark = (extra: OverlayOptions[]) => sharp({ create: { width: 640, height: 480, channels: 3, background: { r: 3, g: 3, b: 3 } } }).composite(extra).jpeg().toBuffer();
  const streetLamp = await sharp({ create: { width: 120, height: 50, channels: 3, background: { r: 230, g: 220, b: 160 } } }).png().toBuffer();
  const porch = await sharp({ create: { width: 640, height: 50, channels: 3, background: { r: 55, g: 55, b: 55 } } }).png().toBuffer();
  accepted(await validateFrame(await dark([{ input: streetLamp, left: 260, top: 0 }]), defaultValidateConfig));
  accepted(await validateFrame(await dark([{ input: porch, left: 0, top: 430 }]), defaultValidateConfig));
});

test('a dark night scene with real structure passes', async () => {
  const dark = sharp({ create: { width: 640, height: 480, channels: 3, background: { r: 3, g: 3, b: 3 } } });
  const lamp = await sharp({ create: { width: 60, height: 100, channels: 3, background: { r: 200, g: 180, b: 120 } } })
    .png()
    .toBuffer();
  const bytes = await dark.composite([{ input: lamp, left: 300, top: 100 }]).jpeg().toBuffer();
  const out = accepted(await validateFrame(bytes, defaultValidateConfig));
  assert.ok(out.summary.stats.mean < defaultValidateConfig.contrast.blackMean, 'mean is dark');
});

test('a PNG header declaring 20000x20000 is refused as too_many_pixels without decoding', async () => {
  const bomb = pngHeaderOnly(20000, 20000);
  assert.ok(bomb.length < 1000);
  const t0 = performance.now();
  const out = refused(await validateFrame(bomb, defaultValidateConfig), 'too_many_pixels');
  assert.ok(performance.now() - t0 < 2000, 'refused from the header');
  assert.equal(out.cameraFault, false);
  // a larger pixel budget then the dimension limit still refuses it from the header
  refused(await validateFrame(bomb, cfg({ maxPixels: 500_000_000 })), 'too_wide');
  // explicit count check when the header is within sharp's limit but over ours
  refused(await validateFrame(pngHeaderOnly(8000, 6000), defaultValidateConfig), 'too_many_pixels');
});

test('dimensions over maxWidth/maxHeight are refused as too_wide from the header', async () => {
  refused(await validateFrame(pngHeaderOnly(9000, 100), defaultValidateConfig), 'too_wide');
  refused(await validateFrame(pngHeaderOnly(100, 9000), defaultValidateConfig), 'too_wide');
  refused(await validateFrame(await fixture('coffee.png'), cfg({ maxWidth: 500 })), 'too_wide');
});

/** Two-frame animation in the given format, from real image content. */
async function animation(format: 'gif' | 'webp'): Promise<Buffer> {
  const frames = await Promise.all(
    [0, 100].map((left) =>
      fixture('coffee.png').then((b) => sharp(b).extract({ left, top: 0, width: 200, height: 150 }).raw().toBuffer()),
    ),
  );
  const img = sharp(Buffer.concat(frames), { raw: { width: 200, height: 300, channels: 3, pageHeight: 150 } });
  return (format === 'gif' ? img.gif() : img.webp()).toBuffer();
}

test('an animated GIF is refused (unsupported_format); an animated WebP as animated', async () => {
  const gif = await animation('gif');
  assert.equal((await sharp(gif).metadata()).pages, 2);
  refused(await validateFrame(gif, defaultValidateConfig), 'unsupported_format');

  const webp = await animation('webp');
  assert.equal((await sharp(webp).metadata()).pages, 2);
  const out = refused(await validateFrame(webp, defaultValidateConfig), 'animated');
  assert.match(out.message, /2 frames/);

  const first = accepted(await validateFrame(webp, cfg({ allowAnimated: true })));
  assert.deepEqual([first.summary.outWidth, first.summary.outHeight], [200, 150]);
  assert.ok(first.summary.warnings.some((w) => w.startsWith('animated_first_frame:')));
});

test('TIFF, AVIF, SVG and still GIF are refused as unsupported_format before any decoder sees them', async () => {
  const base = sharp(await fixture('chelsea.png'));
  const tiff = await base.clone().tiff().toBuffer();
  const avif = await base.clone().resize(128).avif({ effort: 0 }).toBuffer();
  const gif = await base.clone().gif().toBuffer();
  const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="640" height="480"><rect width="640" height="480" fill="red"/></svg>');
  for (const [name, bytes] of [['tiff', tiff], ['avif', avif], ['gif', gif], ['svg', svg]] as const) {
    const out = refused(await validateFrame(bytes, defaultValidateConfig), 'unsupported_format');
    assert.match(out.message, new RegExp(`format ${name} is not accepted`));
  }
  // formats can be narrowed
  refused(await validateFrame(await fixture('coffee.png'), cfg({ formats: ['jpeg'] })), 'unsupported_format');
});

test('EXIF orientation 6 is applied; EXIF, GPS and orientation are stripped', async () => {
  // stored 200x100: left half red, right half blue; orientation 6 = display rotated 90° clockwise
  const red = await sharp({ create: { width: 100, height: 100, channels: 3, background: '#ff0000' } }).png().toBuffer();
  const bytes = await sharp({ create: { width: 200, height: 100, channels: 3, background: '#0000ff' } })
    .composite([{ input: red, left: 0, top: 0 }])
    .jpeg()
    .withExif({
      IFD0: { Make: 'VigilCam', Model: 'Test', Orientation: '6' },
      IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '51/1 30/1 0/1', GPSMapDatum: 'WGS-84' },
    })
    .withMetadata({ orientation: 6 })
    .toBuffer();
  const src = await sharp(bytes).metadata();
  assert.equal(src.orientation, 6);
  assert.ok(src.exif !== undefined && src.exif.includes('VigilCam'));
  assert.ok(src.exif.includes('WGS-84'), 'source has GPS');
  assert.deepEqual([src.width, src.height], [200, 100]);

  const out = accepted(await validateFrame(bytes, defaultValidateConfig));
  assert.deepEqual([out.summary.width, out.summary.height], [100, 200], 'source dims after orientation');
  assert.deepEqual([out.summary.outWidth, out.summary.outHeight], [100, 200]);
  const m = await assertStandardJpeg(out.image, 1280);
  assert.deepEqual([m.width, m.height], [100, 200], 'rotated: width/height swapped');
  assert.equal(out.image.includes('Exif'), false);
  assert.equal(out.image.includes('VigilCam'), false);
  assert.equal(out.image.includes('WGS-84'), false, 'no GPS');
  // rotated clockwise: the stored left (red) half is now on top
  const { data } = await sharp(out.image).raw().toBuffer({ resolveWithObject: true });
  const px = (x: number, y: number) => [...data.subarray((y * 100 + x) * 3, (y * 100 + x) * 3 + 3)];
  const [tr, , tb] = px(50, 50) as [number, number, number];
  const [br, , bb] = px(50, 150) as [number, number, number];
  assert.ok(tr > 200 && tb < 60, `top is red: ${px(50, 50)}`);
  assert.ok(br < 60 && bb > 200, `bottom is blue: ${px(50, 150)}`);
});

test('CMYK JPEG, 16-bit PNG, greyscale, ICC-tagged and alpha inputs come out as 3-channel sRGB JPEG', async () => {
  const coffee = await fixture('coffee.png');
  const cmyk = await sharp(coffee).toColourspace('cmyk').jpeg().toBuffer();
  const png16 = await sharp(coffee).toColourspace('rgb16').png().toBuffer();
  const greyJpeg = await sharp(coffee).toColourspace('b-w').jpeg().toBuffer();
  const alpha = await sharp(coffee).ensureAlpha(0.8).png().toBuffer();
  const cases = [
    ['cmyk', cmyk, { space: 'cmyk', channels: 4 }],
    ['16-bit', png16, { depth: 'ushort' }],
    ['grey jpeg', greyJpeg, { channels: 1 }],
    ['grey png', await fixture('camera.png'), { channels: 1 }],
    ['icc', await fixture('rocket.jpg'), { hasProfile: true }],
    ['alpha', alpha, { hasAlpha: true }],
  ] as const;
  for (const [name, bytes, expectSrc] of cases) {
    const src = await sharp(bytes).metadata();
    for (const [k, v] of Object.entries(expectSrc)) assert.equal(src[k as keyof typeof src], v, `${name} source ${k}`);
    const out = accepted(await validateFrame(bytes, defaultValidateConfig));
    await assertStandardJpeg(out.image, 1280);
    assert.equal(out.summary.warnings.some((w) => w.startsWith('alpha_flattened:')), name === 'alpha', name);
  }
});

test('bytes over maxBytes are refused as too_large', async () => {
  const bytes = await fixture('home.jpg');
  const out = refused(await validateFrame(bytes, cfg({ maxBytes: 10_000 })), 'too_large');
  assert.match(out.message, new RegExp(`${bytes.length} bytes`));
  accepted(await validateFrame(bytes, cfg({ maxBytes: bytes.length })));
});

test('a valid image with trailing garbage is accepted, with a trailing_bytes warning', async () => {
  // Cameras and some uploaders pad or append vendor data after the image: the pixels are complete, so accept.
  const garbage = Buffer.from('VENDOR-TRAILER '.repeat(20));
  for (const name of ['home.jpg', 'chelsea.png']) {
    const bytes = Buffer.concat([await fixture(name), garbage]);
    const out = accepted(await validateFrame(bytes, defaultValidateConfig));
    assert.ok(
      out.summary.warnings.includes(`trailing_bytes: ${garbage.length} bytes after the end of the ${name.endsWith('.png') ? 'png' : 'jpeg'} image were ignored`),
      out.summary.warnings.join('; '),
    );
    await assertStandardJpeg(out.image, 1280);
  }
});

test('programmer errors throw: bytes must be a Buffer', async () => {
  await assert.rejects(
    () => validateFrame('not bytes' as unknown as Buffer, defaultValidateConfig),
    (err: unknown) => isVigilError(err, 'E_BAD_INPUT'),
  );
});

test('lumaStats and classifyLuma', () => {
  assert.deepEqual(lumaStats(Uint8Array.from([0, 0, 255, 255])), { mean: 127.5, stdDev: 127.5 });
  assert.deepEqual(lumaStats(Uint8Array.from([7, 7, 7])), { mean: 7, stdDev: 0 });
  assert.throws(() => lumaStats(new Uint8Array(0)), RangeError);
  const c = defaultValidateConfig.contrast;
  assert.equal(classifyLuma({ mean: 5, stdDev: 0 }, c)?.reason, 'black');
  assert.equal(classifyLuma({ mean: 5, stdDev: 5 }, c)?.reason, 'black');
  assert.equal(classifyLuma({ mean: 5, stdDev: 30 }, c), undefined, 'dark but structured');
  assert.equal(classifyLuma({ mean: 250, stdDev: 1 }, c)?.reason, 'blank');
  assert.equal(classifyLuma({ mean: 128, stdDev: 4 }, c)?.reason, 'low_contrast');
  assert.equal(classifyLuma({ mean: 128, stdDev: 6 }, c), undefined);
  // An overlay at an edge: dark and flat without the edges, dark overall, one line lit.
  const flat = { mean: 0.5, stdDev: 1 };
  assert.equal(classifyLuma({ mean: 3, stdDev: 25 }, c, { middle: flat, litRowShare: 0.04 })?.reason, 'black');
  assert.equal(classifyLuma({ mean: 3, stdDev: 25 }, c, { middle: { mean: 3, stdDev: 20 }, litRowShare: 0.04 }), undefined, 'structure in the middle');
  assert.equal(classifyLuma({ mean: 40, stdDev: 60 }, c, { middle: flat, litRowShare: 0.04 }), undefined, 'bright edges are scene, not an overlay');
  assert.equal(classifyLuma({ mean: 3, stdDev: 25 }, c, { middle: flat, litRowShare: 0.1 }), undefined, 'more than a line lit: a lamp or a window, scene');
  assert.equal(classifyLuma({ mean: 3, stdDev: 25 }, c), undefined, 'without edge statistics');
  // The middle rows leave out the top and bottom OVERLAY_BAND; lit rows are counted per band.
  const rows = (v: number[]) => Uint8Array.from(v.flatMap((x) => [x, x]));
  assert.deepEqual(edgeStats(rows([255, 0, 0, 0, 0, 0, 0, 0, 0, 255]), 2, 10, 12), { middle: { mean: 0, stdDev: 0 }, litRowShare: 0.1 });
  assert.deepEqual(edgeStats(rows([0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), 2, 10, 12).litRowShare, 0);
  assert.deepEqual(edgeStats(Uint8Array.from([9, 9]), 2, 1, 12), { middle: { mean: 9, stdDev: 0 }, litRowShare: 0 }, 'too short for bands');
});

test('reasons: every reason is known and only blank/black are camera faults', () => {
  assert.deepEqual(
    InvalidReasonSchema.options.filter((r) => isCameraFault(r)),
    ['blank', 'black'],
  );
  assert.equal(InvalidReasonSchema.options.length, 13, 'the 12 image reasons and bad_tags');
});

test('sniffFormat and scanContainer', async () => {
  const jpeg = await fixture('home.jpg');
  const png = await fixture('coffee.png');
  assert.equal(sniffFormat(jpeg), 'jpeg');
  assert.equal(sniffFormat(png), 'png');
  assert.equal(sniffFormat(Buffer.from('GIF89a......')), 'gif');
  assert.equal(sniffFormat(Buffer.from('<?xml version="1.0"?><svg></svg>')), 'svg');
  assert.equal(sniffFormat(Buffer.alloc(0)), 'unknown');
  assert.deepEqual(scanContainer(jpeg, 'jpeg'), { complete: true, trailingBytes: 0 });
  assert.deepEqual(scanContainer(png, 'png'), { complete: true, trailingBytes: 0 });
  assert.deepEqual(scanContainer(Buffer.concat([jpeg, Buffer.alloc(5)]), 'jpeg'), { complete: true, trailingBytes: 5 });
  assert.equal(scanContainer(jpeg.subarray(0, 1000), 'jpeg').complete, false);
  assert.equal(scanContainer(png.subarray(0, png.length - 1), 'png').complete, false);
  // progressive JPEG (several scans) and an EXIF thumbnail (a nested EOI) are walked correctly
  const progressive = await sharp(jpeg).jpeg({ progressive: true }).withExif({ IFD0: { Make: 'X' } }).toBuffer();
  assert.deepEqual(scanContainer(progressive, 'jpeg'), { complete: true, trailingBytes: 0 });
  const webp = await sharp(png).webp().toBuffer();
  assert.deepEqual(scanContainer(webp, 'webp'), { complete: true, trailingBytes: 0 });
});

test('config: defaults, partial files and nested defaults', async () => {
  assert.equal(defaultValidateConfig.maxBytes, 15 * 1024 * 1024);
  assert.deepEqual(defaultValidateConfig.formats, ['jpeg', 'png', 'webp']);
  assert.deepEqual(defaultValidateConfig.output, { maxDimension: 1280, format: 'jpeg', quality: 90, reencode: 'when_needed' });
  assert.deepEqual(defaultValidateConfig.contrast, { minStdDev: 6, blankStdDev: 2, blackMean: 12 });
  assert.equal(defaultValidateConfig.maxPixels, 40_000_000);
  assert.equal(defaultValidateConfig.allowAnimated, false);
  assert.ok(Object.isFrozen(defaultValidateConfig.output));
  assert.equal(await loadValidateConfig(), defaultValidateConfig);

  const dir = await mkdtemp(path.join(os.tmpdir(), 'vigil-validate-'));
  try {
    const file = path.join(dir, 'validate.json');
    await writeFile(file, JSON.stringify({ maxBytes: 1000, output: { quality: 70 } }));
    const c = await loadValidateConfig(file);
    assert.equal(c.maxBytes, 1000);
    assert.deepEqual(c.output, { maxDimension: 1280, format: 'jpeg', quality: 70, reencode: 'when_needed' });
    assert.deepEqual(c.contrast, defaultValidateConfig.contrast);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('config: bad files are E_CONFIG naming the file, the field and the reason', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'vigil-validate-'));
  const expectConfigError = async (content: string | undefined, ...patterns: RegExp[]) => {
    const file = path.join(dir, `c${Math.random().toString(36).slice(2)}.json`);
    if (content !== undefined) await writeFile(file, content);
    await assert.rejects(
      () => loadValidateConfig(file),
      (err: unknown) => {
        assert.ok(isVigilError(err, 'E_CONFIG'), String(err));
        assert.ok(err.message.includes(file), `names the file: ${err.message}`);
        for (const p of patterns) assert.match(err.message, p);
        assert.equal(err.detail?.['file'], file);
        return true;
      },
    );
  };
  try {
    await expectConfigError('{ "maxBytes": 10, ', /not valid JSON/);
    await expectConfigError(undefined, /cannot read/, /ENOENT/);
    await expectConfigError(JSON.stringify({ output: { quality: 500 } }), /output\.quality/, /100/);
    await expectConfigError(JSON.stringify({ maxBytes: 'big' }), /maxBytes/, /number/);
    await expectConfigError(JSON.stringify({ formats: ['jpeg', 'gif'] }), /formats\[1\]/);
    await expectConfigError(JSON.stringify({ maxbytes: 10 }), /maxbytes/, /[Uu]nrecognized/);
    await expectConfigError(JSON.stringify({ minWidth: 9000 }), /minWidth: must not exceed maxWidth/);
    await expectConfigError(JSON.stringify({ contrast: { blankStdDev: 10 } }), /contrast\.blankStdDev/);
    await expectConfigError('[]', /\(root\)/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a JPEG that already fits keeps its image data: metadata stripped losslessly, nothing re-encoded', async () => {
  const base = await sharp({ create: { width: 320, height: 200, channels: 3, background: '#336699' } })
    .composite([{ input: await sharp({ create: { width: 100, height: 80, channels: 3, background: '#ffcc00' } }).png().toBuffer(), left: 40, top: 30 }])
    .jpeg({ quality: 80 })
    .withExif({ IFD0: { Make: 'VigilCam', Model: 'Pass' }, IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '51/1 30/1 0/1', GPSMapDatum: 'WGS-84' } })
    .toBuffer();
  // a comment segment and vendor bytes after EOI, as some cameras write
  const withCom = Buffer.concat([base.subarray(0, 2), Buffer.from([0xff, 0xfe, 0x00, 0x0b]), Buffer.from('serial=42'), base.subarray(2), Buffer.from('VENDORTRAILER')]);
  const out = accepted(await validateFrame(withCom, defaultValidateConfig));
  assert.equal(out.summary.encoding, 'metadata_stripped');
  await assertStandardJpeg(out.image, 1280);
  for (const s of ['VigilCam', 'WGS-84', 'serial=42', 'VENDORTRAILER', 'Exif']) assert.equal(out.image.includes(s), false, `${s} removed`);
  assert.match(out.summary.warnings.join(' '), /trailing_bytes: 13 bytes/);
  // same pixels as the source, bit for bit: the entropy-coded data was copied, not re-encoded
  const a = await sharp(withCom).raw().toBuffer();
  const b = await sharp(out.image).raw().toBuffer();
  assert.ok(a.equals(b), 'decoded pixels identical');
  assert.ok(out.image.length < withCom.length);

  const always = accepted(await validateFrame(withCom, parseValidateConfig({ output: { reencode: 'always' } })));
  assert.equal(always.summary.encoding, 'reencoded');
  assert.equal(always.image.includes('VigilCam'), false);
  // what does not fit is re-encoded: too large, EXIF-rotated (above), PNG
  const big = await sharp({ create: { width: 1600, height: 900, channels: 3, background: '#808080' } }).composite([{ input: await sharp({ create: { width: 300, height: 300, channels: 3, background: '#000' } }).png().toBuffer(), left: 10, top: 10 }]).jpeg().toBuffer();
  const shrunk = accepted(await validateFrame(big, defaultValidateConfig));
  assert.deepEqual([shrunk.summary.encoding, shrunk.summary.outWidth], ['reencoded', 1280]);
  const png = accepted(await validateFrame(await fixture('chelsea.png'), defaultValidateConfig));
  assert.equal(png.summary.encoding, 'reencoded');
});

test('the lossless path still refuses corrupt data and blank frames', async () => {
  const good = await sharp({ create: { width: 320, height: 200, channels: 3, background: '#336699' } })
    .composite([{ input: await sharp({ create: { width: 100, height: 80, channels: 3, background: '#ffcc00' } }).png().toBuffer(), left: 40, top: 30 }])
    .jpeg({ quality: 80 })
    .toBuffer();
  // damage the entropy-coded data in the middle, keeping the marker structure (EOI still there)
  const bad = Buffer.from(good);
  const sos = bad.indexOf(Buffer.from([0xff, 0xda]));
  for (let i = sos + 40; i < sos + 200; i++) if (bad[i] !== 0xff && bad[i - 1] !== 0xff) bad[i] = (bad[i]! * 7 + 13) & 0x7f;
  const r = await validateFrame(bad, defaultValidateConfig);
  assert.equal(r.ok, false, 'corrupt scan data refused');
  const black = await sharp({ create: { width: 320, height: 200, channels: 3, background: '#000000' } }).jpeg().toBuffer();
  const rb = await validateFrame(black, defaultValidateConfig);
  assert.equal(rb.ok, false);
  assert.equal(!rb.ok && rb.reason, 'black');
});
