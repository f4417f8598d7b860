/**
 * The pieces replays are built from, checked against the reference ones: compileRuleSet against
 * evaluate on many generated detections, and walkBlobBatches on blobs cut at every kind of chunk
 * boundary of git's output (inside a header line, inside the bytes, larger than a chunk).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { isVigilError } from '../lib/errors.js';
import { seededRandom } from '../lib/seededRandom.js';
import { commitChanges, openStore, walkBlobBatches, walkBlobs } from '../repos/index.js';
import { compileRuleSet, evaluate, RuleSetSchema, type EvaluableDetection, type RuleSet } from '../rules/index.js';
import { tmpDir } from './helpers/tmp.js';

const ZONES = ['Europe/Paris', 'America/New_York', 'Asia/Kathmandu', 'UTC', 'Australia/Lord_Howe'];
const CLASSES = ['person', 'Person ', 'car', 'cat', 'dog', 'truck', 'bicycle', 'backpack', 'knife', 'chair'];

function ruleSet(): RuleSet {
  return RuleSetSchema.parse({
    schemaVersion: 1,
    rules: [
      { id: 100, name: 'animals', unsafe: ['dog', 'cat'], minScore: 0.8 },
      { id: 200, name: 'people', unsafe: ['person'], minScore: 0.95 },
      { id: 300, name: 'vehicles at night', unsafe: ['bicycle', 'car', 'truck'], minScore: 0.6, activeHours: { from: '22:00', to: '06:00' }, minBoxArea: 0.01 },
      { id: 400, name: 'blades', unsafe: ['knife'], minScore: 0.5 },
      { id: 500, name: 'bags by day', unsafe: ['backpack'], minScore: 0.6, activeHours: { from: '07:00', to: '20:00' } },
    ],
    users: {
      u0: { user: 'u0', rules: [100, 200, 300], include: [{ class: 'person', minScore: 0.7, minBoxArea: 0.02 }], exclude: ['cat'] },
      u1: {
        user: 'u1', rules: [100, 300, 400, 500],
        devices: {
          cam0: { exclude: ['person', 'dog'], include: [{ class: 'chair', minScore: 0.5 }] },
          cam1: { activeHours: { from: '18:00', to: '08:00' }, minBoxArea: 0.005 },
          cam2: { rules: [200], include: [{ class: 'backpack', minScore: 0.7 }] },
        },
      },
      u2: { user: 'u2', rules: [] },
      u3: { user: 'u3', rules: [500], devices: { cam0: { activeHours: { from: '09:00', to: '17:00' } } } },
    },
  });
}

test('compileRuleSet decides exactly as evaluate (rules fired) on 20,000 generated detections', () => {
  const rules = ruleSet();
  const fired = compileRuleSet(rules);
  const r = seededRandom(7);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  let unsafe = 0;
  for (let i = 0; i < 20_000; i++) {
    const det: EvaluableDetection = {
      user: pick(['u0', 'u1', 'u2', 'u3', 'nobody']),
      device: pick(['cam0', 'cam1', 'cam2', 'cam3']),
      capturedAt: new Date(Date.UTC(2026, 0, 1) + Math.floor(r() * 365 * 86_400_000)).toISOString(),
      tz: pick(ZONES),
      image: pick([{ width: 1280, height: 720 }, { width: 640, height: 480 }, { width: 0, height: 0 }]),
      objects: Array.from({ length: Math.floor(r() * 5) }, () => ({
        class: pick(CLASSES), classId: 0, score: Math.round(r() * 10_000) / 10_000,
        box: { x: 0, y: 0, width: r() * 400 - 20, height: r() * 300 },
      })),
    };
    const expected = evaluate(det, rules);
    const got = fired(det);
    assert.deepEqual(got, expected.rulesFired, JSON.stringify(det));
    assert.equal(got.length > 0, expected.unsafe);
    if (got.length) unsafe++;
  }
  assert.ok(unsafe > 1000, `enough unsafe cases (${unsafe})`);
});

test('compileRuleSet raises what evaluate raises, in the same cases', () => {
  const rules = ruleSet();
  const fired = compileRuleSet(rules);
  const det = (over: Partial<EvaluableDetection>): EvaluableDetection => ({
    user: 'u1', device: 'cam1', capturedAt: '2026-06-01T12:00:00Z', tz: 'UTC', image: { width: 10, height: 10 }, objects: [], ...over,
  });
  // active hours apply (u1/cam1): a bad zone or instant is an error for both
  for (const bad of [det({ tz: 'Mars/Olympus' }), det({ capturedAt: '2026-06-01 12:00' })]) {
    assert.throws(() => evaluate(bad, rules), (e) => isVigilError(e, 'E_BAD_INPUT'));
    assert.throws(() => fired(bad), (e) => isVigilError(e, 'E_BAD_INPUT'));
  }
  // no active hours (u1/cam2: rule 200 and an include), or no rules (u2): never looked at
  for (const ok of [det({ device: 'cam2', tz: 'Mars/Olympus', objects: [{ class: 'person', classId: 0, score: 0.99, box: { x: 0, y: 0, width: 5, height: 5 } }] }), det({ user: 'u2', tz: 'Mars/Olympus' })]) {
    assert.deepEqual(fired(ok), evaluate(ok, rules).rulesFired);
  }
});

test('walkBlobBatches: blobs cut at chunk boundaries anywhere, some larger than a chunk, all hash-checked and intact', async () => {
  const root = tmpDir();
  const store = openStore(root);
  const r = seededRandom(3);
  const files = new Map<string, string>();
  for (let i = 0; i < 700; i++) {
    // mostly small, a few of 70-300 KiB (more than one pipe chunk)
    const size = i % 97 === 5 ? 70_000 + Math.floor(r() * 230_000) : Math.floor(r() * 3000);
    const body = Array.from({ length: size }, () => String.fromCharCode(32 + Math.floor(r() * 95))).join('') + (i % 3 ? '\n' : 'é');
    files.set(`d${i % 7}/f${String(i).padStart(4, '0')}.txt`, body);
  }
  files.set('empty.txt', '');
  await commitChanges(store, {
    repo: 'docs', changes: [...files].map(([path, content]) => ({ path, content })),
    provenance: { batchId: 'b', stage: 'detect', stageVersion: '1', inputs: [] }, summary: 'docs',
  });
  const seen: Array<[string, string]> = [];
  let batches = 0;
  for await (const batch of walkBlobBatches(store, 'docs')) {
    batches++;
    for (const b of batch) seen.push([b.path, b.bytes.toString('utf8')]);
  }
  assert.ok(batches > 10, `several chunks (${batches})`);
  const gitOrder = spawnSync('git', ['--git-dir', `${root}/repos/docs.git`, 'ls-tree', '-r', '--name-only', 'main'], { encoding: 'utf8' }).stdout.trim().split('\n');
  assert.deepEqual(seen.map(([p]) => p), gitOrder);
  assert.deepEqual(new Map(seen), files);
  const one: string[] = [];
  for await (const b of walkBlobs(store, 'docs', 'main', { prefix: 'd3/' })) one.push(b.path);
  assert.deepEqual(one, gitOrder.filter((p) => p.startsWith('d3/')));
});

test('localTime reads the formatted "HH:MM" exactly as formatToParts does (zones with DST, odd offsets)', async () => {
  const { localTime } = await import('../rules/index.js');
  const r = seededRandom(11);
  for (const tz of [...ZONES, 'Asia/Kolkata', 'America/St_Johns', 'Pacific/Chatham', 'Africa/Monrovia']) {
    const f = new Intl.DateTimeFormat('en-US', { timeZone: tz, hourCycle: 'h23', hour: '2-digit', minute: '2-digit' });
    for (let i = 0; i < 2000; i++) {
      // 1900-2100, so pre-standard local mean times with odd seconds are met too
      const ms = Date.UTC(1900, 0, 1) + Math.floor(r() * 200 * 365.25 * 86_400_000);
      const parts = f.formatToParts(ms);
      const expected = { hour: Number(parts.find((p) => p.type === 'hour')!.value) % 24, minute: Number(parts.find((p) => p.type === 'minute')!.value) };
      assert.deepEqual(localTime(new Date(ms).toISOString(), tz), expected, `${tz} ${new Date(ms).toISOString()}`);
    }
  }
});
