/**
 * Benchmark 3, rules-replay: detections read back from a `detections` repo and re-evaluated by the
 * rule engine, no inference. A repo of a few thousand realistic detection documents is generated
 * and committed in batches of 32 (as the detect stage does), then:
 * - evaluate only (documents already in memory),
 * - read + evaluate the way the threats stage reads (readFile per path at a commit, JSON.parse,
 *   zod validation, evaluate), on loose objects and packed as `vigil start` packs them (packRepo),
 * - read + evaluate by walking the tree once and reading blobs by id (the cheapest read the repo
 *   API allows), loose and packed,
 * - vigil replay again after `vigil repo gc` (the whole repo in one pack),
 * - the threats stage itself on chunks of 16 (reads, evaluate, commit to `threats`).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import git from 'isomorphic-git';
import { commitChanges, diskUsage, ensureRepo, gcAll, gitArgs, gitdirOf, listFiles, openStore, packRepo, readFile, resolveRef, type Change, type RepoStore } from '../repos/index.js';
import { evaluate, loadRuleSet, ruleSetHash, type RuleSet } from '../rules/index.js';
import { DetectionDocSchema, type DetectionDoc } from '../stages/schema.js';
import { replayRules } from '../stages/replay.js';
import { threatsStage } from '../stages/threats.js';
import { bytes, fmt, now, round, target, tempDir, type Benchmark, type BenchOptions, type BenchOutcome } from './lib/common.js';
import { seededRandom as rng } from '../lib/seededRandom.js';

const ZONES = ['Europe/Paris', 'America/New_York', 'Asia/Tokyo', 'UTC', 'Australia/Sydney'];
const USERS = 20;
const DEVICES_PER_USER = 5;
/** Classes and their share of detected objects (a street/entrance camera mix). */
const CLASSES: Array<[string, number, number]> = [
  ['person', 0, 0.4], ['car', 2, 0.16], ['cat', 15, 0.05], ['dog', 16, 0.05], ['truck', 7, 0.05], ['bicycle', 1, 0.05],
  ['backpack', 24, 0.05], ['handbag', 26, 0.03], ['chair', 56, 0.05], ['potted plant', 58, 0.04], ['knife', 43, 0.01],
  ['motorcycle', 3, 0.03], ['suitcase', 28, 0.03],
];


const hex = (r: () => number, n: number) => Array.from({ length: n }, () => Math.floor(r() * 16).toString(16)).join('');

/** A rules folder with five global rules (two with active hours) and 16 users of varied shapes. */
function writeRules(dir: string): string {
  const rules = path.join(dir, 'rules');
  mkdirSync(path.join(rules, 'users'), { recursive: true });
  writeFileSync(path.join(rules, 'global.yaml'), [
    'rules:',
    '  - { id: 100, name: animals, unsafe: [dog, cat, bear], minScore: 0.8 }',
    '  - { id: 200, name: people, unsafe: [person], minScore: 0.95 }',
    '  - { id: 300, name: vehicles at night, unsafe: [bicycle, car, motorcycle, bus, truck], minScore: 0.6, activeHours: { from: "22:00", to: "06:00" }, minBoxArea: 0.01 }',
    '  - { id: 400, name: blades, unsafe: [knife, scissors], minScore: 0.5 }',
    '  - { id: 500, name: bags left at night, unsafe: [backpack, handbag, suitcase], minScore: 0.6, activeHours: { from: "20:00", to: "07:00" } }',
    '',
  ].join('\n'));
  for (let u = 0; u < 16; u++) {
    const lines = [`user: u${String(u).padStart(2, '0')}`];
    const sets = [[100], [100, 200], [100, 300], [100, 200, 300, 400], [300, 500], [100, 400, 500]];
    lines.push(`rules: [${sets[u % sets.length]!.join(', ')}]`);
    if (u % 3 === 0) lines.push('include: [{ class: person, minScore: 0.7, minBoxArea: 0.02 }]');
    if (u % 4 === 1) lines.push('exclude: [cat]');
    lines.push('contacts:', `  email: [u${u}@example.com]`);
    if (u % 2 === 0) {
      lines.push('devices:', '  cam0:', '    exclude: [person]', '  cam1:', '    activeHours: { from: "18:00", to: "08:00" }', '    minBoxArea: 0.005');
      if (u % 4 === 0) lines.push('  cam2:', '    rules: [100]', '    include: [{ class: backpack, minScore: 0.7 }]');
    }
    writeFileSync(path.join(rules, 'users', `u${String(u).padStart(2, '0')}.yaml`), lines.join('\n') + '\n');
  }
  return rules;
}

/** Realistic detection documents: 20 users x 5 devices, 0-8 objects each, capture times over a week. */
function makeDocs(n: number): Array<{ path: string; doc: DetectionDoc }> {
  const r = rng(42);
  const modelSha = 'ab'.repeat(32);
  const t0 = Date.UTC(2026, 9, 1);
  const out: Array<{ path: string; doc: DetectionDoc }> = [];
  for (let i = 0; i < n; i++) {
    const u = i % USERS;
    const d = Math.floor(i / USERS) % DEVICES_PER_USER;
    const user = `u${String(u).padStart(2, '0')}`;
    const device = `cam${d}`;
    const at = new Date(t0 + Math.floor(r() * 7 * 86_400_000) + i);
    const timestamp = at.toISOString().replace(/[-:.]/g, '');
    const tz = ZONES[u % ZONES.length]!;
    const count = Math.min(8, Math.floor(-Math.log(1 - r() * 0.999) * 2));
    const objects = Array.from({ length: count }, () => {
      let x = r();
      let pick = CLASSES[0]!;
      for (const c of CLASSES) {
        if (x < c[2]) {
          pick = c;
          break;
        }
        x -= c[2];
      }
      const w = 20 + r() * 500;
      const h = 20 + r() * 400;
      return { class: pick[0], classId: pick[1], score: round(0.25 + r() * 0.74, 4), box: { x: round(r() * (1280 - w), 1), y: round(r() * (720 - h), 1), width: round(w, 1), height: round(h, 1) } };
    });
    const frameId = hex(r, 64);
    const p = `${user}-${device}/${timestamp}.json`;
    out.push({
      path: p,
      doc: {
        kind: 'detection', frameId, tag: `${user}-${device}-${timestamp}-${tz.replace(/\//g, '.')}`, user, device, site: `s${u}`,
        capturedAt: at.toISOString(), timestamp, tz, datum: hex(r, 64),
        source: { repo: 'standardized', commit: hex(r, 40), path: p, sha256: hex(r, 64) },
        model: { name: 'yolov8n', sha256: modelSha }, image: { width: 1280, height: 720 }, objects,
      },
    });
  }
  return out;
}

/** Runs `fn` over every item, repeating whole passes until `minMs` passed; items per second. */
function rate<T>(items: readonly T[], minMs: number, fn: (item: T) => void): { perSec: number; passes: number } {
  let passes = 0;
  const t0 = now();
  do {
    for (const it of items) fn(it);
    passes++;
  } while (now() - t0 < minMs);
  return { perSec: Math.round((items.length * passes * 1000) / (now() - t0)), passes };
}

async function readEvaluateByPath(store: RepoStore, paths: readonly string[], commit: string, rules: RuleSet): Promise<{ perSec: number; unsafe: number; readMs: number; parseMs: number; evalMs: number }> {
  let unsafe = 0;
  let readMs = 0;
  let parseMs = 0;
  let evalMs = 0;
  const t0 = now();
  for (const p of paths) {
    const a = now();
    const buf = await readFile(store, 'detections', p, commit);
    const b = now();
    const parsed = DetectionDocSchema.safeParse(buf ? JSON.parse(buf.toString('utf8')) : null);
    if (!parsed.success) throw new Error(`bad doc ${p}`);
    const c = now();
    if (evaluate(parsed.data, rules).unsafe) unsafe++;
    const d = now();
    readMs += b - a;
    parseMs += c - b;
    evalMs += d - c;
  }
  const ms = now() - t0;
  const per = (x: number) => round((x * 1000) / paths.length, 1);
  return { perSec: Math.round((paths.length * 1000) / ms), unsafe, readMs: per(readMs), parseMs: per(parseMs), evalMs: per(evalMs) };
}

async function readEvaluateByTree(store: RepoStore, commit: string, rules: RuleSet): Promise<{ perSec: number; docs: number }> {
  const args = gitArgs(store, 'detections');
  const t0 = now();
  const { commit: c } = await git.readCommit({ ...args, oid: commit });
  let docs = 0;
  const walk = async (oid: string): Promise<void> => {
    for (const e of (await git.readTree({ ...args, oid })).tree) {
      if (e.type === 'tree') await walk(e.oid);
      else {
        const { blob } = await git.readBlob({ ...args, oid: e.oid });
        evaluate(JSON.parse(Buffer.from(blob).toString('utf8')) as DetectionDoc, rules);
        docs++;
      }
    }
  };
  await walk(c.tree);
  return { perSec: Math.round((docs * 1000) / (now() - t0)), docs };
}

async function run(o: BenchOptions): Promise<BenchOutcome> {
  const n = o.quick ? 1000 : 4000;
  const minMs = o.quick ? 300 : 1500;
  const tmp = tempDir('rules');
  try {
    const rules = await loadRuleSet(writeRules(tmp.dir));
    const store = openStore(tmp.dir);
    await ensureRepo(store, 'detections');
    const docs = makeDocs(n);
    const objects = docs.reduce((s, d) => s + d.doc.objects.length, 0);
    o.log(`  ${n} detection docs (${round(objects / n, 2)} objects/doc, ${USERS} users x ${DEVICES_PER_USER} devices), rule set ${ruleSetHash(rules).slice(0, 12)}: ${rules.rules.length} global rules, ${Object.keys(rules.users).length} users`);

    const commitPerSec = await commitDocs(store, docs, 32, 'bench');
    const head = (await resolveRef(store, 'detections', 'main'))!;
    const looseBytes = await diskUsage(gitdirOf(store, 'detections'));
    o.log(`  committed in batches of 32: ${fmt(commitPerSec, 0)} docs/s; repo ${bytes(looseBytes)} loose`);

    // Evaluate only.
    const parsed = docs.map((d) => d.doc);
    let unsafe = 0;
    for (const d of parsed) if (evaluate(d, rules).unsafe) unsafe++;
    const evalOnly = rate(parsed, minMs, (d) => void evaluate(d, rules));
    const validateEval = rate(parsed, minMs, (d) => void evaluate(DetectionDocSchema.parse(d), rules));
    o.log(`  evaluate only: ${fmt(evalOnly.perSec, 0)}/s (${unsafe} of ${n} unsafe); zod validation + evaluate: ${fmt(validateEval.perSec, 0)}/s`);

    const paths = (await listFiles(store, 'detections', head)).map((f) => f.path);
    const loose = await readEvaluateByPath(store, paths, head, rules);
    const looseTree = await readEvaluateByTree(store, head, rules);
    const looseBulk = await bulkReplay(store, rules, minMs);
    o.log(`  replay (vigil replay: one git cat-file stream, sha1-checked, zod, evaluate, compare), loose: ${fmt(looseBulk.perSec, 0)}/s [cold first pass ${fmt(looseBulk.firstPassPerSec, 0)}/s; CPU per doc: node ${looseBulk.cpuUsPerDoc.node} µs, git ${looseBulk.cpuUsPerDoc.git ?? '?'} µs]`);
    o.log(`  read+evaluate, loose objects: by path (as the threats stage) ${fmt(loose.perSec, 0)}/s [per doc: read ${loose.readMs} µs, parse+zod ${loose.parseMs} µs, evaluate ${loose.evalMs} µs]; tree walk ${fmt(looseTree.perSec, 0)}/s`);

    // Packed as `vigil start` packs in the background (AutoPacker -> packRepo: incremental,
    // geometric, no lock), then as `vigil repo gc` packs by hand (git gc, whole repo).
    let t = now();
    const autoPack = await packRepo(store, 'detections');
    const packMs = round(now() - t, 0);
    const packedBytes = await diskUsage(gitdirOf(store, 'detections'));
    store.cache = {};
    const packed = await readEvaluateByPath(store, paths, head, rules);
    const packedTree = await readEvaluateByTree(store, head, rules);
    const packedBulk = await bulkReplay(store, rules, minMs);
    o.log(`  replay, packed as vigil start does (packRepo, ${packMs} ms, ${autoPack.looseBefore} loose objects -> ${autoPack.packsAfter} pack(s), ${bytes(looseBytes)} -> ${bytes(packedBytes)}): ${fmt(packedBulk.perSec, 0)}/s [cold first pass ${fmt(packedBulk.firstPassPerSec, 0)}/s; CPU per doc: node ${packedBulk.cpuUsPerDoc.node} µs, git ${packedBulk.cpuUsPerDoc.git ?? '?'} µs]; by path ${fmt(packed.perSec, 0)}/s [read ${packed.readMs} µs]; tree walk ${fmt(packedTree.perSec, 0)}/s`);
    t = now();
    await gcAll(store);
    const gcMs = round(now() - t, 0);
    const gcBytes = await diskUsage(gitdirOf(store, 'detections'));
    store.cache = {};
    const gcBulk = await bulkReplay(store, rules, minMs);
    o.log(`  replay after vigil repo gc (${gcMs} ms, ${bytes(gcBytes)}): ${fmt(gcBulk.perSec, 0)}/s`);

    // The threats stage itself: chunks of 16 paths, as the pipeline runs it.
    const stagePaths = paths.slice(0, o.quick ? 64 : 320);
    t = now();
    for (let i = 0; i < stagePaths.length; i += 16) {
      await threatsStage(store, { batchId: `replay-${i / 16}`, detectionsCommit: head, paths: stagePaths.slice(i, i + 16), rulesCommit: null }, rules);
    }
    const stagePerSec = Math.round((stagePaths.length * 1000) / (now() - t));
    o.log(`  threats stage (read, evaluate, commit to threats; chunks of 16): ${fmt(stagePerSec, 0)} frames/s`);

    // At scale (not with --quick): the repo grown to SCALE_DOCS documents, packed as vigil start
    // packs it, then replayed once cold and once warm: whether the rate holds past a few thousand.
    const scale = o.quick ? null : await replayAtScale(store, rules, docs.length, o.log);

    return {
      summary: `replay (read + evaluate, vigil replay) ${fmt(packedBulk.perSec, 0)}/s packed as vigil start packs (${fmt(looseBulk.perSec, 0)}/s loose, ${fmt(gcBulk.perSec, 0)}/s after vigil repo gc)${scale ? `; over ${fmt(scale.docs, 0)} docs ${fmt(scale.coldPerSec, 0)}/s cold, ${fmt(scale.warmPerSec, 0)}/s warm` : ''}; evaluate only ${fmt(evalOnly.perSec, 0)}/s; read by path ${fmt(loose.perSec, 0)}/s loose, ${fmt(packed.perSec, 0)}/s packed; tree walk ${fmt(packedTree.perSec, 0)}/s packed; threats stage ${fmt(stagePerSec, 0)} frames/s (target >= 20,000/s)`,
      figures: {
        docs: n, objectsPerDoc: round(objects / n, 2), unsafe, users: USERS, devices: USERS * DEVICES_PER_USER,
        commitDocsPerSec: commitPerSec, repoBytes: { loose: looseBytes, packed: packedBytes, gc: gcBytes }, packMs, autoPack, gcMs,
        evaluateOnlyPerSec: evalOnly.perSec, zodValidateAndEvaluatePerSec: validateEval.perSec,
        readEvaluateByPath: { loose, packed }, readEvaluateTreeWalk: { loose: looseTree.perSec, packed: packedTree.perSec },
        replay: { loose: looseBulk, packed: packedBulk, gc: gcBulk },
        threatsStageFramesPerSec: stagePerSec,
        atScale: scale,
      },
      targets: [
        target('detections read back from storage and re-evaluated (vigil replay; repo packed as vigil start packs it)', '>=', 20_000, packedBulk.perSec, '/s'),
        ...(scale ? [target(`same over ${fmt(scale.docs, 0)} docs, one cold pass`, '>=', 20_000, scale.coldPerSec, '/s')] : []),
        target('evaluate only', '>=', 20_000, evalOnly.perSec, '/s'),
      ],
      markdown: [
        '| measurement | per second | notes |',
        '| --- | --- | --- |',
        `| **replay: read back + sha1 check + parse + zod + evaluate + compare with threats on record** (\`vigil replay\`, one \`git cat-file --batch\` stream), loose | **${fmt(looseBulk.perSec, 0)}** | ${looseBulk.passes} passes over ${n} docs in ${fmt(looseBulk.ms, 0)} ms after a first (cold, untimed) pass at ${fmt(looseBulk.firstPassPerSec, 0)}/s; CPU per doc: node ${looseBulk.cpuUsPerDoc.node} µs, git ${looseBulk.cpuUsPerDoc.git ?? '?'} µs |`,
        `| same, packed as \`vigil start\` packs (packRepo: incremental, geometric) | **${fmt(packedBulk.perSec, 0)}** | ${packedBulk.passes} passes over ${n} docs in ${fmt(packedBulk.ms, 0)} ms after a first (cold, untimed) pass at ${fmt(packedBulk.firstPassPerSec, 0)}/s; CPU per doc: node ${packedBulk.cpuUsPerDoc.node} µs, git ${packedBulk.cpuUsPerDoc.git ?? '?'} µs |`,
        `| same, after \`vigil repo gc\` (whole repo, one pack) | ${fmt(gcBulk.perSec, 0)} | ${gcBulk.passes} passes in ${fmt(gcBulk.ms, 0)} ms |`,
        `| evaluate only (docs in memory) | ${fmt(evalOnly.perSec, 0)} | ${unsafe} of ${n} unsafe |`,
        `| zod validation + evaluate | ${fmt(validateEval.perSec, 0)} | DetectionDocSchema.parse per doc |`,
        `| read by path + parse + zod + evaluate, loose | ${fmt(loose.perSec, 0)} | per doc: read ${loose.readMs} µs, parse+zod ${loose.parseMs} µs, evaluate ${loose.evalMs} µs |`,
        `| same, packed (packRepo) | ${fmt(packed.perSec, 0)} | per doc: read ${packed.readMs} µs |`,
        `| tree walk + readBlob by id + evaluate, loose | ${fmt(looseTree.perSec, 0)} | |`,
        `| same, packed | ${fmt(packedTree.perSec, 0)} | |`,
        `| threats stage, chunks of 16 (with commits) | ${fmt(stagePerSec, 0)} | ${stagePaths.length} frames |`,
        ...(scale
          ? [
              `| **replay over ${fmt(scale.docs, 0)} docs, one cold pass** (packed as \`vigil start\` packs) | **${fmt(scale.coldPerSec, 0)}** | ${fmt(scale.coldMs, 0)} ms; a million at this rate: ${round(1_000_000 / scale.coldPerSec, 1)} s; repo grown in commits of ${SCALE_COMMIT} docs (${fmt(scale.commitDocsPerSec, 0)} docs/s), packed in ${fmt(scale.packMs, 0)} ms to ${bytes(scale.packedBytes)} |`,
              `| same, a second (warm) pass | ${fmt(scale.warmPerSec, 0)} | ${fmt(scale.warmMs, 0)} ms |`,
            ]
          : []),
        `| commit detection docs, batches of 32 | ${fmt(commitPerSec, 0)} | repo ${bytes(looseBytes)} loose, ${bytes(packedBytes)} packed by packRepo, ${bytes(gcBytes)} after gc |`,
      ],
      notes: [
        `${n} detection docs, ${USERS} users x ${DEVICES_PER_USER} devices, 0-8 objects each (mean ${round(objects / n, 2)}), 13 COCO classes; 5 global rules (2 with active hours, so local time is computed with Intl), 16 users with includes, excludes and device overrides, 4 users without a rules file.`,
        'Single-threaded (one Node event loop); "by path" uses repos readFile(store, repo, path, commit) per document, which resolves the commit and walks the tree from the root each time (what a stage does for one document; stages now read a chunk with readFiles, one tree read per folder).',
        'The replay rates are warm: one untimed first pass per repo state (reported as the cold pass), then whole passes for at least the minimum time; CPU per doc is this process (process.cpuUsage) and git (children\'s CPU from /proc/self/stat).',
        '"replay" is stages/replay.ts (`vigil replay --rules <dir>`): `git ls-tree -r` then one `git cat-file --batch` stream, each blob checked against its id (sha1), JSON.parse, zod, evaluate, merged by path with the threats on record. It needs the system git (as `vigil repo gc` does).',
      ],
    };
  } finally {
    tmp.cleanup();
  }
}

/** Commits `docs` to the detections repo, `per` a commit (batch ids `<tag>-<n>`). @returns documents per second */
async function commitDocs(store: RepoStore, docs: ReturnType<typeof makeDocs>, per: number, tag: string): Promise<number> {
  const t = now();
  for (let i = 0; i < docs.length; i += per) {
    const changes: Change[] = docs.slice(i, i + per).map((d) => ({ path: d.path, content: JSON.stringify(d.doc, null, 1) + '\n' }));
    await commitChanges(store, { repo: 'detections', changes, provenance: { batchId: `${tag}-${i / per}`, stage: 'detect', stageVersion: '1', inputs: [] }, summary: 'bench detections' });
  }
  return Math.round((docs.length * 1000) / (now() - t));
}

/** Documents in the repo for the at-scale replay, and documents per commit while growing it. */
const SCALE_DOCS = 100_000;
const SCALE_COMMIT = 500;

/**
 * Grows the detections repo to SCALE_DOCS documents (the same generator, continued), packs it as
 * `vigil start` does, and replays it once cold (fresh store cache, first read of the new pack) and
 * once warm. @returns the rates, or null when the repo already holds that many
 */
async function replayAtScale(store: RepoStore, rules: RuleSet, have: number, log: (s: string) => void) {
  if (have >= SCALE_DOCS) return null;
  const commitDocsPerSec = await commitDocs(store, makeDocs(SCALE_DOCS).slice(have), SCALE_COMMIT, 'bench-scale');
  const t = now();
  await packRepo(store, 'detections');
  const packMs = round(now() - t, 0);
  const packedBytes = await diskUsage(gitdirOf(store, 'detections'));
  store.cache = {};
  // One cold pass, then one warm pass (no minimum time).
  const r = await bulkReplay(store, rules, 0);
  if (r.firstPassFrames !== SCALE_DOCS || r.frames !== SCALE_DOCS) throw new Error(`replay at scale read ${r.firstPassFrames} and ${r.frames} docs, not ${SCALE_DOCS}`);
  const out = {
    docs: SCALE_DOCS, commitDocsPerSec, packMs, packedBytes,
    coldMs: r.firstPassMs, coldPerSec: r.firstPassPerSec, warmMs: r.ms, warmPerSec: r.perSec,
  };
  log(`  at scale: ${fmt(SCALE_DOCS, 0)} docs (grown at ${fmt(commitDocsPerSec, 0)} docs/s, packed in ${fmt(packMs, 0)} ms, ${bytes(packedBytes)}): replay ${fmt(out.coldPerSec, 0)}/s cold, ${fmt(out.warmPerSec, 0)}/s warm`);
  return out;
}

/**
 * Replays the whole detections repo under `rules` (what `vigil replay` does), whole passes until
 * `minMs` passed, like the in-memory rows (a real replay of a year is one long pass: warm). The
 * first pass is cold (JIT, page cache, the pack's index): its rate is reported on its own and the
 * timed passes start after it. CPU per document: this process, and git's (its children, Linux).
 */
async function bulkReplay(store: RepoStore, rules: RuleSet, minMs: number): Promise<{ perSec: number; frames: number; ms: number; passes: number; firstPassPerSec: number; firstPassFrames: number; firstPassMs: number; cpuUsPerDoc: { node: number; git: number | null } }> {
  const t = now();
  const first = await replayRules(store, rules, { limit: 0 });
  const firstPassMs = now() - t;
  const firstPassPerSec = Math.round((first.frames * 1000) / firstPassMs);
  const c0 = process.cpuUsage();
  const k0 = childCpuMs();
  const t0 = now();
  let frames = 0;
  let passes = 0;
  do {
    const r = await replayRules(store, rules, { limit: 0 });
    frames += r.frames;
    passes++;
  } while (now() - t0 < minMs);
  const ms = now() - t0;
  const c = process.cpuUsage(c0);
  const k1 = childCpuMs();
  const cpuUsPerDoc = { node: round((c.user + c.system) / frames, 1), git: k0 !== null && k1 !== null ? round(((k1 - k0) * 1000) / frames, 1) : null };
  return { perSec: Math.round((frames * 1000) / ms), frames, ms: round(ms, 0), passes, firstPassPerSec, firstPassFrames: first.frames, firstPassMs: round(firstPassMs, 0), cpuUsPerDoc };
}

/** CPU time (user + system, ms) of the children this process has waited for, from /proc (null elsewhere). */
function childCpuMs(): number | null {
  try {
    const f = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ');
    return (Number(f[13]) + Number(f[14])) * 10;
  } catch {
    return null;
  }
}

/** Benchmark 3. */
export const rulesReplay: Benchmark = { name: 'rules-replay', title: 'Rules replay over stored detections', run };
