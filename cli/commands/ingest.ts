/**
 * `vigil ingest <file|folder>...`: send frames to a running Vigil server (`POST /v1/frames`),
 * once or, with `--follow`, continuously as new images appear in folders.
 */
import { watch, promises as fsp, type FSWatcher } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import path from 'node:path';
import { Option, type Command } from 'commander';
import { z } from 'zod';
import { VigilError } from '../../lib/errors.js';
import { assertTimeZone, parseCaptureTime } from '../../ingest/frameTag.js';
import { errorMessage, fail, fileErrorMessage, printJson, UsageError } from '../output.js';
import { checkedOption } from './common.js';

/** Media type of each image extension the CLI sends. */
export const MEDIA_TYPES: Readonly<Record<string, string>> = {
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.png': 'image/png',
  '.webp': 'image/webp',
};

/** The media type for a file name, or undefined when it is not an image the CLI sends. */
export function mediaTypeOf(file: string): string | undefined {
  return MEDIA_TYPES[path.extname(file).toLowerCase()];
}

/** What happened to one file. `status` is the HTTP status (null when nothing was sent). */
export interface IngestOutcome {
  file: string;
  ok: boolean;
  status: number | null;
  frameId?: string;
  tag?: string;
  path?: string;
  duplicate?: boolean;
  error?: { code: string; message: string };
}

const AcceptedSchema = z.object({ frameId: z.string(), tag: z.string(), path: z.string(), duplicate: z.boolean() });
const ErrorBodySchema = z.object({ error: z.object({ code: z.string(), message: z.string() }) });

/** Retries of a frame answered 503 (server busy or starting). */
const RETRIES_503 = 4;
/** Quiet time before a watched file is looked at (and again to confirm it stopped growing). */
const DEBOUNCE_MS = 250;
const REQUEST_TIMEOUT_MS = 120_000;
/** Retries of a frame whose connection was refused or cut, without --follow (about 4 s in all). */
const NETWORK_RETRIES = 4;
/** Longest wait between two tries while the server cannot be reached. */
const MAX_NETWORK_WAIT_MS = 30_000;

interface SendOptions {
  endpoint: URL;
  key: string;
  time?: string;
  tz?: string;
  /**
   * Keep trying, however long the server is unreachable or answers 503 (--follow), until `signal`
   * aborts; without it a refused or cut connection is retried NETWORK_RETRIES times, a 503
   * RETRIES_503 times, and a request that got no answer within REQUEST_TIMEOUT_MS is not retried.
   */
  waitForServer?: boolean;
  /** Told before each wait for the server: why the try failed (a phrase naming the server) and how long the wait is. */
  onWait?: (reason: string, waitMs: number) => void;
  /** Ends the waiting between tries (Ctrl-C in --follow). */
  signal?: AbortSignal;
}


/** The wait before retry `n` (0-based) of a request that failed on the network: 250 ms, doubling, at most 30 s. */
function networkBackoffMs(n: number): number {
  return Math.min(250 * 2 ** n, MAX_NETWORK_WAIT_MS);
}

/** Sleeps `ms`; false when `signal` aborted the sleep (or already had). */
function sleepUnlessAborted(ms: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function networkCause(err: unknown): string {
  const e = err as { name?: string; code?: string; message?: string };
  if (e?.name === 'TimeoutError') return `no answer within ${REQUEST_TIMEOUT_MS / 1000} s`;
  return e?.code ?? e?.message ?? String(err);
}

/** An HTTP answer, read whole. */
interface Answer {
  status: number;
  statusText: string;
  retryAfter: string | null;
  text: string;
}

/**
 * POSTs a body with node:http(s) and reads the whole answer; fails with the socket's error
 * (ECONNREFUSED, ECONNRESET...) or, after `timeoutMs` without a complete answer, a TimeoutError.
 * Not fetch: Node 20's fetch (undici) sometimes never settles when the server resets the
 * connection as it opens (seen in 2 to 11 of 40 tries), and with nothing else to wait for the
 * process then exits with code 13 and no message.
 */
function postBody(url: URL, headers: Record<string, string>, body: Buffer, timeoutMs: number): Promise<Answer> {
  return new Promise<Answer>((resolve, reject) => {
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    // A connection of its own (agent: false): no kept-alive connection sits idle for the server to
    // close just as the next frame goes out on it.
    const req = send(url, { method: 'POST', agent: false, headers: { ...headers, 'content-length': String(body.length) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      res.on('end', () => {
        clearTimeout(timer);
        const retryAfter = res.headers['retry-after'];
        resolve({ status: res.statusCode ?? 0, statusText: res.statusMessage ?? '', retryAfter: typeof retryAfter === 'string' ? retryAfter : null, text: Buffer.concat(chunks).toString('utf8') });
      });
    });
    const timer = setTimeout(() => req.destroy(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { name: 'TimeoutError' })), timeoutMs);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end(body);
  });
}

/** How many 1 ms steps `ingest` takes past a capture-time collision before giving up. */
export const MAX_TIME_NUDGES = 1000;

/**
 * Sends one image file. Answers with an outcome for anything the server (or the file) refused.
 * A try that failed on the network is repeated with the same bytes and capture time (see
 * SendOptions.waitForServer): the server answers a frame it already has as a duplicate, so a
 * repeat never stores a frame twice.
 * @throws VigilError E_UNAVAILABLE when the server cannot be reached (after the retries).
 */
export async function sendFrame(file: string, opts: SendOptions): Promise<IngestOutcome> {
  const mediaType = mediaTypeOf(file);
  if (!mediaType) {
    return { file, ok: false, status: null, error: { code: 'E_UNSUPPORTED', message: `not an image file the CLI sends (${Object.keys(MEDIA_TYPES).join(', ')})` } };
  }
  let bytes: Buffer;
  let mtime: Date;
  try {
    const st = await fsp.stat(file);
    if (!st.isFile()) throw new VigilError('E_BAD_INPUT', 'not a regular file');
    mtime = st.mtime;
    bytes = await fsp.readFile(file);
  } catch (err) {
    return { file, ok: false, status: null, error: { code: isNotFound(err) ? 'E_NOT_FOUND' : 'E_BAD_INPUT', message: fileErrorMessage(err) } };
  }
  const headers: Record<string, string> = {
    authorization: `Bearer ${opts.key}`,
    'content-type': mediaType,
    'x-capture-time': opts.time ?? mtime.toISOString(),
  };
  if (opts.tz) headers['x-time-zone'] = opts.tz;
  // Files copied together share a modification time, and one device cannot capture two different
  // frames at the same instant (409). Without --time, the capture time is nudged 1 ms at a time
  // until the frame is accepted or found to be a duplicate: deterministic for the same files and
  // server state, so re-sending a folder or one of its files finds the same frames.
  let nudges = 0;
  let networkTries = 0;
  for (let attempt = 0; ; attempt++) {
    let res: Answer;
    try {
      res = await postBody(opts.endpoint, headers, bytes, REQUEST_TIMEOUT_MS);
    } catch (err) {
      const cause = networkCause(err);
      const retry = opts.waitForServer || (networkTries < NETWORK_RETRIES && (err as { name?: string })?.name !== 'TimeoutError');
      if (retry && !opts.signal?.aborted) {
        const wait = networkBackoffMs(networkTries++);
        opts.onWait?.(`cannot reach the Vigil server at ${opts.endpoint.origin} (${cause})`, wait);
        if (await sleepUnlessAborted(wait, opts.signal)) {
          attempt--; // not one of the 503 retries
          continue;
        }
      }
      throw new VigilError('E_UNAVAILABLE', `cannot reach the Vigil server at ${opts.endpoint.origin}: ${cause}${opts.signal?.aborted ? ' (stopped while waiting for it; the next run sends this file again)' : ''}`);
    }
    const { text } = res;
    let body: unknown = null;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON: reported below
    }
    // 503: the server is up but cannot take frames now (starting, or its disk is full).
    if (res.status === 503 && (opts.waitForServer || attempt < RETRIES_503) && !opts.signal?.aborted) {
      const retryAfter = Number(res.retryAfter);
      const wait = Number.isFinite(retryAfter) && retryAfter > 0 ? Math.min(retryAfter, 10) * 1000 : Math.min(500 * 2 ** attempt, MAX_NETWORK_WAIT_MS);
      const refusal = ErrorBodySchema.safeParse(body);
      opts.onWait?.(`the Vigil server at ${opts.endpoint.origin} answers 503${refusal.success ? ` ${refusal.data.error.code}: ${refusal.data.error.message}` : ''}`, wait);
      if (await sleepUnlessAborted(wait, opts.signal)) continue;
    }
    if (res.status === 202) {
      const ok = AcceptedSchema.safeParse(body);
      if (ok.success) return { file, ok: true, status: 202, ...ok.data };
      return { file, ok: false, status: 202, error: { code: 'E_BAD_RESPONSE', message: 'the server accepted the frame but its answer is not {frameId, tag, path, duplicate}' } };
    }
    const e = ErrorBodySchema.safeParse(body);
    if (res.status === 409 && !opts.time && nudges < MAX_TIME_NUDGES) {
      nudges++;
      headers['x-capture-time'] = new Date(mtime.getTime() + nudges).toISOString();
      attempt--;
      continue;
    }
    return {
      file,
      ok: false,
      status: res.status,
      error: e.success ? e.data.error : { code: `HTTP_${res.status}`, message: (text.split('\n')[0] ?? '').slice(0, 200) || res.statusText || 'no message' },
    };
  }
}

function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException)?.code === 'ENOENT';
}

/** Expands the arguments: folders become their image files (non-recursive, sorted). */
async function expandInputs(inputs: string[]): Promise<{ files: string[]; dirs: string[]; missing: IngestOutcome[] }> {
  const files: string[] = [];
  const dirs: string[] = [];
  const missing: IngestOutcome[] = [];
  for (const input of inputs) {
    let st;
    try {
      st = await fsp.stat(input);
    } catch (err) {
      missing.push({ file: input, ok: false, status: null, error: { code: isNotFound(err) ? 'E_NOT_FOUND' : 'E_BAD_INPUT', message: fileErrorMessage(err) } });
      continue;
    }
    if (st.isDirectory()) {
      dirs.push(input);
      const names = (await fsp.readdir(input, { withFileTypes: true })).filter((e) => e.isFile() && mediaTypeOf(e.name)).map((e) => e.name).sort();
      files.push(...names.map((n) => path.join(input, n)));
    } else files.push(input);
  }
  return { files, dirs, missing };
}

function report(o: IngestOutcome, mode: 'text' | 'ndjson' | 'quiet'): void {
  if (!o.ok) fail(`${o.file}: ${o.status ? `${o.status} ` : ''}${o.error?.code}: ${o.error?.message}`);
  if (mode === 'ndjson') process.stdout.write(JSON.stringify(o) + '\n');
  else if (mode === 'text' && o.ok) {
    process.stdout.write(`${o.status} ${o.file} -> ${o.tag} frame ${o.frameId?.slice(0, 12)}${o.duplicate ? ' (duplicate)' : ''}\n`);
  }
}

/**
 * Watches folders until `until` aborts (Ctrl-C) or a watch fails; hands each new or changed image to `enqueue` once its size
 * stopped changing for a debounce period. `sent` holds the size:mtime signature of files already
 * handed over, so each version of a file is sent once.
 */
async function follow(dirs: string[], sent: Map<string, string>, enqueue: (file: string) => void, announce: boolean, until: AbortSignal): Promise<void> {
  const timers = new Map<string, NodeJS.Timeout>();
  const schedule = (file: string, lastSize: number) => {
    clearTimeout(timers.get(file));
    timers.set(file, setTimeout(() => void check(file, lastSize), DEBOUNCE_MS));
  };
  const check = async (file: string, lastSize: number) => {
    timers.delete(file);
    let st;
    try {
      st = await fsp.stat(file);
    } catch {
      return; // deleted or renamed away
    }
    if (!st.isFile() || timers.has(file)) return; // a newer event took over
    if (st.size !== lastSize) return schedule(file, st.size); // first look, or still growing
    if (st.size === 0) return; // empty: its next write will wake us again
    const signature = `${st.size}:${st.mtimeMs}`;
    if (sent.get(file) === signature) return;
    sent.set(file, signature);
    enqueue(file);
  };
  const watchers: FSWatcher[] = [];
  await new Promise<void>((resolve) => {
    if (until.aborted) return resolve();
    until.addEventListener('abort', () => resolve(), { once: true });
    for (const dir of dirs) {
      const w = watch(dir, (_event, name) => {
        if (!name) return;
        const file = path.join(dir, name.toString());
        if (mediaTypeOf(file)) schedule(file, -1);
      });
      w.on('error', (err) => {
        fail(`watching ${dir} stopped: ${errorMessage(err)}`);
        resolve();
      });
      watchers.push(w);
    }
    if (announce) process.stdout.write(`watching ${dirs.join(', ')} for new images (Ctrl-C to stop)\n`);
  });
  for (const w of watchers) w.close();
  for (const t of timers.values()) clearTimeout(t);
}

/** The local API's URL: `vigil start` listens on VIGIL_PORT (8080 when unset or not a port). */
export function localServerUrl(env: NodeJS.ProcessEnv = process.env): string {
  const port = /^\d{1,5}$/.test(env.VIGIL_PORT ?? '') && Number(env.VIGIL_PORT) > 0 && Number(env.VIGIL_PORT) < 65536 ? Number(env.VIGIL_PORT) : 8080;
  return `http://127.0.0.1:${port}`;
}

/** Registers `vigil ingest`. */
export function registerIngest(program: Command): void {
  program
    .command('ingest')
    .description('send image files (or the images of folders) to a running Vigil server')
    .argument('<paths...>', 'image files (.jpg, .jpeg, .png, .webp) or folders of them (not recursive)')
    .addOption(new Option('--device-key <key>', 'device key from `vigil device add` (prefer the env variable: arguments are visible to other users)').env('VIGIL_DEVICE_KEY'))
    .addOption(new Option('--url <url>', 'server base URL (by default the local server on VIGIL_PORT)').env('VIGIL_URL').default(localServerUrl()))
    .option('--time <iso>', 'capture time, ISO-8601 with zone, for a single file (default: each file\'s modification time)', checkedOption((v) => parseCaptureTime(v).toISOString()))
    .option('--tz <zone>', 'IANA time zone to send as X-Time-Zone (default: the device\'s)', checkedOption(assertTimeZone))
    .option('--follow', 'keep watching the folders and send new or changed images until Ctrl-C; while the server cannot be reached or cannot take frames (503), wait for it')
    .option('--json', 'print machine-readable JSON (an array; with --follow one JSON object per line)')
    .action(async (inputs: string[], opts: { deviceKey?: string; url: string; time?: string; tz?: string; follow?: boolean; json?: boolean }) => {
      const key = opts.deviceKey?.trim();
      if (!key) throw new UsageError('no device key: pass --device-key or set VIGIL_DEVICE_KEY');
      if (!/^vk_[0-9a-f]{12}_\S+$/.test(key)) throw new UsageError('the device key does not look like a Vigil key (vk_<key id>_<secret>)');
      let base: URL;
      try {
        base = new URL(opts.url.endsWith('/') ? opts.url : `${opts.url}/`);
      } catch {
        throw new UsageError(`--url ${JSON.stringify(opts.url)} is not a URL`);
      }
      if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new UsageError(`--url must be http:// or https://`);
      const sendOpts: SendOptions = { endpoint: new URL('v1/frames', base), key, time: opts.time, tz: opts.tz };

      const { files, dirs, missing } = await expandInputs(inputs);
      if (opts.follow && dirs.length === 0) throw new UsageError('--follow needs at least one folder to watch');
      if (opts.time && (opts.follow || files.length > 1)) {
        throw new UsageError('--time gives one capture time, so it takes exactly one file (a device cannot have two frames at the same instant)');
      }
      const mode = opts.json ? (opts.follow ? 'ndjson' : 'quiet') : 'text';
      const outcomes: IngestOutcome[] = [];
      const sent = new Map<string, string>();
      const record = (o: IngestOutcome) => {
        outcomes.push(o);
        report(o, mode);
      };
      if (opts.follow) for (const m of missing) report(m, mode);
      else for (const m of missing) record(m);

      if (!opts.follow) {
        if (files.length === 0 && missing.length === 0 && !opts.json) process.stdout.write(`nothing to send: no ${Object.keys(MEDIA_TYPES).join(', ')} files\n`);
        try {
          for (const file of files) record(await sendFrame(file, sendOpts));
        } finally {
          if (opts.json) printJson(outcomes);
        }
        return;
      }
      // Follow: one queue for the existing files and the new ones, in arrival order; results streamed.
      // While the server cannot be reached (restarting, say), the queue waits for it: one line says
      // so, new images queue up behind, and all are sent once it answers.
      // Ctrl-C is caught from here on, so one during the first sends still ends the run in order.
      const stop = new AbortController();
      process.once('SIGINT', () => stop.abort());
      process.once('SIGTERM', () => stop.abort());
      /** Why the server could not take the frame, while the queue waits for it (null: it answers). */
      let outage: string | null = null;
      const followOpts: SendOptions = {
        ...sendOpts, waitForServer: true, signal: stop.signal,
        onWait: (reason) => {
          if (outage) return;
          outage = reason;
          process.stderr.write(`vigil: ${reason}; waiting for it, new images queue up\n`);
        },
      };
      let chain: Promise<void> = Promise.resolve();
      let notSent = 0;
      const enqueue = (file: string) => {
        chain = chain.then(async () => {
          if (stop.signal.aborted) {
            notSent++;
            return;
          }
          try {
            const outcome = await sendFrame(file, followOpts);
            if (outage) process.stderr.write(`vigil: the Vigil server answers again; sending the queued images\n`);
            outage = null;
            report(outcome, mode);
          } catch (err) {
            report({ file, ok: false, status: null, error: { code: 'E_UNAVAILABLE', message: errorMessage(err) } }, mode);
          }
        });
      };
      for (const file of files) {
        try {
          const st = await fsp.stat(file);
          sent.set(file, `${st.size}:${st.mtimeMs}`);
        } catch {
          // vanished: sendFrame reports it
        }
        enqueue(file);
      }
      await follow(dirs, sent, enqueue, mode === 'text', stop.signal);
      stop.abort(); // also when a watch failed
      await chain;
      if (notSent) fail(`${notSent} queued image(s) not sent: stopped while waiting for the server; the next \`vigil ingest\` of the folder sends them`);
    });
}
