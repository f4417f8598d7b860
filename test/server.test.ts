import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { utimes, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { after, test } from 'node:test';
import { DeviceRegistry, REGISTRY_RECHECK_MS } from '../ingest/devices.js';
import { FrameIngestor } from '../ingest/frameIngestor.js';
import type { FrameDoc } from '../lib/schemas.js';
import { fsck, listFiles, log, openStore, readJson, repoExists, resolveRef, type RepoStore } from '../repos/index.js';
import { createApiServer, type ApiServerDeps } from '../server/index.js';
import { FIXTURES, tmpDir } from './helpers/tmp.js';
import { seededRandom } from '../lib/seededRandom.js';

const CHELSEA = readFileSync(path.join(FIXTURES, 'chelsea.png'));
const MESSI = readFileSync(path.join(FIXTURES, 'messi5.jpg'));
const ASTRONAUT = readFileSync(path.join(FIXTURES, 'astronaut.png'));
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

interface Env {
  port: number;
  store: RepoStore;
  registry: DeviceRegistry;
  key: string;
}

/** A fresh data folder with one registered device (alice/cam1, Europe/Paris) and a listening API. */
async function setup(opts: { maxBytes?: number; timeouts?: ApiServerDeps['timeouts'] } = {}): Promise<Env> {
  const dir = tmpDir('vigil-server-');
  const store = openStore(dir);
  const registry = new DeviceRegistry(dir);
  const { key } = await registry.add({ user: 'alice', device: 'cam1', site: 'home', tz: 'Europe/Paris' });
  const maxBytes = opts.maxBytes ?? 5 * 1024 * 1024;
  const ingestor = new FrameIngestor(store, { maxBytes });
  const server = createApiServer({ store, registry, ingestor, maxBytes, health: () => ({ service: 'test' }), timeouts: opts.timeouts });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  return { port: (server.address() as net.AddressInfo).port, store, registry, key };
}

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
  /** Whether the server sent 100 Continue. */
  continued: boolean;
}

/**
 * One request on a fresh connection. `body` is sent with Content-Length; `chunks` with chunked
 * encoding. Resolves with the answer even when the server closes the connection while the body
 * is still being sent (early 401/413 answers do that).
 */
function request(
  port: number,
  opts: { method?: string; path: string; headers?: Record<string, string | number>; body?: Buffer; chunks?: Buffer[]; waitContinue?: boolean },
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    let continued = false;
    let answered = false;
    const req = http.request({ host: '127.0.0.1', port, method: opts.method ?? 'GET', path: opts.path, headers: opts.headers, agent: false }, (res) => {
      answered = true;
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('error', () => undefined);
      const done = () => {
        const text = Buffer.concat(parts).toString('utf8');
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json, continued });
      };
      res.on('end', done);
      res.on('close', done);
    });
    req.on('error', (err) => {
      if (!answered) reject(err);
    });
    req.on('continue', () => {
      continued = true;
      req.end(opts.body);
    });
    if (opts.chunks) {
      for (const c of opts.chunks) req.write(c);
      req.end();
    } else if (!opts.waitContinue) {
      req.end(opts.body);
    }
  });
}

const ISO = '2024-03-05T06:07:08.009Z';

function postFrame(env: Env, body: Buffer, headers: Record<string, string | number> = {}): Promise<Reply> {
  return request(env.port, {
    method: 'POST',
    path: '/v1/frames',
    body,
    headers: { Authorization: `Bearer ${env.key}`, 'Content-Type': 'image/png', 'X-Capture-Time': ISO, ...headers },
  });
}

async function objectCount(store: RepoStore): Promise<number> {
  let n = 0;
  for await (const _ of store.objects.list()) n++;
  return n;
}

function assertError(r: Reply, status: number, code: string): void {
  assert.equal(r.status, status, r.text);
  assert.match(String(r.headers['content-type']), /^application\/json/);
  assert.deepEqual(Object.keys(r.json), ['error']);
  assert.deepEqual(Object.keys(r.json.error).sort(), ['code', 'message']);
  assert.equal(r.json.error.code, code);
  assert.equal(typeof r.json.error.message, 'string');
  assert.doesNotMatch(r.json.error.message, /[\r\n]/);
}

test('POST /v1/frames: 202, frame committed and stored; same frame again is a duplicate; other bytes 409', async () => {
  const env = await setup();
  const r = await postFrame(env, CHELSEA, { 'X-Time-Zone': 'America/New_York' });
  assert.equal(r.status, 202, r.text);
  const frameId = sha256(CHELSEA);
  assert.deepEqual(r.json, {
    frameId,
    tag: 'alice-cam1-20240305T060708009Z-America.New_York',
    path: 'alice-cam1/20240305T060708009Z.json',
    duplicate: false,
  });

  const doc = await readJson<FrameDoc>(env.store, 'frames', r.json.path);
  assert.ok(doc);
  assert.equal(doc.frameId, frameId);
  assert.equal(doc.tag, r.json.tag);
  assert.equal(doc.site, 'home');
  assert.equal(doc.tz, 'America/New_York');
  assert.equal(doc.capturedAt, ISO);
  assert.deepEqual(doc.object, { sha256: frameId, size: CHELSEA.length, mediaType: 'image/png' });
  assert.deepEqual(await env.store.objects.get(frameId), CHELSEA);

  const head = await resolveRef(env.store, 'frames', 'main');
  const objects = await objectCount(env.store);
  assert.equal(objects, 1);

  const again = await postFrame(env, CHELSEA, { 'X-Time-Zone': 'America/New_York' });
  assert.equal(again.status, 202, again.text);
  assert.deepEqual(again.json, { ...r.json, duplicate: true });
  // Sent again naming another zone: still the same frame, and the answer gives the tag stored with it.
  const otherZone = await postFrame(env, CHELSEA, { 'X-Time-Zone': 'Asia/Tokyo' });
  assert.equal(otherZone.status, 202, otherZone.text);
  assert.deepEqual(otherZone.json, { ...r.json, duplicate: true });
  assert.equal(await resolveRef(env.store, 'frames', 'main'), head, 'no new commit for a duplicate');
  assert.equal(await objectCount(env.store), objects, 'no new object for a duplicate');

  const conflict = await postFrame(env, MESSI, { 'Content-Type': 'image/jpeg' });
  assertError(conflict, 409, 'E_CONFLICT');
  assert.equal(await resolveRef(env.store, 'frames', 'main'), head);

  // Default zone: the device's; epoch milliseconds are accepted; X-Device-Key works too.
  const epoch = await request(env.port, {
    method: 'POST',
    path: '/v1/frames',
    body: MESSI,
    headers: { 'X-Device-Key': env.key, 'Content-Type': 'image/jpeg; charset=binary', 'X-Capture-Time': String(Date.parse('2024-03-05T06:07:09Z')) },
  });
  assert.equal(epoch.status, 202, epoch.text);
  assert.equal(epoch.json.tag, 'alice-cam1-20240305T060709000Z-Europe.Paris');
  assert.equal((await listFiles(env.store, 'frames')).length, 2);
  // Zone names are matched regardless of case and stored as usually spelled.
  const lower = await postFrame(env, readFileSync(path.join(FIXTURES, 'coffee.png')), { 'X-Capture-Time': '2024-03-05T06:07:10Z', 'X-Time-Zone': 'EUROPE/paris' });
  assert.equal(lower.status, 202, lower.text);
  assert.equal(lower.json.tag, 'alice-cam1-20240305T060710000Z-Europe.Paris');
  assert.equal((await readJson<FrameDoc>(env.store, 'frames', lower.json.path))?.tz, 'Europe/Paris');
});

test('device keys: unknown, missing, malformed and revoked keys get 401 and nothing is stored', async () => {
  const env = await setup();
  const unknownKey = `vk_${'0'.repeat(12)}_${'A'.repeat(43)}`;

  const unknown = await postFrame(env, CHELSEA, { Authorization: `Bearer ${unknownKey}` });
  assertError(unknown, 401, 'E_UNAUTHORIZED');
  assert.equal(unknown.headers.connection, 'close', 'the body is not read: the connection is closed');
  assert.match(String(unknown.headers['www-authenticate']), /^Bearer/);

  // A big body is refused just the same (the server does not read it).
  const big = await postFrame(env, ASTRONAUT, { Authorization: `Bearer ${unknownKey}` });
  assertError(big, 401, 'E_UNAUTHORIZED');

  // With Expect: 100-continue, the client is refused before it sends a single body byte.
  const expect = await request(env.port, {
    method: 'POST',
    path: '/v1/frames',
    body: CHELSEA,
    waitContinue: true,
    headers: { 'X-Device-Key': unknownKey, 'Content-Type': 'image/png', 'X-Capture-Time': ISO, 'Content-Length': CHELSEA.length, Expect: '100-continue' },
  });
  assertError(expect, 401, 'E_UNAUTHORIZED');
  assert.equal(expect.continued, false);

  const missing = await request(env.port, { method: 'POST', path: '/v1/frames', body: CHELSEA, headers: { 'Content-Type': 'image/png', 'X-Capture-Time': ISO } });
  assertError(missing, 401, 'E_UNAUTHORIZED');
  assertError(await postFrame(env, CHELSEA, { Authorization: `Basic ${env.key}` }), 401, 'E_UNAUTHORIZED');
  assertError(await postFrame(env, CHELSEA, { Authorization: 'Bearer' }), 401, 'E_UNAUTHORIZED');
  // A valid key id with the wrong secret.
  assertError(await postFrame(env, CHELSEA, { Authorization: `Bearer ${env.key.slice(0, -1)}${env.key.endsWith('A') ? 'B' : 'A'}` }), 401, 'E_UNAUTHORIZED');
  // The real key given twice over, or beside another: ambiguous, refused (Node would keep the first Authorization).
  const twice = await request(env.port, {
    method: 'POST', path: '/v1/frames', body: CHELSEA,
    headers: { Authorization: [`Bearer ${env.key}`, `Bearer ${unknownKey}`] as unknown as string, 'Content-Type': 'image/png', 'X-Capture-Time': ISO },
  });
  assertError(twice, 401, 'E_UNAUTHORIZED');
  assert.match(twice.json.error.message, /once/);
  assertError(await postFrame(env, CHELSEA, { 'X-Device-Key': unknownKey }), 401, 'E_UNAUTHORIZED');

  assert.equal(await objectCount(env.store), 0, 'nothing in the object store');
  assert.equal(repoExists(env.store, 'frames'), false, 'no frames repo');

  // /v1/devices/me tells a gateway who its key belongs to, never the hash.
  const me = await request(env.port, { path: '/v1/devices/me', headers: { Authorization: `Bearer ${env.key}` } });
  assert.equal(me.status, 200, me.text);
  assert.equal(me.json.user, 'alice');
  assert.equal(me.json.device, 'cam1');
  assert.equal(me.json.site, 'home');
  assert.equal(me.json.tz, 'Europe/Paris');
  assert.equal(me.json.keyHash, undefined);
  assert.ok(!me.text.includes(env.key.slice(20)), 'the secret is not echoed');
  assertError(await request(env.port, { path: '/v1/devices/me' }), 401, 'E_UNAUTHORIZED');

  await env.registry.revoke('alice', 'cam1');
  assertError(await postFrame(env, CHELSEA), 401, 'E_UNAUTHORIZED');
  assertError(await request(env.port, { path: '/v1/devices/me', headers: { Authorization: `Bearer ${env.key}` } }), 401, 'E_UNAUTHORIZED');
  assert.equal(await objectCount(env.store), 0);
  assert.equal(repoExists(env.store, 'frames'), false);
});

test('device registry kept in memory: a change through the instance is seen at once, another process\'s within REGISTRY_RECHECK_MS', async () => {
  const dir = tmpDir('vigil-server-');
  const server = new DeviceRegistry(dir);
  const cli = new DeviceRegistry(dir); // as `vigil device add/revoke` in another process
  const a = await server.add({ user: 'alice', device: 'cam1' });
  assert.equal((await server.authenticate(a.key))?.device, 'cam1');
  const b = await cli.add({ user: 'bob', device: 'cam2' });
  await new Promise((r) => setTimeout(r, REGISTRY_RECHECK_MS + 20));
  assert.equal((await server.authenticate(b.key))?.device, 'cam2', 'a device added elsewhere is known after the bound');
  await cli.revoke('bob', 'cam2');
  await new Promise((r) => setTimeout(r, REGISTRY_RECHECK_MS + 20));
  assert.equal(await server.authenticate(b.key), null, 'a key revoked elsewhere is refused after the bound');
  await server.revoke('alice', 'cam1');
  assert.equal(await server.authenticate(a.key), null, 'a key revoked through the instance is refused at once');
  // Concurrent requests share one check of the file.
  const many = await Promise.all(Array.from({ length: 20 }, () => server.list()));
  assert.ok(many.every((l) => l === many[0]));
});

test('size limit: 413 from Content-Length before reading, and for a chunked body while streaming', async () => {
  const env = await setup({ maxBytes: 100_000 });
  const byLength = await postFrame(env, CHELSEA);
  assertError(byLength, 413, 'E_TOO_LARGE');
  assert.equal(byLength.headers.connection, 'close');

  const chunks: Buffer[] = [];
  for (let i = 0; i < CHELSEA.length; i += 16 * 1024) chunks.push(CHELSEA.subarray(i, i + 16 * 1024));
  const chunked = await request(env.port, {
    method: 'POST',
    path: '/v1/frames',
    chunks,
    headers: { Authorization: `Bearer ${env.key}`, 'Content-Type': 'image/png', 'X-Capture-Time': ISO },
  });
  assertError(chunked, 413, 'E_TOO_LARGE');

  // Exactly at the limit is fine, chunked or not (messi5.jpg is 72,937 bytes).
  const small = await setup({ maxBytes: MESSI.length });
  const ok = await request(small.port, {
    method: 'POST',
    path: '/v1/frames',
    chunks: [MESSI.subarray(0, 30_000), MESSI.subarray(30_000)],
    headers: { Authorization: `Bearer ${small.key}`, 'Content-Type': 'image/jpeg', 'X-Capture-Time': ISO },
  });
  assert.equal(ok.status, 202, ok.text);
  assertError(await postFrame(small, Buffer.concat([MESSI, Buffer.from([0])]), { 'X-Capture-Time': '2024-03-05T06:07:10Z' }), 413, 'E_TOO_LARGE');
  assert.equal(await objectCount(env.store), 0);
});

test('media types: the label must be an image type, the bytes decide which', async () => {
  const env = await setup();
  assertError(await postFrame(env, CHELSEA, { 'Content-Type': 'text/plain' }), 415, 'E_UNSUPPORTED');
  assertError(await postFrame(env, CHELSEA, { 'Content-Type': 'multipart/form-data; boundary=x' }), 415, 'E_UNSUPPORTED');
  const noType = await request(env.port, { method: 'POST', path: '/v1/frames', body: CHELSEA, headers: { Authorization: `Bearer ${env.key}`, 'X-Capture-Time': ISO } });
  assertError(noType, 415, 'E_UNSUPPORTED');

  // Random bytes labelled as JPEG: sniffing refuses them.
  assertError(await postFrame(env, randomBytes(4096), { 'Content-Type': 'image/jpeg' }), 415, 'E_UNSUPPORTED');
  assert.equal(await objectCount(env.store), 0);

  // A PNG labelled image/jpeg is accepted: the content counts, and it is recorded as image/png.
  const mislabelled = await postFrame(env, CHELSEA, { 'Content-Type': 'IMAGE/JPEG' });
  assert.equal(mislabelled.status, 202, mislabelled.text);
  const doc = await readJson<FrameDoc>(env.store, 'frames', mislabelled.json.path);
  assert.equal(doc?.object.mediaType, 'image/png');

  // An empty body is a bad request.
  assertError(await postFrame(env, Buffer.alloc(0), { 'X-Capture-Time': '2024-03-05T06:07:11Z' }), 400, 'E_BAD_INPUT');
});

test('capture time and zone headers are checked', async () => {
  const env = await setup();
  const missing = await request(env.port, { method: 'POST', path: '/v1/frames', body: CHELSEA, headers: { Authorization: `Bearer ${env.key}`, 'Content-Type': 'image/png' } });
  assertError(missing, 400, 'E_BAD_INPUT');
  assert.match(missing.json.error.message, /X-Capture-Time/);
  for (const bad of ['yesterday', '2024-03-05T06:07:08', '2024-13-45T99:00:00Z', '1999-12-31T23:59:59Z', '12', '2024-03-05T06:07:08Z, 2024-03-05T06:07:09Z']) {
    assertError(await postFrame(env, CHELSEA, { 'X-Capture-Time': bad }), 400, 'E_BAD_INPUT');
  }
  // A well-formed time out of range says so (not that its format is wrong).
  const early = await postFrame(env, CHELSEA, { 'X-Capture-Time': '2000-01-01T00:00:00+01:00' });
  assertError(early, 400, 'E_BAD_INPUT');
  assert.match(early.json.error.message, /is 1999-12-31T23:00:00\.000Z, outside the years 2000 to 2200/);
  const future = new Date(Date.now() + 3_600_000).toISOString();
  assertError(await postFrame(env, CHELSEA, { 'X-Capture-Time': future }), 400, 'E_BAD_INPUT');
  for (const zone of ['Mars/Base', '../../etc', '../../etc/passwd', 'Europe/../../x', '/etc/passwd', 'Europe/Paris\\..']) {
    assertError(await postFrame(env, CHELSEA, { 'X-Time-Zone': zone }), 400, 'E_BAD_INPUT');
  }
  assert.equal(repoExists(env.store, 'frames'), false);
  const ok = await postFrame(env, CHELSEA, { 'X-Time-Zone': 'UTC', 'X-Capture-Time': '2024-03-05T07:07:08.009+01:00' });
  assert.equal(ok.status, 202, ok.text);
  assert.equal(ok.json.tag, 'alice-cam1-20240305T060708009Z-UTC');
});

test('20 concurrent uploads of different frames are all accepted and committed', async () => {
  const env = await setup();
  const base = Date.parse('2024-06-01T12:00:00Z');
  const bodies = Array.from({ length: 20 }, (_, i) => Buffer.concat([CHELSEA, Buffer.from(`frame ${i}`)]));
  const replies = await Promise.all(bodies.map((b, i) => postFrame(env, b, { 'X-Capture-Time': new Date(base + i * 1000).toISOString() })));
  for (const [i, r] of replies.entries()) {
    assert.equal(r.status, 202, r.text);
    assert.equal(r.json.frameId, sha256(bodies[i]!));
    assert.equal(r.json.duplicate, false);
  }
  const files = await listFiles(env.store, 'frames');
  assert.equal(files.length, 20);
  for (const r of replies) assert.equal((await readJson<FrameDoc>(env.store, 'frames', r.json.path))?.frameId, r.json.frameId);
  assert.equal(await objectCount(env.store), 20);
});

/**
 * One FrameIngestor.accept() for alice/cam1 in a separate process: its own caches, like a second API
 * server on the same data folder, or this one after a restart.
 */
function acceptElsewhere(dir: string, fixture: string, capturedAt: string): Promise<{ ok: true; frame: { frameId: string; duplicate: boolean; path: string } } | { ok: false; code: string }> {
  const at = (f: string) => JSON.stringify(path.resolve(import.meta.dirname, f));
  const script = `
    import { readFileSync } from 'node:fs';
    import { openStore } from ${at('../repos/index.ts')};
    import { DeviceRegistry } from ${at('../ingest/devices.ts')};
    import { FrameIngestor } from ${at('../ingest/frameIngestor.ts')};
    const [dir, file, capturedAt] = process.argv.slice(1);
    const device = (await new DeviceRegistry(dir).list()).find((d) => d.user === 'alice' && d.device === 'cam1' && !d.revokedAt);
    try {
      const frame = await new FrameIngestor(openStore(dir), { maxBytes: 1 << 24 }).accept(device, readFileSync(file), capturedAt);
      console.log(JSON.stringify({ ok: true, frame }));
    } catch (err) {
      if (!err.code) throw err;
      console.log(JSON.stringify({ ok: false, code: err.code }));
    }
  `;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, dir, path.join(FIXTURES, fixture), capturedAt], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`accept in another process exited ${code}: ${out}`))));
  });
}

test('another process committing to the frames repo: its frames are duplicates or conflicts here, and no writer loses a frame', async () => {
  const env = await setup();
  const dir = env.store.dataDir;
  const T2 = '2024-03-05T06:07:09.000Z';
  const first = await postFrame(env, CHELSEA);
  assert.equal(first.status, 202, first.text);

  // A second writer (e.g. another API server) commits a frame after this server has read the head.
  const other = await acceptElsewhere(dir, 'messi5.jpg', T2);
  assert.ok(other.ok);
  assert.equal(other.frame.duplicate, false);
  // …and sees this server's frame.
  assert.deepEqual(await acceptElsewhere(dir, 'chelsea.png', ISO), { ok: true, frame: { ...first.json, tag: 'alice-cam1-20240305T060708009Z-Europe.Paris', duplicate: true } });

  const head = await resolveRef(env.store, 'frames', 'main');
  const dup = await postFrame(env, MESSI, { 'Content-Type': 'image/jpeg', 'X-Capture-Time': T2 });
  assert.equal(dup.status, 202, dup.text);
  assert.deepEqual(dup.json, { frameId: sha256(MESSI), tag: 'alice-cam1-20240305T060709000Z-Europe.Paris', path: other.frame.path, duplicate: true });
  assertError(await postFrame(env, ASTRONAUT, { 'X-Capture-Time': T2 }), 409, 'E_CONFLICT');
  assert.equal(await resolveRef(env.store, 'frames', 'main'), head, 'neither the duplicate nor the conflict made a commit');
  assert.equal(await env.store.objects.has(sha256(ASTRONAUT)), false, 'the conflict was seen before the bytes were stored (the moved head was noticed)');

  const third = await postFrame(env, ASTRONAUT, { 'X-Capture-Time': '2024-03-05T06:07:10.000Z' });
  assert.equal(third.status, 202, third.text);
  const files = await listFiles(env.store, 'frames');
  assert.deepEqual(files.map((f) => f.path), [first.json.path, other.frame.path, third.json.path]);
  assert.equal((await readJson<FrameDoc>(env.store, 'frames', other.frame.path))?.frameId, sha256(MESSI));
  assert.equal((await log(env.store, 'frames')).length, 3, 'one commit per new frame, both writers on one history');
  const report = await fsck(env.store);
  assert.deepEqual(report.problems, []);
});

test('after a restart (a new process, nothing cached), a duplicate and a conflict are still detected', async () => {
  const env = await setup();
  const a = await postFrame(env, CHELSEA);
  const b = await postFrame(env, MESSI, { 'Content-Type': 'image/jpeg', 'X-Capture-Time': '2024-03-05T06:07:09.000Z' });
  assert.equal(a.status, 202, a.text);
  assert.equal(b.status, 202, b.text);
  const head = await resolveRef(env.store, 'frames', 'main');
  const again = await acceptElsewhere(env.store.dataDir, 'chelsea.png', ISO);
  assert.ok(again.ok);
  assert.equal(again.frame.duplicate, true);
  assert.equal(again.frame.frameId, a.json.frameId);
  assert.deepEqual(await acceptElsewhere(env.store.dataDir, 'astronaut.png', '2024-03-05T06:07:09.000Z'), { ok: false, code: 'E_CONFLICT' });
  assert.equal(await resolveRef(env.store, 'frames', 'main'), head);
});

test('the same capture time several times at once: one frame wins, its bytes again are duplicates, other bytes conflicts', async () => {
  const env = await setup();
  const bodies = [CHELSEA, CHELSEA, ASTRONAUT, CHELSEA, ASTRONAUT];
  const replies = await Promise.all(bodies.map((b) => postFrame(env, b)));
  const stored = await readJson<FrameDoc>(env.store, 'frames', 'alice-cam1/20240305T060708009Z.json');
  assert.ok(stored);
  for (const [i, r] of replies.entries()) {
    if (sha256(bodies[i]!) === stored.frameId) assert.equal(r.status, 202, r.text);
    else assertError(r, 409, 'E_CONFLICT');
  }
  const won = replies.filter((r) => r.status === 202);
  assert.equal(won.filter((r) => r.json.duplicate === false).length, 1, 'exactly one request stored the frame');
  assert.equal((await log(env.store, 'frames')).length, 1);
});

test('GET routes: openapi.json, health; unknown route 404, wrong method 405, all JSON', async () => {
  const env = await setup();
  const spec = await request(env.port, { path: '/v1/openapi.json' });
  assert.equal(spec.status, 200);
  assert.equal(spec.json.openapi, '3.1.0');
  const post = spec.json.paths['/v1/frames'].post;
  assert.ok(post);
  const headerNames = post.parameters.map((p: { name: string }) => p.name);
  for (const h of ['Authorization', 'X-Device-Key', 'Content-Type', 'X-Capture-Time', 'X-Time-Zone']) assert.ok(headerNames.includes(h), h);
  for (const s of ['202', '400', '401', '409', '413', '415', '503']) assert.ok(post.responses[s], s);
  assert.equal(spec.json.components.securitySchemes.bearerAuth.scheme, 'bearer');
  assert.ok(spec.json.paths['/v1/health'].get);
  assert.ok(spec.json.paths['/v1/devices/me'].get);
  assert.equal(spec.json.info['x-vigil-max-frame-bytes'], 5 * 1024 * 1024);

  const health = await request(env.port, { path: '/v1/health?x=1' });
  assert.equal(health.status, 200);
  assert.deepEqual(health.json, { ok: true, service: 'test' });

  assertError(await request(env.port, { path: '/v1/nope' }), 404, 'E_NOT_FOUND');
  assertError(await request(env.port, { path: '/v1/frames/../devices.json' }), 404, 'E_NOT_FOUND');
  const wrong = await request(env.port, { path: '/v1/frames' });
  assertError(wrong, 405, 'E_METHOD_NOT_ALLOWED');
  assert.equal(wrong.headers.allow, 'POST');
  assertError(await request(env.port, { method: 'DELETE', path: '/v1/health' }), 405, 'E_METHOD_NOT_ALLOWED');
  // Oversized headers are answered 431 in JSON.
  const huge = await request(env.port, { path: '/v1/health', headers: { 'X-Pad': 'x'.repeat(20_000) } });
  assertError(huge, 431, 'E_TOO_LARGE');
});

test('health answers 503 when a dependency reports ok: false', async () => {
  const dir = tmpDir('vigil-server-');
  const store = openStore(dir);
  const server = createApiServer({
    store,
    registry: new DeviceRegistry(dir),
    ingestor: new FrameIngestor(store, { maxBytes: 1000 }),
    maxBytes: 1000,
    health: async () => ({ ok: false, temporal: 'unreachable' }),
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  after(() => server.close());
  const r = await request((server.address() as net.AddressInfo).port, { path: '/v1/health' });
  assert.equal(r.status, 503);
  assert.deepEqual(r.json, { ok: false, temporal: 'unreachable' });
});

/** Opens a raw connection and sends `head` (and optionally part of a body). */
function rawConnect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.on('error', reject);
  });
}

test('a client aborting mid-upload does not hurt the server', async () => {
  const env = await setup();
  for (let i = 0; i < 3; i++) {
    const s = await rawConnect(env.port);
    s.write(
      `POST /v1/frames HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${env.key}\r\nContent-Type: image/png\r\n` +
        `X-Capture-Time: ${ISO}\r\nContent-Length: ${ASTRONAUT.length}\r\n\r\n`,
    );
    s.write(ASTRONAUT.subarray(0, ASTRONAUT.length >> 1));
    await new Promise((r) => setTimeout(r, 50));
    s.destroy();
  }
  await new Promise((r) => setTimeout(r, 50));
  const r = await postFrame(env, CHELSEA);
  assert.equal(r.status, 202, r.text);
  assert.equal(await objectCount(env.store), 1, 'the aborted uploads stored nothing');
});

test('slow clients are cut off (headers timeout and request timeout)', async () => {
  const env = await setup({ timeouts: { headersMs: 300, requestMs: 600 } });
  const closedWithin = (s: net.Socket, ms: number) =>
    new Promise<string>((resolve, reject) => {
      let data = '';
      s.on('data', (d: Buffer) => (data += d.toString('latin1')));
      const t = setTimeout(() => reject(new Error('connection still open')), ms);
      s.on('close', () => {
        clearTimeout(t);
        resolve(data);
      });
    });

  // Headers that never end.
  const loris = await rawConnect(env.port);
  loris.write('POST /v1/frames HTTP/1.1\r\nHost: 127.0.0.1\r\n');
  const t0 = Date.now();
  const drip = setInterval(() => loris.writable && loris.write('X-A: b\r\n'), 50);
  const answer = await closedWithin(loris, 3_000).finally(() => clearInterval(drip));
  assert.ok(Date.now() - t0 < 3_000);
  assert.match(answer, /^HTTP\/1\.1 408/);

  // A body that trickles in.
  const slow = await rawConnect(env.port);
  slow.write(
    `POST /v1/frames HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${env.key}\r\nContent-Type: image/png\r\n` +
      `X-Capture-Time: ${ISO}\r\nContent-Length: ${CHELSEA.length}\r\n\r\n`,
  );
  let off = 0;
  const trickle = setInterval(() => {
    if (slow.writable && off < CHELSEA.length) slow.write(CHELSEA.subarray(off, (off += 10)));
  }, 50);
  await closedWithin(slow, 4_000).finally(() => clearInterval(trickle));
  assert.equal(await objectCount(env.store), 0);

  // And the server still works.
  assert.equal((await postFrame(env, CHELSEA)).status, 202);
});

/** Everything the server sends on `s` until it closes the connection (latin1). */
function readAll(s: net.Socket, ms = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = '';
    s.on('data', (d: Buffer) => (data += d.toString('latin1')));
    const t = setTimeout(() => reject(new Error(`connection still open; got so far: ${data.slice(0, 200)}`)), ms);
    s.on('close', () => {
      clearTimeout(t);
      resolve(data);
    });
  });
}

test('a malformed request pipelined behind a frame: the frame gets its 202 first, then the error, then the connection closes', async () => {
  const env = await setup();
  const head = (time: string, length: number) =>
    `POST /v1/frames HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${env.key}\r\nContent-Type: image/png\r\n` +
    `X-Capture-Time: ${time}\r\nContent-Length: ${length}\r\n\r\n`;
  // Oversized headers after a whole frame.
  const a = await rawConnect(env.port);
  const aAnswers = readAll(a);
  a.write(head('2024-03-05T06:07:08.001Z', CHELSEA.length));
  a.write(CHELSEA);
  a.write(`GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
  const got = await aAnswers;
  assert.match(got, /^HTTP\/1\.1 202 [^]*"duplicate":false[^]*HTTP\/1\.1 431 [^]*"E_TOO_LARGE"/, got.slice(0, 400));
  // A body longer than its Content-Length: the extra bytes are a malformed second request.
  const b = await rawConnect(env.port);
  const bAnswers = readAll(b);
  b.write(head('2024-03-05T06:07:08.002Z', 1000));
  b.write(ASTRONAUT);
  const got2 = await bAnswers;
  assert.match(got2, /^HTTP\/1\.1 202 [^]*HTTP\/1\.1 400 [^]*malformed HTTP request/, got2.slice(0, 400));
  // Two frames, then garbage: both 202s, in order, then the error.
  const c = await rawConnect(env.port);
  const cAnswers = readAll(c);
  c.write(head('2024-03-05T06:07:08.003Z', CHELSEA.length));
  c.write(CHELSEA);
  c.write(head('2024-03-05T06:07:08.004Z', ASTRONAUT.length));
  c.write(ASTRONAUT);
  c.write('NOT HTTP AT ALL\r\n\r\n');
  const got3 = await cAnswers;
  assert.match(got3, /^HTTP\/1\.1 202 [^]*060708003Z[^]*HTTP\/1\.1 202 [^]*060708004Z[^]*HTTP\/1\.1 400 /, got3.slice(0, 600));
  // Every frame the client was told about is stored, and only they.
  const files = await listFiles(env.store, 'frames');
  assert.deepEqual(files.map((f) => f.path).sort(), ['001', '002', '003', '004'].map((n) => `alice-cam1/20240305T060708${n}Z.json`));
});

test('pipelined frames with a broken request after them (seeded mix): a frame is stored exactly when its client got a 202', async () => {
  const env = await setup();
  const rand = seededRandom(20261129);
  const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const head = (time: string, length: number, close = false) =>
    `POST /v1/frames HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${env.key}\r\nContent-Type: image/png\r\n` +
    `X-Capture-Time: ${time}\r\nContent-Length: ${length}\r\n${close ? 'Connection: close\r\n' : ''}\r\n`;
  const tails = ['none', 'garbage', 'big-headers', 'extra-body', 'cut-body'] as const;
  const acked = new Set<string>();
  let n = 0;
  await Promise.all(
    Array.from({ length: 16 }, async (_, conn) => {
      const frames = 1 + Math.floor(rand() * 3);
      const tail = pick(tails);
      const s = await rawConnect(env.port);
      const answers = readAll(s, 20_000);
      for (let k = 0; k < frames; k++) {
        const time = `2024-03-05T06:${String(10 + conn).padStart(2, '0')}:0${k}.000Z`;
        const body = pick([CHELSEA, ASTRONAUT]);
        const last = k === frames - 1;
        if (last && tail === 'extra-body') s.write(head(time, 500) + body.toString('latin1'), 'latin1');
        else s.write(Buffer.concat([Buffer.from(head(time, body.length, last && tail === 'none')), body]));
        n++;
      }
      if (tail === 'garbage') s.write('NOT HTTP\r\n\r\n');
      if (tail === 'big-headers') s.write(`GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
      if (tail === 'cut-body') {
        s.write(head(`2024-03-05T07:${String(10 + conn).padStart(2, '0')}:00.000Z`, CHELSEA.length));
        s.write(CHELSEA.subarray(0, 1000));
        s.end(); // half-close: the last request can never complete
      }
      const got = await answers;
      for (const m of got.matchAll(/HTTP\/1\.1 202 [^]*?"path":"([^"]+)"/g)) acked.add(m[1]!);
    }),
  );
  const stored = new Set((await listFiles(env.store, 'frames')).map((f) => f.path));
  assert.deepEqual([...stored].sort(), [...acked].sort(), 'stored frames = acknowledged frames');
  assert.ok(acked.size > 0 && acked.size <= n);
});

test('a key revoked while its upload is arriving: 401 and nothing stored', async () => {
  const env = await setup();
  const s = await rawConnect(env.port);
  const answers = readAll(s);
  s.write(
    `POST /v1/frames HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${env.key}\r\nContent-Type: image/png\r\n` +
      `X-Capture-Time: ${ISO}\r\nContent-Length: ${CHELSEA.length}\r\nConnection: close\r\n\r\n`,
  );
  s.write(CHELSEA.subarray(0, 1000));
  await new Promise((r) => setTimeout(r, 100));
  await env.registry.revoke('alice', 'cam1');
  s.write(CHELSEA.subarray(1000));
  const got = await answers;
  assert.match(got, /^HTTP\/1\.1 401 /, got.slice(0, 300));
  assert.equal(await objectCount(env.store), 0);
  assert.ok(!(await repoExists(env.store, 'frames')) || (await listFiles(env.store, 'frames')).length === 0, 'no frame committed');
});

test('unexpected errors answer 500 with a generic message (the real one goes to stderr)', async () => {
  const env = await setup();
  await writeFile(env.registry.file, '{"version":1,"devices":[{"user":"x"}]}');
  await utimes(env.registry.file, new Date('2020-01-01'), new Date('2020-01-01')); // defeat the registry's mtime cache
  const r = await postFrame(env, CHELSEA);
  assertError(r, 500, 'E_INTERNAL');
  assert.equal(r.json.error.message, 'internal error');
  assert.ok(!r.text.includes('devices.json'), 'no internals leak');
  assert.equal(await objectCount(env.store), 0);
});
