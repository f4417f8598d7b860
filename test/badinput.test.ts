/**
 * Bad-input corpus (test/helpers/corpus.ts) run against the real components: the ingest API on a real
 * socket, real repos in a temp folder, real sharp validation through the `validateFrames` stage, the
 * real rules checker (in child processes, so a crash or a hang is observed, not suffered) and the
 * real device registry. No mocks. Every case's expected outcome is asserted (none is a todo).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { DeviceRegistry } from '../ingest/devices.js';
import { FrameIngestor } from '../ingest/frameIngestor.js';
import { isVigilError } from '../lib/errors.js';
import { FrameDocSchema } from '../lib/schemas.js';
import { listFiles, openStore, readJson, repoExists, resolveRef, type RepoStore } from '../repos/index.js';
import { createApiServer, OPENAPI } from '../server/index.js';
import { InvalidDocSchema, StandardizedDocSchema, type InvalidDoc, type StandardizedDoc } from '../stages/schema.js';
import { validateFrames } from '../stages/validateFrames.js';
import { parseValidateConfig } from '../validate/index.js';
import {
  buildIdCases,
  buildImageCases,
  buildRequestCases,
  buildRuleCases,
  GOOD_GLOBAL,
  GOOD_USER,
  RULE_CASE_DEADLINE_MS,
  SERVER_MAX_BYTES,
  STAGE_MAX_BYTES,
  type Body,
  type RawRequestCase,
  type RequestExpect,
  type RuleCase,
  type RuleCheckReport,
  type RuleFileContent,
} from './helpers/corpus.js';
import { FIXTURES, tmpDir } from './helpers/tmp.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const CORPUS_MODULE = path.join(import.meta.dirname, 'helpers', 'corpus.ts');
const GOOD = readFileSync(path.join(FIXTURES, 'rocket.jpg'));
const OTHER = readFileSync(path.join(FIXTURES, 'astronaut.png'));
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const VALIDATE_CONFIG = parseValidateConfig({ maxBytes: STAGE_MAX_BYTES });

/** Counts for the one-line corpus summary, filled by each test. */
const summary: Record<string, Record<string, number>> = {};
const tally = (category: string, outcome: string) => {
  const c = (summary[category] ??= {});
  c[outcome] = (c[outcome] ?? 0) + 1;
};

// ---------------------------------------------------------------------------------------------------
// HTTP plumbing
// ---------------------------------------------------------------------------------------------------

interface Reply {
  /** 0 when no answer came (the connection closed or the client reset it). */
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
  continued: boolean;
  ms: number;
}

const parseJson = (text: string): unknown => {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
};

/** One request with node's client on a fresh connection; resolves even when the server closes early. */
function httpRequest(
  port: number,
  opts: { method: string; path: string; headers: Record<string, string | string[]>; body?: Buffer; chunkSize?: number; waitContinue?: boolean },
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let continued = false;
    let answered = false;
    const headers: Record<string, string | string[] | number> = { ...opts.headers };
    if (opts.waitContinue && opts.body) {
      headers.Expect = '100-continue';
      headers['Content-Length'] = opts.body.length;
    }
    const guard = setTimeout(() => {
      req.destroy();
      if (!answered) resolve({ status: 0, headers: {}, text: '', json: undefined, continued, ms: performance.now() - t0 });
    }, 15_000);
    const req = http.request({ host: '127.0.0.1', port, method: opts.method, path: opts.path, headers, agent: false }, (res) => {
      answered = true;
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('error', () => undefined);
      let done = false;
      const finish = () => {
        if (done) return;
        done = true;
        clearTimeout(guard);
        const text = Buffer.concat(parts).toString('utf8');
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: parseJson(text), continued, ms: performance.now() - t0 });
      };
      res.on('end', finish);
      res.on('close', finish);
    });
    req.on('error', (err) => {
      if (answered) return;
      clearTimeout(guard);
      reject(err);
    });
    req.on('continue', () => {
      continued = true;
      req.end(opts.body);
    });
    if (opts.chunkSize && opts.body) {
      for (let i = 0; i < opts.body.length; i += opts.chunkSize) req.write(opts.body.subarray(i, i + opts.chunkSize));
      req.end();
    } else if (!opts.waitContinue) {
      req.end(opts.body);
    }
  });
}

/** Writes a raw request on a socket and parses the (single) answer by hand. */
function rawRequest(port: number, head: Buffer, body: Buffer | undefined, then: NonNullable<RawRequestCase['then']>): Promise<Reply> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const s = net.connect(port, '127.0.0.1');
    let data = Buffer.alloc(0);
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const settle = (r: Omit<Reply, 'ms' | 'continued'>) => {
      if (settled) return;
      settled = true;
      clearInterval(timer);
      clearTimeout(guard);
      s.destroy();
      resolve({ ...r, continued: false, ms: performance.now() - t0 });
    };
    const none = () => settle({ status: 0, headers: {}, text: data.toString('latin1'), json: undefined });
    const guard = setTimeout(none, 10_000);
    const tryParse = (closed: boolean) => {
      const end = data.indexOf('\r\n\r\n');
      if (end < 0) return closed ? none() : undefined;
      const lines = data.subarray(0, end).toString('latin1').split('\r\n');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')?.[1] ?? 0);
      const headers: Record<string, string> = {};
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      let bodyBytes = data.subarray(end + 4);
      const cl = headers['content-length'];
      if (cl !== undefined) {
        if (bodyBytes.length < Number(cl) && !closed) return;
        bodyBytes = bodyBytes.subarray(0, Number(cl));
      } else if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
        if (!bodyBytes.includes('0\r\n\r\n') && !closed) return;
      } else if (!closed) {
        return;
      }
      const text = bodyBytes.toString('utf8');
      settle({ status, headers, text, json: parseJson(text) });
    };
    s.on('data', (d: Buffer) => {
      data = Buffer.concat([data, d]);
      tryParse(false);
    });
    s.on('error', () => undefined);
    s.on('close', () => tryParse(true));
    s.on('connect', () => {
      s.write(head);
      if (then === 'trickleHeaders') {
        timer = setInterval(() => s.writable && s.write('X-A: b\r\n'), 50);
        return;
      }
      if (then === 'trickleBody' && body) {
        let off = 0;
        timer = setInterval(() => {
          if (s.writable && off < body.length) s.write(body.subarray(off, (off += 10)));
        }, 50);
        return;
      }
      if (body) s.write(body);
      if (then === 'end') s.end();
      if (then === 'destroy') setTimeout(() => settle({ status: 0, headers: {}, text: '', json: undefined }), 50);
    });
  });
}

/** Head of the frames repo (null before its first commit). */
async function framesHead(store: RepoStore): Promise<string | null> {
  return repoExists(store, 'frames') ? resolveRef(store, 'frames', 'main') : null;
}

async function objectCount(store: RepoStore): Promise<number> {
  let n = 0;
  for await (const _ of store.objects.list()) n++;
  return n;
}

/** A rejected answer: the expected 4xx, JSON `{"error":{"code","message"}}`, a one-line bounded message. */
function assertError(r: Reply, status: number, code: string | undefined, message?: RegExp): void {
  assert.equal(r.status, status, `status ${r.status}: ${r.text.slice(0, 300)}`);
  assert.match(String(r.headers['content-type']), /^application\/json/, 'JSON answer');
  if (r.text === '') return; // HEAD: headers only
  assert.ok(r.json && typeof r.json === 'object', `JSON body: ${r.text.slice(0, 200)}`);
  assert.deepEqual(Object.keys(r.json), ['error']);
  assert.deepEqual(Object.keys(r.json.error).sort(), ['code', 'message']);
  if (code !== undefined) assert.equal(r.json.error.code, code);
  const m: unknown = r.json.error.message;
  assert.ok(typeof m === 'string' && m.length > 0 && m.length <= 500, 'a message of 1..500 characters');
  assert.doesNotMatch(m, /[\r\n]/, 'one line');
  if (message) assert.match(m, message);
}

// ---------------------------------------------------------------------------------------------------
// The API environment
// ---------------------------------------------------------------------------------------------------

interface Env {
  port: number;
  store: RepoStore;
  registry: DeviceRegistry;
  keys: { alice: string; bob: string; revoked: string };
  close: () => Promise<void>;
}

async function setup(): Promise<Env> {
  const dir = tmpDir('vigil-badinput-');
  const store = openStore(dir);
  const registry = new DeviceRegistry(dir);
  const alice = await registry.add({ user: 'alice', device: 'cam1', site: 'home', tz: 'Europe/Paris' });
  const bob = await registry.add({ user: 'bob', device: 'cam2', site: 'shop', tz: 'America/New_York' });
  const carol = await registry.add({ user: 'carol', device: 'cam3' });
  await registry.revoke('carol', 'cam3');
  const ingestor = new FrameIngestor(store, { maxBytes: SERVER_MAX_BYTES });
  const server = createApiServer({
    store,
    registry,
    ingestor,
    maxBytes: SERVER_MAX_BYTES,
    timeouts: { headersMs: 500, requestMs: 1500, keepAliveMs: 1000 },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    store,
    registry,
    keys: { alice: alice.key, bob: bob.key, revoked: carol.key },
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** Fills the corpus placeholders for one case. */
function filler(env: Env, time: string, bodyLength: number): (s: string) => string {
  const a = env.keys.alice;
  const last = a.slice(-1);
  const values: Record<string, string> = {
    'key:alice': a,
    'key:alice:wrong-secret': `${a.slice(0, -1)}${last === 'A' ? 'B' : 'A'}`,
    'key:alice:truncated': a.slice(0, -1),
    'key:alice:upper': a.toUpperCase(),
    'key:bob': env.keys.bob,
    'key:revoked': env.keys.revoked,
    time,
    future1h: new Date(Date.now() + 3_600_000).toISOString(),
    len: String(bodyLength),
  };
  return (s) =>
    s.replace(/\{\{([a-z0-9:-]+)\}\}/gi, (m, name: string) => {
      const v = values[name];
      if (v === undefined) throw new Error(`unknown placeholder ${m}`);
      return v;
    });
}

const bodyOf = (b: Body): Buffer | undefined => (b === 'good' ? GOOD : b === 'other' ? OTHER : b === 'none' ? undefined : b);

/** One exchange of the API corpus, with the store's state around it. */
interface Exchange {
  id: string;
  kind: 'image' | 'request' | 'final';
  reply: Reply;
  body: Buffer | undefined;
  objectsBefore: number;
  objectsAfter: number;
  headBefore: string | null;
  headAfter: string | null;
  expectStatus: number;
}

// ---------------------------------------------------------------------------------------------------
// 1 + 2 + 4: images and requests through the API, then validateFrames; reconcile.
// ---------------------------------------------------------------------------------------------------

test('API corpus: bad images and bad requests get a 4xx or end in exactly one of standardized/invalid', { timeout: 180_000 }, async (t) => {
  const t0 = performance.now();
  const images = await buildImageCases(FIXTURES);
  const requests = buildRequestCases();
  const env = await setup();
  const tBuilt = performance.now();
  t.after(env.close);
  const base = Date.UTC(2024, 5, 1, 0, 0, 0);
  let seq = 0;
  const exchanges: Exchange[] = [];
  const byId = new Map<string, Exchange>();

  // Exchanges run one at a time, so the store's state after one is the state before the next.
  let state = { objects: await objectCount(env.store), head: await framesHead(env.store) };
  const around = async (id: string, kind: Exchange['kind'], expectStatus: number, body: Buffer | undefined, send: () => Promise<Reply>) => {
    const before = state;
    const reply = await send();
    state = { objects: await objectCount(env.store), head: await framesHead(env.store) };
    const ex: Exchange = {
      id,
      kind,
      reply,
      body,
      objectsBefore: before.objects,
      objectsAfter: state.objects,
      headBefore: before.head,
      headAfter: state.head,
      expectStatus,
    };
    exchanges.push(ex);
    byId.set(id, ex);
    return ex;
  };

  for (const c of images) {
    const time = new Date(base + seq++ * 1000).toISOString();
    const expectStatus = c.expect.kind === 'reject' ? c.expect.status : 202;
    await around(c.id, 'image', expectStatus, c.bytes, () =>
      httpRequest(env.port, {
        method: 'POST',
        path: '/v1/frames',
        headers: { Authorization: `Bearer ${env.keys.alice}`, 'Content-Type': c.contentType, 'X-Capture-Time': time },
        body: c.bytes,
      }),
    );
  }

  for (const c of requests) {
    const time = c.via === 'http' && c.fixedTime ? c.fixedTime : new Date(base + seq++ * 1000).toISOString();
    const body = bodyOf(c.body ?? 'none');
    await around(c.id, 'request', c.expect.status, body, () => {
      const fill = filler(env, time, body?.length ?? 0);
      if (c.via === 'http') {
        const headers = Object.fromEntries(Object.entries(c.headers).map(([k, v]) => [k, typeof v === 'string' ? fill(v) : v.map(fill)]));
        return httpRequest(env.port, {
          method: c.method,
          path: fill(c.path),
          headers,
          ...(body ? { body } : {}),
          ...(c.chunkSize ? { chunkSize: c.chunkSize } : {}),
          ...(c.waitContinue ? { waitContinue: true } : {}),
        });
      }
      const head = Buffer.from(fill(c.head), c.encoding ?? 'latin1');
      const sent = body && c.bodyBytes !== undefined ? body.subarray(0, c.bodyBytes) : body;
      return rawRequest(env.port, head, sent, c.then ?? 'wait');
    });
  }

  // The server stayed up: a good request at the end is accepted.
  const finalTime = new Date(base + seq++ * 1000).toISOString();
  const final = await around('final-good-request', 'final', 202, GOOD, () =>
    httpRequest(env.port, { method: 'POST', path: '/v1/frames', headers: { Authorization: `Bearer ${env.keys.alice}`, 'Content-Type': 'image/jpeg', 'X-Capture-Time': finalTime }, body: GOOD }),
  );

  const tSent = performance.now();
  // Every frame the API accepted goes through the real validate stage (no Temporal).
  const framesCommit = await resolveRef(env.store, 'frames', 'main');
  assert.ok(framesCommit, 'frames were committed');
  const frameFiles = await listFiles(env.store, 'frames');
  const refs = await Promise.all(
    frameFiles.map(async (f) => {
      const doc = FrameDocSchema.parse(await readJson(env.store, 'frames', f.path));
      return { path: f.path, frameId: doc.frameId, site: doc.site };
    }),
  );
  const out = await validateFrames(env.store, { batchId: 'badinput-corpus', framesCommit, frames: refs }, VALIDATE_CONFIG);
  const tValidated = performance.now();
  const secs = (a: number, b: number) => ((b - a) / 1000).toFixed(1);
  t.diagnostic(`timings: corpus ${secs(t0, tBuilt)} s, ${exchanges.length} exchanges ${secs(tBuilt, tSent)} s, validateFrames on ${refs.length} frames ${secs(tSent, tValidated)} s`);
  const standardized = new Map<string, StandardizedDoc>();
  for (const f of await listFiles(env.store, 'standardized')) standardized.set(f.path, StandardizedDocSchema.parse(await readJson(env.store, 'standardized', f.path)));
  const invalid = new Map<string, InvalidDoc>();
  for (const f of await listFiles(env.store, 'invalid')) invalid.set(f.path, InvalidDocSchema.parse(await readJson(env.store, 'invalid', f.path)));

  /** Checks the HTTP side common to every case. */
  const checkHttp = (ex: Exchange, expect: RequestExpect) => {
    const r = ex.reply;
    if (expect.status === 0) {
      assert.equal(r.status, 0, `no answer expected, got ${r.status} ${r.text.slice(0, 200)}`);
      assert.equal(ex.objectsAfter, ex.objectsBefore, 'nothing stored');
      assert.equal(ex.headAfter, ex.headBefore, 'no frames commit');
      return;
    }
    if (expect.status === 202) {
      assert.equal(r.status, 202, r.text.slice(0, 300));
      assert.deepEqual(Object.keys(r.json).sort(), ['duplicate', 'frameId', 'path', 'tag']);
      if (ex.body) assert.equal(r.json.frameId, sha256(ex.body), 'frameId is the sha256 of the bytes sent');
      const device = expect.device ?? 'alice-cam1';
      assert.ok(String(r.json.path).startsWith(`${device}/`), `path ${r.json.path} names ${device}`);
      assert.ok(String(r.json.tag).startsWith(`${device}-`), `tag ${r.json.tag} names ${device}`);
      if (expect.duplicate !== undefined) assert.equal(r.json.duplicate, expect.duplicate);
      assert.ok(ex.objectsAfter - ex.objectsBefore <= 1, 'at most one new object');
      if (r.json.duplicate) assert.equal(ex.headAfter, ex.headBefore, 'a duplicate writes no commit');
      else assert.notEqual(ex.headAfter, ex.headBefore, 'a new frame is committed before the answer');
      return;
    }
    assertError(r, expect.status, expect.code, expect.message);
    // Nothing from a rejected request reaches the object store or the frames repo.
    assert.equal(ex.objectsAfter, ex.objectsBefore, `object store unchanged (${ex.objectsBefore} -> ${ex.objectsAfter})`);
    assert.equal(ex.headAfter, ex.headBefore, 'frames repo unchanged');
  };

  /** Where an accepted frame ended: exactly one of standardized / invalid. */
  const outcomeOf = (framePath: string) => {
    const s = standardized.get(framePath);
    const i = invalid.get(framePath);
    assert.ok((s === undefined) !== (i === undefined), `${framePath} is in exactly one of standardized/invalid (std ${!!s}, inv ${!!i})`);
    return { s, i };
  };

  await t.test('images', async (t2) => {
    for (const c of images) {
      const ex = byId.get(c.id)!;
      const e = c.expect;
      const outcome = e.kind === 'reject' ? String(e.status) : e.kind === 'standardized' ? 'standardized' : `invalid:${e.reason}`;
      tally('image', e.kind === 'reject' ? String(e.status) : e.kind === 'standardized' ? 'standardized' : 'invalid');
      await t2.test(`${c.id} -> ${outcome}`, () => {
        if (e.kind === 'reject') {
          checkHttp(ex, { status: e.status, code: e.code });
          return;
        }
        checkHttp(ex, { status: 202, device: 'alice-cam1', duplicate: false });
        const { s, i } = outcomeOf(ex.reply.json.path);
        if (e.kind === 'standardized') {
          assert.ok(s, `standardized, got invalid:${i?.reason} (${i?.message})`);
          if (e.warning) assert.ok(s.warnings.some((w) => w.startsWith(`${e.warning}:`)), `warning ${e.warning} in ${JSON.stringify(s.warnings)}`);
          if (e.size) assert.deepEqual([s.width, s.height], [...e.size], 'dimensions after EXIF orientation');
          assert.equal(s.object.mediaType, 'image/jpeg');
        } else {
          assert.ok(i, `invalid:${e.reason}, got standardized`);
          assert.equal(i.reason, e.reason, i.message);
          assert.doesNotMatch(i.message, /[\r\n]/);
          assert.equal(i.cameraFault, e.reason === 'black' || e.reason === 'blank');
        }
      });
    }
  });

  await t.test('requests', async (t2) => {
    for (const c of requests) {
      const ex = byId.get(c.id)!;
      tally('request', c.expect.status === 0 ? 'reset' : String(c.expect.status));
      await t2.test(`${c.id} -> ${c.expect.status || 'no answer'}`, () => {
        checkHttp(ex, c.expect);
        if (c.via === 'http' && c.waitContinue) assert.equal(ex.reply.continued, false, 'refused before any body byte was asked for');
        if (c.expect.status === 202) {
          const { s } = outcomeOf(ex.reply.json.path);
          assert.ok(s, 'the good frame is standardized');
          assert.ok(s.tag.startsWith(`${c.expect.device}-`) && s.user === c.expect.device?.split('-')[0], 'the stored documents name the key\'s own device');
        }
      });
    }
    await t2.test('there is no user/device header to spoof: the key alone names the device (OpenAPI)', () => {
      const names = (OPENAPI.paths['/v1/frames']?.post?.parameters ?? []).map((p) => ('name' in p ? p.name : ''));
      assert.ok(names.includes('X-Device-Key'));
      assert.deepEqual(names.filter((n) => /user|device|site/i.test(n) && n !== 'X-Device-Key'), []);
    });
  });

  await t.test('reconcile: server up, sent = accepted + rejected, accepted frames = standardized + invalid', () => {
    assert.equal(final.reply.status, 202, `the server still accepts a good frame: ${final.reply.text}`);
    const accepted = exchanges.filter((e) => e.reply.status === 202);
    const rejected = exchanges.filter((e) => e.reply.status >= 400 && e.reply.status < 500);
    const resets = exchanges.filter((e) => e.reply.status === 0 && e.expectStatus === 0);
    const other = exchanges.filter((e) => !accepted.includes(e) && !rejected.includes(e) && !resets.includes(e));
    assert.deepEqual(other.map((e) => `${e.id}: ${e.reply.status}`), [], 'no 5xx, no unexpected silence');
    // Sent: every case of the corpus, counted from the corpus itself, once each, and the final good request.
    const sent = images.length + requests.length + 1;
    assert.equal(new Set(exchanges.map((e) => e.id)).size, sent, 'each case sent once');
    assert.equal(accepted.length + rejected.length + resets.length, sent, 'sent = accepted + rejected (+ client resets, which nobody can answer)');
    assert.equal(accepted.length, images.filter((c) => c.expect.kind !== 'reject').length + requests.filter((c) => c.expect.status === 202).length + 1, 'accepted: the cases expected to be');
    assert.equal(resets.length, requests.filter((r) => r.expect.status === 0).length);
    // Every rejected request has a clear 4xx and a one-line JSON message.
    for (const e of rejected) assertError(e.reply, e.reply.status, undefined);

    const distinct = new Set(accepted.filter((e) => e.reply.json.duplicate === false).map((e) => String(e.reply.json.path)));
    assert.equal(distinct.size, accepted.filter((e) => e.reply.json.duplicate === false).length, 'each accepted frame has its own path');
    assert.deepEqual([...distinct].sort(), frameFiles.map((f) => f.path).sort(), 'the frames repo holds exactly the accepted frames');
    const std = [...standardized.keys()];
    const inv = [...invalid.keys()];
    assert.deepEqual(std.filter((p) => invalid.has(p)), [], 'no frame is both standardized and invalid');
    assert.equal(std.length + inv.length, distinct.size, `accepted ${distinct.size} = standardized ${std.length} + invalid ${inv.length}`);
    assert.deepEqual([...std, ...inv].sort(), [...distinct].sort());
    assert.equal(out.accepted.length + out.rejected.length, distinct.size);
    t.diagnostic(`api: sent ${exchanges.length} = accepted ${accepted.length} + rejected ${rejected.length} + client resets ${resets.length}; frames ${distinct.size} = standardized ${std.length} + invalid ${inv.length}`);
  });
});

// ---------------------------------------------------------------------------------------------------
// 2: device ids at `vigil device add` level.
// ---------------------------------------------------------------------------------------------------

test('device ids: path tricks, NUL and unicode look-alikes are E_BAD_ID; bad zones E_BAD_INPUT; nothing registered', async (t) => {
  const dir = tmpDir('vigil-badids-');
  const registry = new DeviceRegistry(dir);
  await registry.add({ user: 'alice', device: 'cam1' });
  const before = JSON.stringify(await registry.list());
  for (const c of buildIdCases()) {
    tally('ids', c.expectCode);
    await t.test(`${c.id} -> ${c.expectCode}`, async () => {
      await assert.rejects(registry.add(c.input as { user: string; device: string; site?: string; tz?: string }), (err: unknown) => {
        assert.ok(isVigilError(err, c.expectCode), `expected ${c.expectCode}, got ${String(err)}`);
        assert.doesNotMatch(err.message, /[\r\n\u0000]/, 'one line, no NUL');
        assert.match(err.message, c.field === 'tz' ? /time zone/ : new RegExp(`^${c.field} id `));
        return true;
      });
    });
  }
  assert.equal(JSON.stringify(await registry.list()), before, 'the registry is unchanged');
});

// ---------------------------------------------------------------------------------------------------
// 3: rule files, checked in child processes under a deadline.
// ---------------------------------------------------------------------------------------------------

type RuleOutcome = { kind: 'report'; report: RuleCheckReport } | { kind: 'crashed'; detail: string } | { kind: 'hung'; ms: number };

/** Runs checkRules on each folder in a child process; a crash or a hang is attributed to its folder and the rest continue. */
function checkInChild(dirs: readonly string[], results: Map<string, RuleOutcome>): Promise<void> {
  if (dirs.length === 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CORPUS_MODULE, '--check-rules', ...dirs], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let current: string | undefined;
    let deadline: NodeJS.Timeout | undefined;
    let stdout = '';
    let stderr = '';
    let hung = false;
    child.stderr.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString('utf8')).slice(-20_000);
    });
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString('utf8');
      let nl: number;
      while ((nl = stdout.indexOf('\n')) >= 0) {
        const line = stdout.slice(0, nl);
        stdout = stdout.slice(nl + 1);
        let msg: { start?: string } & Partial<RuleCheckReport>;
        try {
          msg = JSON.parse(line) as typeof msg;
        } catch {
          continue; // not one of ours
        }
        clearTimeout(deadline);
        if (msg.start !== undefined) {
          current = msg.start;
          deadline = setTimeout(() => {
            hung = true;
            child.kill('SIGKILL');
          }, RULE_CASE_DEADLINE_MS);
        } else if (msg.dir !== undefined) {
          results.set(msg.dir, { kind: 'report', report: msg as RuleCheckReport });
          current = undefined;
        }
      }
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(deadline);
      if (current === undefined) {
        // Between cases: either every folder was checked, or the child failed on its own (e.g. could not start).
        const missing = dirs.filter((d) => !results.has(d));
        if (code === 0 && missing.length === 0) resolve();
        else reject(new Error(`rules child failed outside a case (exit ${code} ${signal}, ${missing.length} unchecked): ${stderr.slice(0, 2000)}`));
        return;
      }
      const fatal = stderr.split('\n').find((l) => /FATAL|Error/.test(l)) ?? stderr.slice(0, 300);
      results.set(current, hung ? { kind: 'hung', ms: RULE_CASE_DEADLINE_MS } : { kind: 'crashed', detail: `exit ${code ?? ''} ${signal ?? ''}: ${fatal.trim()}` });
      // Carry on with the folders after the one that took the process down.
      checkInChild(dirs.slice(dirs.indexOf(current) + 1), results).then(resolve, reject);
    });
  });
}

function writeRuleFolder(dir: string, c: Pick<RuleCase, 'files'>): void {
  const merged: Record<string, RuleFileContent | null> = { 'global.yaml': GOOD_GLOBAL, 'users/demo.yaml': GOOD_USER, ...c.files };
  mkdirSync(dir, { recursive: true });
  for (const [rel, content] of Object.entries(merged)) {
    if (content === null) continue;
    const abs = path.join(dir, rel);
    if (rel.includes('/')) mkdirSync(path.dirname(abs), { recursive: true });
    if (typeof content === 'string' || Buffer.isBuffer(content)) writeFileSync(abs, content);
    else if ('symlink' in content) symlinkSync(content.symlink, abs);
    else mkdirSync(abs, { recursive: true });
  }
}

test('rules corpus: checkRules answers ok:false with an error naming the bad file; never throws, crashes or hangs', { timeout: 180_000 }, async (t) => {
  const root = tmpDir('vigil-badrules-');
  const cases = buildRuleCases();
  const control = path.join(root, 'control');
  writeRuleFolder(control, { files: {} });
  const dirOf = new Map<string, string>();
  cases.forEach((c, i) => {
    const dir = path.join(root, `case-${String(i).padStart(3, '0')}`);
    writeRuleFolder(dir, c);
    dirOf.set(c.id, dir);
  });
  const results = new Map<string, RuleOutcome>();
  await checkInChild([control, ...cases.filter((c) => !c.isolate).map((c) => dirOf.get(c.id)!)], results);
  const isolated = cases.filter((c) => c.isolate).map((c) => dirOf.get(c.id)!);
  const workers = Array.from({ length: 2 }, async () => {
    for (let d = isolated.shift(); d !== undefined; d = isolated.shift()) await checkInChild([d], results);
  });
  await Promise.all(workers);

  await t.test('control: the unmodified folder is ok', () => {
    const r = results.get(control);
    assert.ok(r?.kind === 'report' && r.report.ok === true, JSON.stringify(r));
  });
  for (const c of cases) {
    tally('rules', 'ok:false');
    await t.test(`${c.id} -> ok:false naming ${c.badFile}`, () => {
      const dir = dirOf.get(c.id)!;
      const r = results.get(dir);
      assert.ok(r, 'a result');
      assert.notEqual(r.kind, 'crashed', `the check crashed the process: ${r.kind === 'crashed' ? r.detail : ''}`);
      assert.notEqual(r.kind, 'hung', `the check did not finish within ${RULE_CASE_DEADLINE_MS} ms`);
      assert.ok(r.kind === 'report');
      const rep = r.report;
      assert.equal(rep.threw, undefined, `checkRules threw: ${rep.threw}`);
      assert.equal(rep.ok, false, 'ok:false');
      const file = path.join(dir, c.badFile);
      const errors = rep.errors ?? [];
      const naming = errors.filter((e) => e.file === file);
      assert.ok(naming.length > 0, `an error names ${c.badFile}: ${JSON.stringify(errors.slice(0, 3))}`);
      for (const e of errors) assert.doesNotMatch(e.message, /[\r\n]/, 'one-line messages');
      if (c.message) assert.ok(naming.some((e) => c.message!.test(e.message)), `${c.message} in ${JSON.stringify(naming.map((e) => e.message))}`);
    });
  }
});

// ---------------------------------------------------------------------------------------------------
// Summary
// ---------------------------------------------------------------------------------------------------

test('corpus summary', (t: TestContext) => {
  const parts = Object.entries(summary).map(([cat, outcomes]) => {
    const n = Object.values(outcomes).reduce((a, b) => a + b, 0);
    const detail = Object.entries(outcomes)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([o, k]) => `${o}:${k}`)
      .join(' ');
    return { cat, n, text: `${cat} ${n} (${detail})` };
  });
  const total = parts.reduce((a, p) => a + p.n, 0);
  t.diagnostic(`bad-input corpus: ${total} cases — ${parts.map((p) => p.text).join('; ')}`);
  assert.ok(total >= 200, `at least 200 cases (got ${total})`);
});
