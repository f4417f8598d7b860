/**
 * Rules: the pure engine on in-memory rule sets, local time in a zone (DST included), and the
 * rules-folder checker/loader on the shipped files and on broken folders generated here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { COCO80_LABELS } from '../detector/labels.js';
import { isVigilError } from '../lib/errors.js';
import {
  checkRules,
  DecisionSchema,
  evaluate,
  formatIssue,
  isWithinActiveHours,
  loadRuleSet,
  localTime,
  MAX_RULE_FILE_BYTES,
  parseRuleSet,
  resolveRules,
  ruleSetHash,
  RuleSetSchema,
  serializeRuleSet,
  type EvaluableDetection,
  type RulesCheckResult,
  type RuleSet,
} from '../rules/index.js';
import { tmpDir } from './helpers/tmp.js';

const RULES_DIR = path.resolve(import.meta.dirname, '../rules');

// ---------------------------------------------------------------------------------------------
// Engine fixtures (no files)

const ANIMALS = { id: 100, name: 'animals', unsafe: ['dog', 'cat', 'raccoon', 'bear'], minScore: 0.8 };
const PEOPLE = { id: 200, name: 'people', unsafe: ['person'], minScore: 0.95 };
const NIGHT_PEOPLE = { id: 400, name: 'people at night', unsafe: ['person'], minScore: 0.5, activeHours: { from: '22:00', to: '06:00' } };

/** A rule set from plain objects, through the schema (defaults filled in). */
function ruleSet(users: Record<string, unknown>, rules: unknown[] = [ANIMALS, PEOPLE, NIGHT_PEOPLE]): RuleSet {
  const withIds = Object.fromEntries(Object.entries(users).map(([id, u]) => [id, { user: id, ...(u as object) }]));
  return RuleSetSchema.parse({ schemaVersion: 1, rules, users: withIds });
}

type Obj = { cls: string; score: number; box?: { x: number; y: number; width: number; height: number } };

/** A detection document (the fields the engine reads) for a 640x480 frame. */
function detection(objects: Obj[], over: Partial<EvaluableDetection> = {}): EvaluableDetection {
  return {
    user: 'alice',
    device: 'cam1',
    capturedAt: '2024-06-01T10:00:00.000Z',
    tz: 'Europe/Paris',
    image: { width: 640, height: 480 },
    objects: objects.map((o) => ({
      class: o.cls,
      classId: (COCO80_LABELS as readonly string[]).indexOf(o.cls),
      score: o.score,
      box: o.box ?? { x: 100, y: 100, width: 200, height: 150 },
    })),
    ...over,
  };
}

test('cat 0.89 fires rule 100 (minScore 0.8) and only for a user who chose it', () => {
  const set = ruleSet({ alice: { rules: [100] }, bob: { rules: [200] } });
  const d = evaluate(detection([{ cls: 'cat', score: 0.89 }]), set);
  assert.equal(d.unsafe, true);
  assert.equal(d.configured, true);
  assert.deepEqual(d.rulesFired, [100]);
  assert.equal(d.matches.length, 1);
  assert.deepEqual(d.matches[0], {
    ruleId: 100,
    ruleName: 'animals',
    source: 'rule',
    class: 'cat',
    score: 0.89,
    box: { x: 100, y: 100, width: 200, height: 150 },
    objectIndex: 0,
  });
  DecisionSchema.parse(d);

  const b = evaluate(detection([{ cls: 'cat', score: 0.89 }], { user: 'bob' }), set);
  assert.deepEqual(b, { unsafe: false, configured: true, matches: [], rulesFired: [] });
});

test('person 0.71 does not fire rule 200 (0.95); 0.97 does; threshold is score >= minScore', () => {
  const set = ruleSet({ alice: { rules: [200] } });
  assert.equal(evaluate(detection([{ cls: 'person', score: 0.71 }]), set).unsafe, false);
  const hit = evaluate(detection([{ cls: 'person', score: 0.97 }]), set);
  assert.equal(hit.unsafe, true);
  assert.deepEqual(hit.rulesFired, [200]);
  assert.equal(evaluate(detection([{ cls: 'person', score: 0.95 }]), set).unsafe, true, 'exactly minScore matches');
  assert.equal(evaluate(detection([{ cls: 'person', score: 0.9499 }]), set).unsafe, false);
});

test('classes no active rule lists are safe; unknown users are safe and flagged unconfigured', () => {
  const set = ruleSet({ alice: { rules: [100, 200] } });
  const d = evaluate(detection([{ cls: 'car', score: 0.99 }, { cls: 'chair', score: 0.99 }]), set);
  assert.equal(d.unsafe, false);
  const u = evaluate(detection([{ cls: 'person', score: 0.99 }], { user: 'nobody' }), set);
  assert.deepEqual(u, { unsafe: false, configured: false, matches: [], rulesFired: [] });
});

test('a lobby device excluding person is never unsafe on a person, other devices are', () => {
  const set = ruleSet({
    alice: { rules: [100, 200], include: [{ class: 'person', minScore: 0.5 }], devices: { lobby: { exclude: ['person'] } } },
  });
  const person = [{ cls: 'person', score: 0.99 }];
  const lobby = evaluate(detection(person, { device: 'lobby' }), set);
  assert.equal(lobby.unsafe, false, 'device exclude removes the global rule and the user include');
  const other = evaluate(detection(person, { device: 'garage' }), set);
  assert.equal(other.unsafe, true);
  assert.deepEqual(other.rulesFired, [0, 200]);
  assert.deepEqual(
    other.matches.map((m) => [m.ruleId, m.source, m.ruleName]),
    [
      [200, 'rule', 'people'],
      [0, 'user', 'include (user alice)'],
    ],
  );
  // the lobby still fires on other classes
  assert.equal(evaluate(detection([{ cls: 'dog', score: 0.9 }], { device: 'lobby' }), set).unsafe, true);
});

test('device rules replace the user list; exclude + include at one level replaces a threshold', () => {
  const set = ruleSet({
    alice: {
      rules: [100],
      exclude: ['cat'],
      include: [{ class: 'cat', minScore: 0.95 }],
      devices: { door: { rules: [200] }, yard: { include: [{ class: 'cat', minScore: 0.5 }] } },
    },
  });
  const cat = (score: number, device = 'cam1') => evaluate(detection([{ cls: 'cat', score }], { device }), set);
  assert.equal(cat(0.89).unsafe, false, 'user raised cat to 0.95');
  assert.deepEqual(cat(0.96).rulesFired, [0]);
  assert.equal(evaluate(detection([{ cls: 'dog', score: 0.85 }], { device: 'door' }), set).unsafe, false, 'door uses rule 200 only');
  assert.equal(evaluate(detection([{ cls: 'person', score: 0.96 }], { device: 'door' }), set).unsafe, true);
  assert.equal(cat(0.96, 'door').unsafe, true, 'user include still applies on the door');
  const yard = cat(0.6, 'yard');
  assert.equal(yard.unsafe, true);
  assert.deepEqual(yard.matches.map((m) => m.source), ['device']);

  const eff = resolveRules(set, 'alice', 'door');
  assert.deepEqual(eff.rules.map((r) => [r.ruleId, r.source, [...r.classes]]), [
    [200, 'rule', ['person']],
    [0, 'user', ['cat']],
  ]);
});

test('localTime follows the zone and its DST changes, to the minute', () => {
  assert.deepEqual(localTime('2024-01-15T22:30:00Z', 'Europe/Paris'), { hour: 23, minute: 30 }); // CET +1
  assert.deepEqual(localTime('2024-07-15T21:30:00Z', 'Europe/Paris'), { hour: 23, minute: 30 }); // CEST +2
  assert.deepEqual(localTime('2024-03-31T00:59:00Z', 'Europe/Paris'), { hour: 1, minute: 59 }); // just before spring forward
  assert.deepEqual(localTime('2024-03-31T01:00:00Z', 'Europe/Paris'), { hour: 3, minute: 0 }); // 02:00 does not exist
  assert.deepEqual(localTime('2024-10-27T00:30:00Z', 'Europe/Paris'), { hour: 2, minute: 30 }); // first 02:30
  assert.deepEqual(localTime('2024-10-27T01:30:00Z', 'Europe/Paris'), { hour: 2, minute: 30 }); // second 02:30
  assert.deepEqual(localTime('2024-06-01T00:00:00Z', 'Asia/Kathmandu'), { hour: 5, minute: 45 });
  assert.deepEqual(localTime('2024-06-01T23:59:00Z', 'UTC'), { hour: 23, minute: 59 });
  assert.deepEqual(localTime('2024-06-01T00:00:00+02:00', 'UTC'), { hour: 22, minute: 0 });
  assert.deepEqual(localTime(new Date('2024-06-01T12:00:00Z'), 'America/New_York'), { hour: 8, minute: 0 });
  assert.throws(() => localTime('2024-06-01T00:00:00Z', 'Mars/Olympus'), (e) => isVigilError(e, 'E_BAD_INPUT'));
  assert.throws(() => localTime('2024-06-01 00:00', 'UTC'), (e) => isVigilError(e, 'E_BAD_INPUT'));
  assert.throws(() => localTime('yesterday', 'UTC'), (e) => isVigilError(e, 'E_BAD_INPUT'));
});

test('active hours: from inclusive, to exclusive, crossing midnight', () => {
  const night = { from: '22:00', to: '06:00' };
  const day = { from: '08:00', to: '18:30' };
  const at = (hour: number, minute: number) => ({ hour, minute });
  assert.equal(isWithinActiveHours(night, at(22, 0)), true);
  assert.equal(isWithinActiveHours(night, at(23, 30)), true);
  assert.equal(isWithinActiveHours(night, at(0, 0)), true);
  assert.equal(isWithinActiveHours(night, at(5, 59)), true);
  assert.equal(isWithinActiveHours(night, at(6, 0)), false);
  assert.equal(isWithinActiveHours(night, at(21, 59)), false);
  assert.equal(isWithinActiveHours(night, at(12, 0)), false);
  assert.equal(isWithinActiveHours(day, at(8, 0)), true);
  assert.equal(isWithinActiveHours(day, at(18, 29)), true);
  assert.equal(isWithinActiveHours(day, at(18, 30)), false);
  assert.equal(isWithinActiveHours(day, at(7, 59)), false);
});

test('a 22:00–06:00 rule in Europe/Paris fires at 23:30 local, not at 12:00, also across DST changes', () => {
  const set = ruleSet({ alice: { rules: [400] } });
  const person = (capturedAt: string) => evaluate(detection([{ cls: 'person', score: 0.7 }], { capturedAt, tz: 'Europe/Paris' }), set).unsafe;
  assert.equal(person('2024-01-15T22:30:00Z'), true, '23:30 CET');
  assert.equal(person('2024-01-15T11:00:00Z'), false, '12:00 CET');
  assert.equal(person('2024-07-15T21:30:00Z'), true, '23:30 CEST');
  assert.equal(person('2024-07-15T10:00:00Z'), false, '12:00 CEST');
  // Spring forward, 2024-03-31 (CET -> CEST at 01:00Z). A fixed +1 offset would get these wrong.
  assert.equal(person('2024-03-31T20:30:00Z'), true, '22:30 CEST (21:30 with a stale +1)');
  assert.equal(person('2024-03-31T04:30:00Z'), false, '06:30 CEST (05:30 with a stale +1)');
  assert.equal(person('2024-03-31T01:30:00Z'), true, '03:30 CEST, just after the change');
  // Fall back, 2024-10-27 (CEST -> CET at 01:00Z). A fixed +2 offset would get these wrong.
  assert.equal(person('2024-10-27T20:30:00Z'), false, '21:30 CET (22:30 with a stale +2)');
  assert.equal(person('2024-10-27T04:30:00Z'), true, '05:30 CET (06:30 with a stale +2)');
  assert.equal(person('2024-10-27T21:30:00Z'), true, '22:30 CET');
  // Same instant, other zone: 21:30Z is 17:30 in New York.
  assert.equal(evaluate(detection([{ cls: 'person', score: 0.7 }], { capturedAt: '2024-07-15T21:30:00Z', tz: 'America/New_York' }), set).unsafe, false);
});

test('device active hours gate every rule; context.localTime overrides the computed time', () => {
  const set = ruleSet({ alice: { rules: [100], devices: { cam1: { activeHours: { from: '22:00', to: '06:00' } } } } });
  const dog = [{ cls: 'dog', score: 0.9 }];
  assert.equal(evaluate(detection(dog, { capturedAt: '2024-07-15T21:30:00Z' }), set).unsafe, true, '23:30 local');
  assert.equal(evaluate(detection(dog, { capturedAt: '2024-07-15T10:00:00Z' }), set).unsafe, false, '12:00 local');
  assert.equal(evaluate(detection(dog, { capturedAt: '2024-07-15T10:00:00Z' }), set, { localTime: { hour: 23, minute: 30 } }).unsafe, true);
  assert.equal(evaluate(detection(dog, { capturedAt: '2024-07-15T21:30:00Z' }), set, { localTime: { hour: 12, minute: 0 } }).unsafe, false);
  assert.throws(() => evaluate(detection(dog), set, { localTime: { hour: 24, minute: 0 } }), (e) => isVigilError(e, 'E_BAD_INPUT'));
  assert.throws(() => evaluate(detection(dog, { tz: 'Nowhere/Land' }), set), (e) => isVigilError(e, 'E_BAD_INPUT'));
  // no active hours apply: time is never computed, so a bad tz does not matter
  const always = ruleSet({ alice: { rules: [100] } });
  assert.equal(evaluate(detection(dog, { tz: 'Nowhere/Land' }), always).unsafe, true);
});

test('minBoxArea (fraction of the image) filters tiny boxes, per rule, include and device', () => {
  const rules = [{ ...ANIMALS, minBoxArea: 0.01 }, PEOPLE];
  const set = ruleSet(
    { alice: { rules: [100, 200], include: [{ class: 'bird', minScore: 0.5, minBoxArea: 0.05 }], devices: { far: { minBoxArea: 0.2 } } } },
    rules,
  );
  // 640x480 = 307200 px; 1 % = 3072 px.
  const tiny = { x: 10, y: 10, width: 40, height: 40 }; // 1600 px, 0.52 %
  const medium = { x: 10, y: 10, width: 80, height: 60 }; // 4800 px, 1.56 %
  const large = { x: 0, y: 0, width: 320, height: 240 }; // 25 %
  assert.equal(evaluate(detection([{ cls: 'dog', score: 0.9, box: tiny }]), set).unsafe, false);
  assert.equal(evaluate(detection([{ cls: 'dog', score: 0.9, box: medium }]), set).unsafe, true);
  assert.equal(evaluate(detection([{ cls: 'bird', score: 0.9, box: medium }]), set).unsafe, false, 'include needs 5 %');
  assert.equal(evaluate(detection([{ cls: 'bird', score: 0.9, box: large }]), set).unsafe, true);
  assert.equal(evaluate(detection([{ cls: 'person', score: 0.99, box: tiny }]), set).unsafe, true, 'rule 200 has no minimum');
  assert.equal(evaluate(detection([{ cls: 'person', score: 0.99, box: medium }], { device: 'far' }), set).unsafe, false, 'device needs 20 %');
  assert.equal(evaluate(detection([{ cls: 'person', score: 0.99, box: large }], { device: 'far' }), set).unsafe, true);
});

test('matches are deterministic: every (object, rule) pair, by object then rule id', () => {
  const set = ruleSet({ alice: { rules: [200, 100, 400], include: [{ class: 'dog', minScore: 0.3 }] } });
  const det = detection([
    { cls: 'chair', score: 0.99 },
    { cls: 'Person', score: 0.99 },
    { cls: 'dog', score: 0.85 },
  ]);
  const a = evaluate(det, set, { localTime: { hour: 23, minute: 0 } });
  const b = evaluate(structuredClone(det), structuredClone(set), { localTime: { hour: 23, minute: 0 } });
  assert.deepEqual(a, b);
  assert.deepEqual(
    a.matches.map((m) => [m.objectIndex, m.ruleId]),
    [
      [1, 200],
      [1, 400],
      [2, 100],
      [2, 0],
    ],
  );
  assert.deepEqual(a.rulesFired, [0, 100, 200, 400]);
  assert.equal(a.matches[0]?.class, 'Person', 'the detector class is reported as is');
});

// ---------------------------------------------------------------------------------------------
// Rule files

test('the shipped rules folder checks ok, with one warning naming global.yaml, rule 100 and raccoon', async () => {
  const r = await checkRules(RULES_DIR);
  assert.equal(r.ok, true, r.errors.map(formatIssue).join('\n'));
  assert.deepEqual(r.errors, []);
  assert.equal(r.warnings.length, 1, r.warnings.map(formatIssue).join('\n'));
  const w = r.warnings[0]!;
  assert.equal(w.file, path.join(RULES_DIR, 'global.yaml'));
  assert.equal(w.path, 'rules[0].unsafe[2]');
  assert.match(w.message, /rule 100 \(animals\).*"raccoon"/);
  assert.equal(typeof w.line, 'number');
  assert.deepEqual(r.summary, { rules: 3, users: 1, devices: 1 });
  assert.ok(r.ruleSet && r.hash);
  assert.equal(r.hash, ruleSetHash(r.ruleSet));

  const set = await loadRuleSet(RULES_DIR);
  assert.deepEqual(set, r.ruleSet);
  assert.equal(evaluate(detection([{ cls: 'cat', score: 0.89 }], { user: 'demo', device: 'lobby' }), set).unsafe, true);
  assert.equal(evaluate(detection([{ cls: 'person', score: 0.99 }], { user: 'demo', device: 'lobby' }), set).unsafe, false);

  // a model that knows raccoons: no warning
  const custom = await checkRules(RULES_DIR, { labels: [...COCO80_LABELS, 'raccoon'], modelName: 'custom' });
  assert.deepEqual(custom.warnings, []);
});

const GOOD_GLOBAL = `rules:
  - id: 100
    name: animals
    unsafe: [dog, cat]
    minScore: 0.8
  - id: 200
    name: people
    unsafe: [person]
    minScore: 0.95
`;
const GOOD_USER = `user: demo
rules: [100, 200]
contacts:
  email: [a@example.com]
devices:
  lobby:
    exclude: [person]
`;

/** A temp rules folder from `files` (path -> content), on top of a valid set unless `base` is false. */
function rulesDir(files: Record<string, string | Buffer>, base = true): string {
  const dir = tmpDir('vigil-rules-');
  const all = base ? { 'global.yaml': GOOD_GLOBAL, 'users/demo.yaml': GOOD_USER, ...files } : files;
  for (const [rel, content] of Object.entries(all)) {
    mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    writeFileSync(path.join(dir, rel), content);
  }
  return dir;
}

/** Asserts that checking `dir` fails with an error on `file` at `at` whose message matches `reason`. */
async function expectError(dir: string, file: string, at: string, reason: RegExp): Promise<RulesCheckResult> {
  const r = await checkRules(dir);
  assert.equal(r.ok, false);
  assert.equal(r.ruleSet, undefined);
  const found = r.errors.find((e) => e.file === path.join(dir, file) && e.path === at && reason.test(e.message));
  assert.ok(found, `expected an error on ${file} at "${at}" matching ${reason}, got:\n${r.errors.map(formatIssue).join('\n')}`);
  return r;
}

test('a valid generated folder checks ok with no warnings', async () => {
  const r = await checkRules(rulesDir({}));
  assert.equal(r.ok, true, r.errors.map(formatIssue).join('\n'));
  assert.deepEqual(r.warnings, []);
});

test('broken rules folders: each error names the file, the path inside it and the reason', async () => {
  // invalid YAML
  let r = await expectError(rulesDir({ 'global.yaml': 'rules:\n  - id: 100\n    unsafe: [cat\n' }), 'global.yaml', '', /invalid YAML/);
  assert.equal(typeof r.errors[0]?.line, 'number');
  // duplicate YAML key
  await expectError(rulesDir({ 'users/demo.yaml': 'user: demo\nuser: demo\n' }), 'users/demo.yaml', '', /invalid YAML.*[Mm]ap keys must be unique/);
  // not a mapping
  await expectError(rulesDir({ 'global.yaml': '- id: 100\n' }), 'global.yaml', '', /mapping.*not a list/);
  await expectError(rulesDir({ 'users/demo.yaml': '' }), 'users/demo.yaml', '', /mapping.*empty/);
  await expectError(rulesDir({ 'users/demo.yaml': '"just text"\n' }), 'users/demo.yaml', '', /mapping.*string/);
  // wrong type
  r = await expectError(
    rulesDir({ 'global.yaml': GOOD_GLOBAL.replace('minScore: 0.8', 'minScore: "high"') }),
    'global.yaml',
    'rules[0].minScore',
    /expected number, received string/,
  );
  assert.equal(r.errors[0]?.line, 5);
  // out of range, missing key, bad clock, bad contact
  await expectError(rulesDir({ 'global.yaml': GOOD_GLOBAL.replace('minScore: 0.95', 'minScore: 95') }), 'global.yaml', 'rules[1].minScore', /<= 1/);
  await expectError(rulesDir({ 'global.yaml': GOOD_GLOBAL.replace('    minScore: 0.95\n', '') }), 'global.yaml', 'rules[1].minScore', /missing required key "minScore"/);
  await expectError(
    rulesDir({ 'users/demo.yaml': GOOD_USER + '    activeHours: { from: "22:00", to: "25:00" }\n' }),
    'users/demo.yaml',
    'devices.lobby.activeHours.to',
    /HH:MM/,
  );
  await expectError(
    rulesDir({ 'users/demo.yaml': GOOD_USER + '    activeHours: { from: "22:00", to: "22:00" }\n' }),
    'users/demo.yaml',
    'devices.lobby.activeHours.to',
    /must differ/,
  );
  await expectError(
    rulesDir({ 'users/demo.yaml': GOOD_USER.replace('email: [a@example.com]', 'webhook: [{ url: "https://events.pagerduty.com/v2/enqueue", format: pagerduty }]') }),
    'users/demo.yaml',
    'contacts.webhook[0].routingKey',
    /required when format is pagerduty/,
  );
  await expectError(rulesDir({ 'users/demo.yaml': GOOD_USER.replace('a@example.com', 'not-an-email') }), 'users/demo.yaml', 'contacts.email[0]', /email/);
  await expectError(
    rulesDir({ 'users/demo.yaml': GOOD_USER.replace('email: [a@example.com]', 'webhook: [{ url: "https://hookuser:HOOKPASS@hooks.example.com/vigil" }]') }),
    'users/demo.yaml',
    'contacts.webhook[0].url',
    /must not hold a user name or password/,
  );
  await expectError(rulesDir({ 'users/demo.yaml': GOOD_USER.replace('lobby:', 'Lobby-1:') }), 'users/demo.yaml', 'devices["Lobby-1"]', /invalid key/);
  // unknown rule ids, for the user and for a device
  r = await expectError(rulesDir({ 'users/demo.yaml': GOOD_USER.replace('[100, 200]', '[100, 999]') }), 'users/demo.yaml', 'rules[1]', /unknown rule id 999/);
  assert.equal(r.errors[0]?.line, 2);
  await expectError(
    rulesDir({ 'users/demo.yaml': GOOD_USER.replace('exclude: [person]', 'rules: [300]') }),
    'users/demo.yaml',
    'devices.lobby.rules[0]',
    /unknown rule id 300/,
  );
  // duplicate rule id
  await expectError(rulesDir({ 'global.yaml': GOOD_GLOBAL.replace('id: 200', 'id: 100') }), 'global.yaml', 'rules[1].id', /duplicate rule id 100/);
  // unknown keys: a typo in a rule, at the top of a file, in a device
  await expectError(rulesDir({ 'global.yaml': GOOD_GLOBAL.replace('minScore: 0.8', 'minscore: 0.8') }), 'global.yaml', 'rules[0].minscore', /unknown key "minscore"/);
  await expectError(rulesDir({ 'users/demo.yaml': GOOD_USER + 'owner: bob\n' }), 'users/demo.yaml', 'owner', /unknown key "owner"/);
  await expectError(rulesDir({ 'users/demo.yaml': GOOD_USER + '    hours: night\n' }), 'users/demo.yaml', 'devices.lobby.hours', /unknown key "hours"/);
  // huge file
  const huge = GOOD_GLOBAL + '#' + 'x'.repeat(MAX_RULE_FILE_BYTES) + '\n';
  await expectError(rulesDir({ 'global.yaml': huge }), 'global.yaml', '', /over the 1048576-byte \(1 MiB\) limit/);
  // not UTF-8
  await expectError(rulesDir({ 'users/demo.yaml': Buffer.from([0x75, 0x73, 0x65, 0x72, 0x3a, 0x20, 0xff, 0xfe]) }), 'users/demo.yaml', '', /UTF-8/);
  // duplicate users, user file named after someone else, conflicting includes
  await expectError(rulesDir({ 'users/demo.json': '{"user": "demo", "rules": [100]}' }), 'users/demo.yaml', 'user', /duplicate user "demo"/);
  await expectError(rulesDir({ 'users/eve.yaml': 'user: mallory\n' }), 'users/eve.yaml', 'user', /must be in users\/mallory\.yaml/);
  await expectError(
    rulesDir({ 'users/demo.yaml': GOOD_USER + 'include: [{ class: dog, minScore: 0.5 }, { class: Dog, minScore: 0.7 }]\n' }),
    'users/demo.yaml',
    'include[1].class',
    /already included/,
  );
  // ...also in a file with other errors (found in the raw document, not only once the rest is fixed)
  r = await expectError(
    rulesDir({ 'users/demo.yaml': GOOD_USER + 'colour: red\n' + 'include: [{ class: dog, minScore: 0.5 }, { class: dog, minScore: 2 }]\n' }),
    'users/demo.yaml',
    'include[1].class',
    /already included at include\[0\]/,
  );
  assert.deepEqual(r.errors.map((e) => e.path).sort(), ['colour', 'include[1].class', 'include[1].minScore']);
  // a rule id past 2^53 (YAML reads it rounded) is one error, not one per broken check
  r = await expectError(rulesDir({ 'global.yaml': GOOD_GLOBAL.replace('id: 100', 'id: 9007199254740993') }), 'global.yaml', 'rules[0].id', /integer from 1 to 999999/);
  assert.equal(r.errors.filter((e) => e.path === 'rules[0].id').length, 1, r.errors.map(formatIssue).join('\n'));
  // folder-level problems
  await expectError(rulesDir({ 'users/demo.yaml': GOOD_USER }, false), 'global.yaml', '', /missing/);
  await expectError(rulesDir({ 'global.json': '{"rules": []}' }), 'global.yaml', '', /several global rules files/);
  const missing = path.join(tmpDir(), 'nope');
  const m = await checkRules(missing);
  assert.equal(m.ok, false);
  assert.equal(m.errors[0]?.file, missing);
});

test('several errors are all reported, and loadRuleSet throws E_CONFIG naming the first', async () => {
  const dir = rulesDir({
    'global.yaml': GOOD_GLOBAL.replace('minScore: 0.8', 'minScore: "high"'),
    'users/demo.yaml': GOOD_USER.replace('lobby:', 'lobby:\n    colour: red'),
  });
  const r = await checkRules(dir);
  assert.deepEqual(
    r.errors.map((e) => [path.relative(dir, e.file), e.path]),
    [
      ['global.yaml', 'rules[0].minScore'],
      ['users/demo.yaml', 'devices.lobby.colour'],
    ],
  );
  await assert.rejects(loadRuleSet(dir), (e) => {
    assert.ok(isVigilError(e, 'E_CONFIG'));
    assert.match(e.message, /global\.yaml:5 rules\[0\]\.minScore: .*expected number.*\(and 1 more error\)/);
    assert.equal(e.detail?.file, path.join(dir, 'global.yaml'));
    assert.equal(e.detail?.path, 'rules[0].minScore');
    assert.equal(typeof e.detail?.reason, 'string');
    return true;
  });
});

test('warnings: unknown classes in includes/excludes, no contacts, nothing ever unsafe, ignored files', async () => {
  const dir = rulesDir({
    'users/demo.yaml': GOOD_USER + 'include: [{ class: unicorn, minScore: 0.5 }]\n',
    'users/solo.yaml': 'user: solo\nexclude: [cat]\n',
    'users/notes.txt': 'hello',
    'users/..yaml': 'user: dots\n',
    'users/.eve.yaml': 'user: eve\n',
    'users/.editorconfig': 'root = true\n',
    'extra.yaml': 'a: 1\n',
  });
  const r = await checkRules(dir);
  assert.equal(r.ok, true, r.errors.map(formatIssue).join('\n'));
  const text = r.warnings.map(formatIssue).join('\n');
  assert.match(text, /users\/demo\.yaml:\d+ include\[0\]\.class: user demo include: class "unicorn"/);
  assert.match(text, /users\/solo\.yaml:\d+ contacts: user solo has no contacts/);
  assert.match(text, /users\/solo\.yaml:\d+ rules: user solo: no rule or include applies/);
  assert.match(text, /users\/notes\.txt: ignored/);
  assert.match(text, /extra\.yaml: ignored/);
  // Dotfiles are skipped; those named like rule files say so.
  assert.match(text, /users\/\.\.yaml: ignored: a hidden file/);
  assert.match(text, /users\/\.eve\.yaml: ignored: a hidden file/);
  assert.doesNotMatch(text, /editorconfig/);
  assert.equal(r.summary.users, 2);
});

test('JSON rule files work like YAML ones', async () => {
  const dir = rulesDir(
    {
      'global.json': JSON.stringify({ rules: [{ id: 100, name: 'animals', unsafe: ['cat'], minScore: 0.8 }] }, null, '\t'),
      'users/demo.json': JSON.stringify({ user: 'demo', rules: [100], contacts: { phone: ['+33123456789'] } }),
    },
    false,
  );
  const set = await loadRuleSet(dir);
  assert.equal(evaluate(detection([{ cls: 'cat', score: 0.9 }], { user: 'demo' }), set).unsafe, true);
  await expectError(rulesDir({ 'global.json': '{"rules": [}' }, false), 'global.json', '', /invalid JSON/);
});

test('ruleSetHash: stable under key and list reordering, changes with a threshold; serialize round-trips', async () => {
  const a = await loadRuleSet(rulesDir({}));
  const reordered = await loadRuleSet(
    rulesDir({
      'global.yaml': `rules:
  - minScore: 0.95
    unsafe: [person]
    name: people
    id: 200
  - { unsafe: [cat, dog, cat], name: animals, minScore: 0.8, id: 100 }
`,
      'users/demo.yaml': `devices:
  lobby: { exclude: [PERSON] }
contacts: { email: [a@example.com] }
rules: [200, 100]
user: demo
`,
    }),
  );
  assert.deepEqual(reordered, a);
  assert.equal(ruleSetHash(reordered), ruleSetHash(a));
  assert.match(ruleSetHash(a), /^[0-9a-f]{64}$/);

  const changed = await loadRuleSet(rulesDir({ 'global.yaml': GOOD_GLOBAL.replace('minScore: 0.8', 'minScore: 0.81') }));
  assert.notEqual(ruleSetHash(changed), ruleSetHash(a));

  const text = serializeRuleSet(a);
  assert.equal(createHash('sha256').update(text).digest('hex'), ruleSetHash(a), 'hash = sha256 of the committed file');
  assert.deepEqual(parseRuleSet(text), a);
  assert.equal(serializeRuleSet(parseRuleSet(text)), text);
  assert.throws(
    () => parseRuleSet(text.replace('"rules": [\n        100', '"rules": [\n        999'), 'rules.json'),
    (e) => isVigilError(e, 'E_CONFIG') && /rules\.json: users\.demo\.rules\[0\]: unknown rule id 999/.test(e.message),
  );
  assert.throws(() => parseRuleSet('{', 'rules.json'), (e) => isVigilError(e, 'E_CONFIG'));
  // A committed set stays readable when a later check is stricter: a webhook URL with user:pass@,
  // which vigil rules check now refuses, was accepted (and committed) before.
  const withUserinfo = { ...a, users: { ...a.users, demo: { ...a.users.demo!, contacts: { ...a.users.demo!.contacts, webhook: [{ url: 'https://u:p@hooks.example.com/x', format: 'generic' as const }] } } } };
  assert.equal(parseRuleSet(serializeRuleSet(withUserinfo)).users.demo!.contacts.webhook[0]!.url, 'https://u:p@hooks.example.com/x');
});
