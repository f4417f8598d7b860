import http from 'node:http';
import type { Duplex } from 'node:stream';
import { isVigilError, type VigilErrorCode } from '../lib/errors.js';
import type { Device, DeviceRegistry } from '../ingest/devices.js';
import { checkTimeZone, type FrameIngestor } from '../ingest/frameIngestor.js';
import { parseCaptureTime } from '../ingest/frameTag.js';
import type { RepoStore } from '../repos/index.js';
import { OPENAPI } from './openapi.js';

/** Error codes the API answers with: Vigil's own plus a few that only HTTP has. */
export type ApiErrorCode = VigilErrorCode | 'E_METHOD_NOT_ALLOWED' | 'E_TIMEOUT' | 'E_INTERNAL';

/** Image media types `POST /v1/frames` accepts in `Content-Type`. */
export const ACCEPTED_MEDIA_TYPES: readonly string[] = ['image/jpeg', 'image/png', 'image/webp'];

/** What createApiServer needs. */
export interface ApiServerDeps {
  /** The repo store (kept for routes that read repos; the ingestor writes through its own). */
  store: RepoStore;
  registry: DeviceRegistry;
  ingestor: FrameIngestor;
  /** Largest accepted body in bytes (use the same value as the ingestor's). */
  maxBytes: number;
  /** Extra facts for `GET /v1/health`; returning `ok: false` makes it answer 503. */
  health?: () => Promise<Record<string, unknown>> | Record<string, unknown>;
  /** Overrides of the hardening timeouts (tests use short ones). Defaults: 10 s, 60 s, 5 s. */
  timeouts?: { headersMs?: number; requestMs?: number; keepAliveMs?: number };
}

/** HTTP status for each Vigil error code; codes not listed answer 500 with a generic message. */
const STATUS_BY_CODE: Partial<Record<ApiErrorCode, number>> = {
  E_BAD_INPUT: 400,
  E_BAD_ID: 400,
  E_UNAUTHORIZED: 401,
  E_NOT_FOUND: 404,
  E_METHOD_NOT_ALLOWED: 405,
  E_TIMEOUT: 408,
  E_CONFLICT: 409,
  E_TOO_LARGE: 413,
  E_UNSUPPORTED: 415,
  E_STORAGE: 503,
  E_UNAVAILABLE: 503,
  E_LOCKED: 503,
};

/** The HTTP status the API answers for an error code (500 for codes with no mapping). */
export function statusForCode(code: string): number {
  return STATUS_BY_CODE[code as ApiErrorCode] ?? 500;
}

/** An error answer decided by the HTTP layer itself. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: ApiErrorCode,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** The client went away before its request was complete: there is nobody to answer. */
class ClientGone extends Error {}

const MAX_MESSAGE = 500;

/** Error messages are one line and bounded. */
function oneLine(message: string): string {
  const flat = message.replace(/[\r\n\t]+/g, ' ').trim();
  return flat.length > MAX_MESSAGE ? `${flat.slice(0, MAX_MESSAGE - 1)}…` : flat;
}

/** For messages that quote client input. */
function quote(value: string): string {
  return JSON.stringify(value.length > 100 ? `${value.slice(0, 100)}…` : value);
}

/** True when the request announced a body that has not been read to its end. */
function bodyPending(req: http.IncomingMessage): boolean {
  const hasBody = req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
  return hasBody && !req.complete;
}

function sendJson(req: http.IncomingMessage, res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.writableEnded || res.destroyed || req.socket.destroyed) return;
  const payload = Buffer.from(JSON.stringify(body));
  const out: Record<string, string | number> = {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': payload.length,
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    ...headers,
  };
  // Answering before the body was read: close the connection rather than read (or store) the rest.
  if (bodyPending(req)) out.Connection = 'close';
  res.writeHead(status, out);
  res.end(req.method === 'HEAD' ? undefined : payload);
}

function sendError(req: http.IncomingMessage, res: http.ServerResponse, err: unknown): void {
  let status: number;
  let code: ApiErrorCode;
  let message: string;
  let headers: Record<string, string> = {};
  if (err instanceof HttpError) {
    ({ status, code, message, headers } = err);
  } else if (isVigilError(err) && STATUS_BY_CODE[err.code] !== undefined) {
    status = statusForCode(err.code);
    code = err.code;
    message = err.message;
  } else {
    console.error(`vigil api: ${req.method} ${routePath(req)} failed:`, err);
    status = 500;
    code = 'E_INTERNAL';
    message = 'internal error';
  }
  if (status === 401) headers = { 'WWW-Authenticate': 'Bearer realm="vigil"', ...headers };
  if (status === 503) headers = { 'Retry-After': '5', ...headers };
  sendJson(req, res, status, { error: { code, message: oneLine(message) } }, headers);
}

function routePath(req: http.IncomingMessage): string {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

/** The key a request presents: `Authorization: Bearer <key>`, else `X-Device-Key`; '' for a malformed one. */
function presentedKey(req: http.IncomingMessage): string | undefined {
  // Node keeps only the first of several Authorization headers: a request naming two keys (or a
  // key in each header) is ambiguous, so it is refused rather than taken as its first key.
  const given = (req.headersDistinct.authorization?.length ?? 0) + (req.headersDistinct['x-device-key']?.length ?? 0);
  if (given > 1) throw new HttpError(401, 'E_UNAUTHORIZED', 'give the device key once (one Authorization or one X-Device-Key header)');
  const auth = req.headers.authorization;
  if (auth !== undefined) return /^Bearer +(\S+) *$/i.exec(auth)?.[1] ?? '';
  const key = req.headers['x-device-key'];
  return typeof key === 'string' ? key.trim() : undefined;
}

async function authenticate(registry: DeviceRegistry, req: http.IncomingMessage): Promise<Device> {
  const key = presentedKey(req);
  if (key === undefined) {
    throw new HttpError(401, 'E_UNAUTHORIZED', 'a device key is required (Authorization: Bearer <key> or X-Device-Key)');
  }
  const device = await registry.authenticate(key);
  if (!device) throw new HttpError(401, 'E_UNAUTHORIZED', 'the device key is unknown, malformed or revoked');
  return device;
}

/** `image/JPEG; charset=x` -> `image/jpeg`. */
function mediaTypeOf(header: string | undefined): string | undefined {
  return header?.split(';')[0]?.trim().toLowerCase() || undefined;
}

/**
 * Reads the request body, refusing it as soon as it passes `limit` bytes (chunked bodies have no
 * length to check up front). Rejects with ClientGone when the client disconnects mid-body.
 */
function readBody(req: http.IncomingMessage, res: http.ServerResponse, limit: number): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const settle = (err: Error | null, body?: Buffer) => {
      if (settled) return;
      settled = true;
      req.off('data', onData).off('end', onEnd).off('error', onGone).off('close', onClose);
      if (err) reject(err);
      else resolve(body!);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.pause();
        settle(new HttpError(413, 'E_TOO_LARGE', `the frame is larger than ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => settle(null, Buffer.concat(chunks, size));
    const onGone = () => settle(new ClientGone());
    const onClose = () => {
      if (!req.complete) settle(new ClientGone());
    };
    req.on('data', onData).on('end', onEnd).on('error', onGone).on('close', onClose);
    // `Expect: 100-continue` (curl sends it for big bodies): only now, after the checks, ask for the body.
    if (req.headers.expect?.toLowerCase() === '100-continue') res.writeContinue();
  });
}

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void>;

/**
 * Creates the ingest HTTP API (node:http only). Routes:
 * - `POST /v1/frames`: upload one frame (raw image body; device key; `X-Capture-Time`, optional `X-Time-Zone`).
 *   The key, the headers and a declared `Content-Length` are checked before any byte of the body is read.
 * - `GET /v1/devices/me`: the device a key belongs to.
 * - `GET /v1/health`: `{ ok: true, ...health() }` (503 when `ok` is false).
 * - `GET /v1/openapi.json`: the OpenAPI 3.1 document.
 *
 * Every answer is JSON; every error is `{"error":{"code","message"}}`. The server is not listening yet:
 * call `listen()` on it.
 */
export function createApiServer(deps: ApiServerDeps): http.Server {
  const { registry, ingestor, maxBytes } = deps;
  const headersMs = deps.timeouts?.headersMs ?? 10_000;
  const requestMs = Math.max(deps.timeouts?.requestMs ?? 60_000, headersMs);
  const openapiJson = { ...OPENAPI, info: { ...OPENAPI.info, 'x-vigil-max-frame-bytes': maxBytes } };

  const postFrame: Handler = async (req, res) => {
    const device = await authenticate(registry, req);
    const mediaType = mediaTypeOf(req.headers['content-type']);
    if (!mediaType || !ACCEPTED_MEDIA_TYPES.includes(mediaType)) {
      throw new HttpError(415, 'E_UNSUPPORTED', `Content-Type must be one of ${ACCEPTED_MEDIA_TYPES.join(', ')} (got ${mediaType ? quote(mediaType) : 'none'})`);
    }
    const captured = req.headers['x-capture-time'];
    if (captured === undefined || captured === '') {
      throw new HttpError(400, 'E_BAD_INPUT', 'the X-Capture-Time header is required (ISO-8601 instant with a zone, or epoch milliseconds)');
    }
    parseCaptureTime(captured);
    const zone = req.headers['x-time-zone'];
    if (zone !== undefined) checkTimeZone(zone);
    const declared = req.headers['content-length'];
    if (declared !== undefined && Number(declared) > maxBytes) {
      throw new HttpError(413, 'E_TOO_LARGE', `the frame is ${Number(declared)} bytes; the limit is ${maxBytes}`);
    }
    const bytes = await readBody(req, res, maxBytes);
    // Again once the body is in: a key revoked while a slow upload was arriving stores nothing.
    const still = await authenticate(registry, req);
    // The content decides the type (ingestor sniffs it); the label only has to name an accepted image type.
    const accepted = await ingestor.accept(still, bytes, captured, zone);
    sendJson(req, res, 202, accepted);
  };

  const routes: Record<string, Partial<Record<'GET' | 'POST', Handler>>> = {
    '/v1/frames': { POST: postFrame },
    '/v1/devices/me': {
      GET: async (req, res) => {
        const d = await authenticate(registry, req);
        sendJson(req, res, 200, { user: d.user, device: d.device, site: d.site, tz: d.tz, keyId: d.keyId, createdAt: d.createdAt });
      },
    },
    '/v1/health': {
      GET: async (req, res) => {
        const body = { ok: true, ...((await deps.health?.()) ?? {}) };
        sendJson(req, res, body.ok === false ? 503 : 200, body);
      },
    },
    '/v1/openapi.json': {
      GET: async (req, res) => sendJson(req, res, 200, openapiJson),
    },
  };

  // Per connection: its answers still to be sent (pipelined requests queue theirs), the answer to
  // its latest request (`latest.req` is that request), and what to do once the answers before an
  // error are out (see clientError below).
  type Connection = {
    open: number;
    latest: http.ServerResponse | null;
    /** Once at most `open` answers are left to send: `then`. */
    wait: { open: number; then: () => void } | null;
  };
  const connections = new WeakMap<Duplex, Connection>();
  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    // A client that resets mid-request must never take the process down.
    req.on('error', () => undefined);
    res.on('error', () => undefined);
    let conn = connections.get(req.socket);
    if (!conn) connections.set(req.socket, (conn = { open: 0, latest: null, wait: null }));
    const c = conn;
    c.open++;
    c.latest = res;
    res.once('close', () => {
      c.open--;
      const wait = c.wait;
      if (wait && c.open <= wait.open) {
        c.wait = null;
        wait.then();
      }
    });
    const route = routes[routePath(req)];
    const method = req.method === 'HEAD' ? 'GET' : req.method;
    const handler = route && (method === 'GET' || method === 'POST') ? route[method] : undefined;
    const run = async () => {
      // Node's own answers to these are empty bodies; answer them in the API's JSON instead.
      if (req.httpVersionMajor === 1 && req.httpVersionMinor === 1 && !req.headers.host) throw new HttpError(400, 'E_BAD_INPUT', 'an HTTP/1.1 request needs a Host header', { Connection: 'close' });
      if (!route) throw new HttpError(404, 'E_NOT_FOUND', `no route ${quote(routePath(req))}`);
      if (!handler) {
        const allow = Object.keys(route).flatMap((m) => (m === 'GET' ? ['GET', 'HEAD'] : [m])).join(', ');
        throw new HttpError(405, 'E_METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${routePath(req)} (allowed: ${allow})`, { Allow: allow });
      }
      await handler(req, res);
    };
    run().catch((err: unknown) => {
      if (err instanceof ClientGone) return;
      try {
        sendError(req, res, err);
      } catch (sendErr) {
        console.error('vigil api: could not send an error answer:', sendErr);
        res.destroy();
      }
    });
  };

  const server = http.createServer(
    {
      maxHeaderSize: 16 * 1024,
      headersTimeout: headersMs,
      requestTimeout: requestMs,
      // How often the timeouts above are enforced (Node's default is every 30 s).
      connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(headersMs / 4))),
      // Checked in onRequest, so the answer is JSON like every other error.
      requireHostHeader: false,
    },
    onRequest,
  );
  server.headersTimeout = headersMs;
  server.requestTimeout = requestMs;
  server.keepAliveTimeout = deps.timeouts?.keepAliveMs ?? 5_000;
  // Authenticate before telling a client to send its body.
  server.on('checkContinue', onRequest);
  server.on('checkExpectation', (req: http.IncomingMessage, res: http.ServerResponse) => {
    sendError(req, res, new HttpError(417, 'E_BAD_INPUT', `unsupported Expect header ${quote(String(req.headers.expect))}: only 100-continue is supported`, { Connection: 'close' }));
  });
  // Malformed requests, oversized headers and timeouts: answer in JSON, then close. Requests
  // before it on the same connection (pipelined) whose answers are still to come, e.g. frames
  // being committed, get those answers first: the error answer never takes their place.
  const erred = new WeakSet<Duplex>();
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    // Once per connection: each chunk that arrives after the error fails the parser again.
    if (erred.has(socket)) return;
    erred.add(socket);
    socket.on('error', () => undefined);
    if (err.code === 'ECONNRESET' || err.code === 'EPIPE' || !socket.writable) {
      socket.destroy();
      return;
    }
    const [status, code, message]: [number, ApiErrorCode, string] =
      err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'E_TOO_LARGE', 'the request headers are too large']
        : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' || err.code === 'ERR_HTTP_HEADERS_TIMEOUT'
          ? [408, 'E_TIMEOUT', 'the request was not received in time']
          : [400, 'E_BAD_INPUT', 'malformed HTTP request'];
    const body = JSON.stringify({ error: { code, message } });
    const answer = () => {
      if (!socket.writable) return socket.destroy();
      socket.end(
        `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
          `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
        () => socket.destroy(),
      );
    };
    const conn = connections.get(socket);
    // Answers already due on this connection go out first, in order (a frame being committed);
    // nothing more is read from it meanwhile.
    const after = (open: number) => {
      socket.pause();
      conn!.wait = { open, then: answer };
    };
    if (conn?.latest && !conn.latest.req.complete) {
      // The error is about the latest request itself (its body broke off, timed out or was
      // malformed): its answer is this one, after the answers of the requests before it.
      if (conn.latest.headersSent) socket.destroy(); // it had begun an answer: cut
      else if (conn.open > 1) after(1);
      else answer();
      return;
    }
    if (conn && conn.open > 0) after(0);
    else answer();
  });
  return server;
}
