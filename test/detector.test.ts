/**
 * Detector tests: the real YOLOv8n model (fetched by `npm run setup`) on real photos, plus pure
 * unit tests of letterbox geometry, NMS and the YOLOv8 decoder on small synthetic tensors.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { isVigilError } from '../lib/errors.js';
import {
  COCO80_LABELS,
  DetectionResultSchema,
  Detector,
  decodeYolov8,
  iou,
  letterbox,
  letterboxGeometry,
  loadModelConfig,
  nms,
  nmsPerClass,
  PAD_VALUE,
  verifyModelFile,
  type DetectionResult,
  type ScoredBox,
} from '../detector/index.js';

const IMAGES = path.resolve(import.meta.dirname, 'fixtures/images');
const MODEL_JSON = path.resolve(import.meta.dirname, '../models/yolov8n.json');
const PINNED_SHA256 = '9697a185dd8eb7448aea4c979e10db2b4977f70a46687890ef796936c44a848b';
const ANIMALS = new Set(['bird', 'cat', 'dog', 'horse', 'sheep', 'cow', 'elephant', 'bear', 'zebra', 'giraffe']);

const image = (name: string): Promise<Buffer> => readFile(path.join(IMAGES, name));

/** Asserts `fn` rejects with a VigilError of `code`; returns it for further checks. */
async function rejectsWith(fn: () => Promise<unknown>, code: string): Promise<Error & { code: string }> {
  try {
    await fn();
  } catch (err) {
    assert.ok(isVigilError(err), `expected a VigilError, got ${String(err)}`);
    assert.equal(err.code, code, `expected ${code}, got ${err.code}: ${err.message}`);
    return err;
  }
  assert.fail(`expected rejection with ${code}`);
}

/** Structural checks every detection result must pass. */
function checkResult(r: DetectionResult, width: number, height: number): void {
  assert.deepEqual(DetectionResultSchema.parse(r), r);
  assert.deepEqual(r.model, { name: 'yolov8n', sha256: PINNED_SHA256 });
  assert.deepEqual(r.image, { width, height });
  assert.ok(r.objects.length <= 100);
  for (const [i, o] of r.objects.entries()) {
    assert.equal(o.class, COCO80_LABELS[o.classId]);
    assert.ok(o.score > 0.25 && o.score <= 1, `score ${o.score}`);
    if (i > 0) assert.ok(r.objects[i - 1]!.score >= o.score, 'sorted by score desc');
    const { x, y, width: w, height: h } = o.box;
    assert.ok(x >= 0 && y >= 0 && w > 0 && h > 0, `box ${JSON.stringify(o.box)}`);
    assert.ok(x + w <= width + 1e-6 && y + h <= height + 1e-6, `box ${JSON.stringify(o.box)} within ${width}x${height}`);
    for (const v of [x, y, w, h]) assert.equal(Math.round(v * 10) / 10, v, 'rounded to 0.1 px');
    assert.equal(Math.round(o.score * 1e4) / 1e4, o.score, 'score rounded to 4 decimals');
  }
  for (const t of Object.values(r.timingsMs)) assert.ok(t >= 0);
}

/** Best score of a class in a result (0 when absent). */
function best(r: DetectionResult, cls: string): number {
  return Math.max(0, ...r.objects.filter((o) => o.class === cls).map((o) => o.score));
}

describe('detector on the real YOLOv8n model', () => {
  let detector: Detector;
  let tmp: string;

  before(async () => {
    detector = await Detector.load(MODEL_JSON, { threads: Math.min(4, os.availableParallelism()) });
    tmp = await mkdtemp(path.join(os.tmpdir(), 'vigil-detector-test-'));
  });

  after(async () => {
    await detector?.release();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  test('model info is the pinned, verified model', () => {
    assert.deepEqual(detector.model, { name: 'yolov8n', sha256: PINNED_SHA256, inputSize: 640 });
  });

  test('chelsea.png: a cat with score >= 0.8', async () => {
    const r = await detector.detect(await image('chelsea.png'));
    checkResult(r, 451, 300);
    assert.ok(best(r, 'cat') >= 0.8, `cat score ${best(r, 'cat')}`);
    assert.equal(r.objects[0]?.class, 'cat');
  });

  for (const name of ['astronaut.png', 'camera.png', 'messi5.jpg']) {
    test(`${name}: a person`, async () => {
      const bytes = await image(name);
      const meta = await sharp(bytes).metadata();
      const r = await detector.detect(bytes);
      checkResult(r, meta.width, meta.height);
      assert.ok(best(r, 'person') > 0.5, `person score ${best(r, 'person')} in ${name}`);
    });
  }

  for (const name of ['coffee.png', 'rocket.jpg']) {
    test(`${name}: no person and no animal`, async () => {
      const bytes = await image(name);
      const meta = await sharp(bytes).metadata();
      const r = await detector.detect(bytes);
      checkResult(r, meta.width, meta.height);
      const bad = r.objects.filter((o) => o.class === 'person' || ANIMALS.has(o.class));
      assert.deepEqual(bad, [], `unexpected ${JSON.stringify(bad)}`);
    });
  }

  test('coffee.png: the cup is found where it is', async () => {
    const r = await detector.detect(await image('coffee.png'));
    const cup = r.objects.find((o) => o.class === 'cup');
    assert.ok(cup && cup.score > 0.8, JSON.stringify(r.objects));
    // The cup sits in the middle of the 600x400 photo.
    const cx = cup.box.x + cup.box.width / 2;
    const cy = cup.box.y + cup.box.height / 2;
    assert.ok(cx > 200 && cx < 400 && cy > 100 && cy < 300, JSON.stringify(cup.box));
  });

  test('EXIF orientation is applied: a rotated-by-tag JPEG gives swapped size and the same cat', async () => {
    const upright = await detector.detect(await image('chelsea.png'));
    // Store the cat rotated 90deg counter-clockwise, tagged orientation 6 (display rotated 90deg CW).
    const tagged = await sharp(await image('chelsea.png'))
      .rotate(-90)
      .jpeg({ quality: 95 })
      .withMetadata({ orientation: 6 })
      .toBuffer();
    const stored = await sharp(tagged).metadata();
    assert.deepEqual([stored.width, stored.height, stored.orientation], [300, 451, 6]);
    const r = await detector.detect(tagged);
    checkResult(r, 451, 300);
    const cat = r.objects.find((o) => o.class === 'cat');
    const ref = upright.objects.find((o) => o.class === 'cat');
    assert.ok(cat && ref && cat.score >= 0.8, JSON.stringify(r.objects));
    assert.ok(iou(toCorners(cat.box), toCorners(ref.box)) > 0.9, `${JSON.stringify(cat.box)} vs ${JSON.stringify(ref.box)}`);
  });

  test('truncated.jpg is rejected with E_BAD_INPUT', async () => {
    const bytes = await image('truncated.jpg');
    await rejectsWith(() => detector.detect(bytes), 'E_BAD_INPUT');
  });

  test('images cut mid-stream (JPEG and PNG) are refused, not partially decoded', async () => {
    for (const name of ['messi5.jpg', 'chelsea.png']) {
      const full = await image(name);
      const cut = full.subarray(0, Math.floor(full.length * 0.6));
      await rejectsWith(() => detector.detect(cut), 'E_BAD_INPUT');
    }
  });

  test('empty and non-image bytes are rejected with E_BAD_INPUT', async () => {
    await rejectsWith(() => detector.detect(Buffer.alloc(0)), 'E_BAD_INPUT');
    await rejectsWith(() => detector.detect(Buffer.from('this is not an image, just text')), 'E_BAD_INPUT');
  });

  test('concurrent detect calls are serialised and give the same results as sequential ones', async () => {
    const names = ['chelsea.png', 'messi5.jpg', 'coffee.png', 'truncated.jpg', 'astronaut.png'];
    const inputs = await Promise.all(names.map(image));
    const sequential: (DetectionResult | string)[] = [];
    for (const b of inputs) sequential.push(await detector.detect(b).catch((e: { code: string }) => e.code));
    const concurrent = await Promise.all(
      inputs.map((b) => detector.detect(b).catch((e: { code: string }) => e.code)),
    );
    assert.equal(concurrent[3], 'E_BAD_INPUT');
    for (const [i, c] of concurrent.entries()) {
      const s = sequential[i]!;
      if (typeof c === 'string' || typeof s === 'string') {
        assert.equal(c, s);
        continue;
      }
      assert.deepEqual(
        c.objects.map((o) => o.class),
        s.objects.map((o) => o.class),
      );
      for (const [j, o] of c.objects.entries()) assert.ok(Math.abs(o.score - s.objects[j]!.score) < 1e-3);
    }
  });

  test('a config whose sha256 is wrong is refused with E_HASH_MISMATCH', async () => {
    const config = JSON.parse(await readFile(MODEL_JSON, 'utf8')) as Record<string, unknown>;
    const wrong = 'a'.repeat(64);
    const file = path.join(tmp, 'wrong-hash.json');
    await writeFile(file, JSON.stringify({ ...config, sha256: wrong, file: path.resolve(path.dirname(MODEL_JSON), 'yolov8n.onnx') }));
    const err = await rejectsWith(() => Detector.load(file), 'E_HASH_MISMATCH');
    assert.match(err.message, new RegExp(wrong));
    assert.match(err.message, new RegExp(PINNED_SHA256));
    await rejectsWith(async () => verifyModelFile(await loadModelConfig(file)), 'E_HASH_MISMATCH');
  });

  test('a missing model file gives E_NOT_FOUND with a hint to run npm run setup', async () => {
    const config = JSON.parse(await readFile(MODEL_JSON, 'utf8')) as Record<string, unknown>;
    const file = path.join(tmp, 'missing-model.json');
    await writeFile(file, JSON.stringify({ ...config, file: 'does-not-exist.onnx' }));
    const err = await rejectsWith(() => Detector.load(file), 'E_NOT_FOUND');
    assert.match(err.message, /npm run setup/);
    assert.match(err.message, /does-not-exist\.onnx/);
  });

  test('an invalid config gives E_CONFIG naming the file and the field', async () => {
    const config = JSON.parse(await readFile(MODEL_JSON, 'utf8')) as Record<string, unknown>;
    const file = path.join(tmp, 'bad-threshold.json');
    await writeFile(file, JSON.stringify({ ...config, scoreThreshold: 3 }));
    const err = await rejectsWith(() => loadModelConfig(file), 'E_CONFIG');
    assert.match(err.message, /bad-threshold\.json/);
    assert.match(err.message, /scoreThreshold/);

    const notJson = path.join(tmp, 'not-json.json');
    await writeFile(notJson, '{ "name": ');
    const err2 = await rejectsWith(() => loadModelConfig(notJson), 'E_CONFIG');
    assert.match(err2.message, /not-json\.json/);
  });

  test('the shipped config resolves its model file next to the json', async () => {
    const config = await loadModelConfig(MODEL_JSON);
    assert.equal(config.filePath, path.resolve(path.dirname(MODEL_JSON), 'yolov8n.onnx'));
    assert.equal(config.classNames.length, 80);
    assert.equal(await verifyModelFile(config), PINNED_SHA256);
  });

  test('letterbox pads with gray 114 and keeps the image centred', async () => {
    const lb = await letterbox(await image('chelsea.png'), 640);
    assert.equal(lb.data.length, 3 * 640 * 640);
    assert.deepEqual([lb.width, lb.height, lb.padX, lb.padY, lb.resizedWidth, lb.resizedHeight], [451, 300, 0, 107, 640, 426]);
    const plane = 640 * 640;
    const at = (c: number, y: number, x: number) => lb.data[c * plane + y * 640 + x]!;
    for (const c of [0, 1, 2]) {
      assert.equal(at(c, 0, 0), Math.fround(PAD_VALUE / 255), 'top padding');
      assert.equal(at(c, 639, 639), Math.fround(PAD_VALUE / 255), 'bottom padding');
    }
    let min = 1;
    let max = 0;
    for (const v of lb.data) {
      min = Math.min(min, v);
      max = Math.max(max, v);
    }
    assert.ok(min >= 0 && max <= 1);
  });

  test('a released detector refuses new work with E_MODEL', async () => {
    const d = await Detector.load(MODEL_JSON, { threads: 1 });
    const pending = d.detect(await image('chelsea.png'));
    await d.release();
    assert.ok(best(await pending, 'cat') >= 0.8, 'queued work finishes before release');
    await rejectsWith(() => d.detect(Buffer.from('x')), 'E_MODEL');
    await d.release();
  });

  test('invalid options are refused with E_CONFIG', async () => {
    await rejectsWith(() => Detector.load(MODEL_JSON, { threads: 0 }), 'E_CONFIG');
  });
});

/** `{x, y, width, height}` -> corner box for IoU. */
function toCorners(b: { x: number; y: number; width: number; height: number }): ScoredBox {
  return { x1: b.x, y1: b.y, x2: b.x + b.width, y2: b.y + b.height, score: 1, classId: 0 };
}

/** A scored corner box. */
const sbox = (x1: number, y1: number, x2: number, y2: number, score: number, classId = 0): ScoredBox => ({
  x1,
  y1,
  x2,
  y2,
  score,
  classId,
});

describe('nms (pure)', () => {
  test('iou of identical, disjoint, and half-overlapping boxes', () => {
    assert.equal(iou(sbox(0, 0, 10, 10, 1), sbox(0, 0, 10, 10, 1)), 1);
    assert.equal(iou(sbox(0, 0, 10, 10, 1), sbox(20, 20, 30, 30, 1)), 0);
    assert.equal(iou(sbox(0, 0, 10, 10, 1), sbox(0, 5, 10, 15, 1)), 50 / 150);
    assert.equal(iou(sbox(0, 0, 10, 10, 1), sbox(10, 0, 20, 10, 1)), 0, 'touching edges do not overlap');
  });

  test('two overlapping boxes of one class: only the higher score is kept', () => {
    const boxes = [sbox(0, 0, 100, 100, 0.6), sbox(5, 5, 105, 105, 0.9)];
    assert.deepEqual(nmsPerClass(boxes, 0.45), [1]);
    assert.deepEqual(nms(boxes, 0.45), [1]);
  });

  test('two overlapping boxes of different classes: both kept, by score', () => {
    const boxes = [sbox(0, 0, 100, 100, 0.6, 0), sbox(5, 5, 105, 105, 0.9, 15)];
    assert.deepEqual(nmsPerClass(boxes, 0.45), [1, 0]);
    assert.deepEqual(nms(boxes, 0.45), [1], 'class-agnostic nms would drop one');
  });

  test('overlap at or below the threshold keeps both', () => {
    const boxes = [sbox(0, 0, 10, 10, 0.9), sbox(0, 5, 10, 15, 0.8)]; // IoU = 1/3
    assert.deepEqual(nms(boxes, 1 / 3), [0, 1]);
    assert.deepEqual(nms(boxes, 0.3), [0]);
  });

  test('a chain: A suppresses B, so C (overlapping only B) survives', () => {
    const boxes = [sbox(0, 0, 10, 10, 0.9), sbox(3, 0, 13, 10, 0.8), sbox(7, 0, 17, 10, 0.7)];
    assert.deepEqual(nms(boxes, 0.45), [0, 2]);
  });
});

describe('decodeYolov8 (pure)', () => {
  const classNames = COCO80_LABELS;
  const C = classNames.length;
  const opts = { scoreThreshold: 0.25, iouThreshold: 0.45, maxDetections: 100, classNames };

  /** Builds a [1, 84, N] tensor from anchors (cx, cy, w, h in input pixels, sparse class scores). */
  function tensor(anchors: { cx: number; cy: number; w: number; h: number; scores: Record<number, number> }[]) {
    const N = anchors.length;
    const data = new Float32Array((4 + C) * N);
    anchors.forEach((a, i) => {
      data[0 * N + i] = a.cx;
      data[1 * N + i] = a.cy;
      data[2 * N + i] = a.w;
      data[3 * N + i] = a.h;
      for (const [c, s] of Object.entries(a.scores)) data[(4 + Number(c)) * N + i] = s;
    });
    return { data, dims: [1, 4 + C, N] };
  }

  // chelsea.png geometry: 451x300 into 640 -> scale 640/451, 640x426 resized, 107 px top padding.
  const geo = letterboxGeometry(451, 300, 640);

  /** Original-pixel box -> anchor in model-input pixels. */
  const toInput = (x: number, y: number, w: number, h: number) => ({
    cx: (x + w / 2) * geo.scale + geo.padX,
    cy: (y + h / 2) * geo.scale + geo.padY,
    w: w * geo.scale,
    h: h * geo.scale,
  });

  test('letterbox geometry', () => {
    assert.deepEqual(
      { scale: geo.scale, padX: geo.padX, padY: geo.padY, rw: geo.resizedWidth, rh: geo.resizedHeight },
      { scale: 640 / 451, padX: 0, padY: 107, rw: 640, rh: 426 },
    );
    const tall = letterboxGeometry(300, 600, 640);
    assert.deepEqual([tall.scale, tall.padX, tall.padY, tall.resizedWidth, tall.resizedHeight], [640 / 600, 160, 0, 320, 640]);
  });

  test('a box maps back through a known letterbox to original pixels', () => {
    const { data, dims } = tensor([{ ...toInput(100, 50, 120, 80), scores: { 15: 0.9 } }]);
    const objects = decodeYolov8(data, dims, geo, opts);
    assert.equal(objects.length, 1);
    const [cat] = objects;
    assert.equal(cat?.class, 'cat');
    assert.equal(cat?.classId, 15);
    assert.equal(cat?.score, 0.9);
    assert.deepEqual(cat?.box, { x: 100, y: 50, width: 120, height: 80 });
  });

  test('overlapping same-class candidates collapse to one; other classes and low scores are handled', () => {
    const { data, dims } = tensor([
      { ...toInput(100, 50, 120, 80), scores: { 15: 0.8 } },
      { ...toInput(104, 52, 120, 80), scores: { 15: 0.912345 } }, // same cat, higher score
      { ...toInput(100, 50, 120, 80), scores: { 16: 0.5, 15: 0.3 } }, // best class: dog
      { ...toInput(300, 100, 50, 50), scores: { 0: 0.2 } }, // below threshold
    ]);
    const objects = decodeYolov8(data, dims, geo, opts);
    assert.deepEqual(
      objects.map((o) => [o.class, o.score]),
      [
        ['cat', 0.9123],
        ['dog', 0.5],
      ],
    );
    assert.deepEqual(objects[0]?.box, { x: 104, y: 52, width: 120, height: 80 });
  });

  test('boxes are clamped to the image; boxes entirely in the padding are dropped', () => {
    const { data, dims } = tensor([
      { ...toInput(-20, -10, 100, 60), scores: { 2: 0.7 } }, // sticks out top-left
      { ...toInput(400, 250, 100, 100), scores: { 3: 0.6 } }, // sticks out bottom-right
      { cx: 320, cy: 40, w: 100, h: 40, scores: { 4: 0.9 } }, // wholly inside the top padding
    ]);
    const objects = decodeYolov8(data, dims, geo, opts);
    assert.deepEqual(
      objects.map((o) => [o.class, o.box]),
      [
        ['car', { x: 0, y: 0, width: 80, height: 50 }],
        ['motorcycle', { x: 400, y: 250, width: 51, height: 50 }],
      ],
    );
  });

  test('maxDetections caps the output, keeping the highest scores', () => {
    const anchors = Array.from({ length: 10 }, (_, i) => ({ ...toInput(i * 40, 10, 30, 30), scores: { 0: 0.3 + i * 0.05 } }));
    const { data, dims } = tensor(anchors);
    const objects = decodeYolov8(data, dims, geo, { ...opts, maxDetections: 3 });
    assert.deepEqual(
      objects.map((o) => o.score),
      [0.75, 0.7, 0.65],
    );
  });

  test('a tensor of the wrong shape is refused with E_MODEL', async () => {
    const { data } = tensor([{ cx: 1, cy: 1, w: 1, h: 1, scores: {} }]);
    await rejectsWith(async () => decodeYolov8(data, [1, 85, 1], geo, opts), 'E_MODEL');
    await rejectsWith(async () => decodeYolov8(data, [1, 84, 2], geo, opts), 'E_MODEL');
  });
});

test('DetectorPool: two sessions find what one detector finds, concurrently, and refuse a bad size', async () => {
  const { Detector, DetectorPool } = await import('../detector/index.js');
  const bytes = await readFile(path.resolve(import.meta.dirname, 'fixtures/images/chelsea.png'));
  const other = await readFile(path.resolve(import.meta.dirname, 'fixtures/images/messi5.jpg'));
  const one = await Detector.load(MODEL_JSON, { threads: 1 });
  const pool = await DetectorPool.load(MODEL_JSON, { threads: 2, sessions: 2 });
  try {
    assert.equal(pool.size, 2);
    assert.deepEqual(pool.model, one.model);
    const [a, b, c] = await Promise.all([pool.detect(bytes), pool.detect(other), pool.detect(bytes)]);
    const ref = await one.detect(bytes);
    const classes = (r: typeof ref) => r.objects.map((o) => `${o.class}:${o.score.toFixed(3)}`);
    assert.deepEqual(classes(a), classes(ref));
    assert.deepEqual(classes(c), classes(ref));
    assert.ok(b.objects.some((o) => o.class === 'person'));
  } finally {
    await one.release();
    await pool.release();
  }
  await assert.rejects(DetectorPool.load(MODEL_JSON, { sessions: 0 }), (e) => isVigilError(e, 'E_CONFIG'));
  await assert.rejects(pool.detect(bytes), (e) => isVigilError(e, 'E_MODEL'), 'released');
});

test('ThreadedDetector: the same detections from a worker thread; errors keep their codes; released means refused', async () => {
  const { Detector, ThreadedDetector, DetectorPool } = await import('../detector/index.js');
  const bytes = await readFile(path.resolve(import.meta.dirname, 'fixtures/images/chelsea.png'));
  const here = await Detector.load(MODEL_JSON, { threads: 1 });
  const threaded = await ThreadedDetector.load(MODEL_JSON, { threads: 1, nice: 5 });
  try {
    assert.deepEqual(threaded.model, here.model);
    const [a, b] = await Promise.all([threaded.detect(bytes), threaded.detect(bytes)]);
    const ref = await here.detect(bytes);
    assert.deepEqual(a.objects, ref.objects);
    assert.deepEqual(b.objects, ref.objects);
    assert.equal(bytes.length > 0, true, 'the caller keeps its buffer');
    await assert.rejects(threaded.detect(Buffer.from('not an image')), (e) => isVigilError(e, 'E_BAD_INPUT'));
  } finally {
    await here.release();
    await threaded.release();
  }
  await assert.rejects(threaded.detect(bytes), (e) => isVigilError(e, 'E_MODEL'));
  await assert.rejects(ThreadedDetector.load('/nonexistent/model.json'), (e) => isVigilError(e, 'E_NOT_FOUND'));
  const pool = await DetectorPool.load(MODEL_JSON, { threads: 2, sessions: 2, threaded: true });
  try {
    assert.equal((await pool.detect(bytes)).objects[0]?.class, 'cat');
  } finally {
    await pool.release();
  }
});
