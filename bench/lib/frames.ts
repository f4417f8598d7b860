/**
 * Distinct camera-like frames for the benchmarks, made from the shared fixture photos: each frame
 * is a different crop of a fixture, resized to 1280x720 (a common camera resolution) and
 * re-encoded as JPEG at a quality between 72 and 92, so every frame has distinct bytes (identical
 * bytes would dedupe in the object store). Frames are cached on disk, so reruns are fast.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { FIXTURES_DIR } from './paths.js';
import { seededRandom as rng } from '../../lib/seededRandom.js';

/** Fixtures used for frames (truncated.jpg is not a photo). chelsea.png is the cat. */
export const FIXTURE_FILES = ['chelsea.png', 'astronaut.png', 'coffee.png', 'home.jpg', 'messi5.jpg', 'motorcycle_left.png', 'rocket.jpg', 'camera.png'] as const;

/** The fixture in which YOLOv8n sees a cat (score > 0.8): it fires the "animals" rule. */
export const CAT_FIXTURE = 'chelsea.png';

/** Which frames a pool holds: `mixed` cycles through every fixture, `cat` only the cat. */
export type FramePool = 'mixed' | 'cat';

/** One generated frame. */
export interface BenchFrame {
  pool: FramePool;
  index: number;
  fixture: string;
  /** True when the frame shows the cat (it should raise an alert). */
  cat: boolean;
  bytes: Buffer;
  sha256: string;
}

const VERSION = 'v2';
const WIDTH = 1280;
const HEIGHT = 720;


const metaCache = new Map<string, { width: number; height: number }>();

async function fixtureSize(file: string): Promise<{ width: number; height: number }> {
  let m = metaCache.get(file);
  if (!m) {
    const meta = await sharp(path.join(FIXTURES_DIR, file)).metadata();
    m = { width: meta.width ?? 0, height: meta.height ?? 0 };
    metaCache.set(file, m);
  }
  return m;
}

/** Renders frame `index` of a pool (a crop of 85-100 % of the fixture, 94-100 % for the cat; 1280x720, JPEG q72-92). */
async function render(pool: FramePool, index: number): Promise<{ fixture: string; bytes: Buffer }> {
  const fixture = pool === 'cat' ? CAT_FIXTURE : FIXTURE_FILES[index % FIXTURE_FILES.length]!;
  const r = rng((pool === 'cat' ? 0x5eed0000 : 0x00c0ffee) + index * 7919);
  const { width, height } = await fixtureSize(fixture);
  // The cat stays whole (a tighter crop can cut it and drop the detector's score under the rule's).
  const scale = pool === 'cat' ? 0.94 + 0.06 * r() : 0.85 + 0.15 * r();
  const w = Math.max(64, Math.floor(width * scale));
  const h = Math.max(64, Math.floor(height * scale));
  const left = Math.floor((width - w) * r());
  const top = Math.floor((height - h) * r());
  const quality = 72 + Math.floor(21 * r());
  const bytes = await sharp(path.join(FIXTURES_DIR, fixture))
    .extract({ left, top, width: w, height: h })
    .resize(WIDTH, HEIGHT, { fit: 'cover' })
    .modulate({ brightness: 0.92 + 0.16 * r() })
    .toColourspace('srgb')
    .jpeg({ quality, mozjpeg: false })
    .toBuffer();
  return { fixture, bytes };
}

/**
 * Frames `[from, from + count)` of a pool, generated once and cached under `cacheDir`.
 * Every frame of every pool has distinct bytes.
 */
export async function benchFrames(cacheDir: string, pool: FramePool, from: number, count: number): Promise<BenchFrame[]> {
  const dir = path.join(cacheDir, `frames-${VERSION}`, pool);
  mkdirSync(dir, { recursive: true });
  const out: BenchFrame[] = [];
  for (let i = from; i < from + count; i++) {
    const file = path.join(dir, `${String(i).padStart(5, '0')}.jpg`);
    const fixture = pool === 'cat' ? CAT_FIXTURE : FIXTURE_FILES[i % FIXTURE_FILES.length]!;
    let bytes: Buffer;
    if (existsSync(file)) {
      bytes = readFileSync(file);
    } else {
      bytes = (await render(pool, i)).bytes;
      const tmp = `${file}.${process.pid}.tmp`;
      writeFileSync(tmp, bytes);
      renameSync(tmp, file);
    }
    out.push({ pool, index: i, fixture, cat: fixture === CAT_FIXTURE, bytes, sha256: createHash('sha256').update(bytes).digest('hex') });
  }
  return out;
}

/**
 * Frames alternating between the cat pool and the mixed pool (for latency runs: every other frame
 * raises an alert). Uses cat frames `[catFrom, …)` and mixed frames `[mixedFrom, …)`.
 */
export async function alternatingFrames(cacheDir: string, count: number, catFrom: number, mixedFrom: number): Promise<BenchFrame[]> {
  const cats = await benchFrames(cacheDir, 'cat', catFrom, Math.ceil(count / 2));
  const mixed = await benchFrames(cacheDir, 'mixed', mixedFrom, Math.floor(count / 2));
  const out: BenchFrame[] = [];
  for (let i = 0; i < count; i++) out.push(i % 2 === 0 ? cats[i / 2]! : mixed[(i - 1) / 2]!);
  return out;
}

/**
 * A variant of a JPEG with distinct bytes and identical pixels: a COM (comment) segment carrying
 * `tag` is inserted right after the SOI marker. Cheap enough to make thousands per second for
 * the ingest load test.
 */
export function uniqueJpeg(jpeg: Buffer, tag: string): Buffer {
  if (jpeg[0] !== 0xff || jpeg[1] !== 0xd8) throw new Error('not a JPEG');
  const text = Buffer.from(tag, 'latin1');
  const seg = Buffer.alloc(4 + text.length);
  seg[0] = 0xff;
  seg[1] = 0xfe;
  seg.writeUInt16BE(text.length + 2, 2);
  text.copy(seg, 4);
  return Buffer.concat([jpeg.subarray(0, 2), seg, jpeg.subarray(2)]);
}

/** A truncated copy of a frame (fails validation as `truncated`). */
export function truncatedJpeg(jpeg: Buffer, keep = 0.6): Buffer {
  return jpeg.subarray(0, Math.floor(jpeg.length * keep));
}

/** A uniform grey 1280x720 JPEG (fails validation as `blank`: a camera fault). `shade` makes bytes distinct. */
export async function blankJpeg(shade: number): Promise<Buffer> {
  const v = 100 + (shade % 100);
  return sharp({ create: { width: WIDTH, height: HEIGHT, channels: 3, background: { r: v, g: v, b: v } } }).jpeg({ quality: 80 }).toBuffer();
}
