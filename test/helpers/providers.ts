/**
 * Local stand-ins for the alert providers: HTTP servers on 127.0.0.1 (ephemeral ports) that speak
 * each provider's API closely enough for the real clients (`@sendgrid/mail`, Node's fetch), check
 * what a real provider checks (auth, required fields), and record every request.
 *
 * ```ts
 * const sg = await startSendGrid();                 // sg.apiKey, sg.url = SENDGRID_BASE_URL
 * sg.failNext(2, 500);                              // next 2 requests answer 500, then normal again
 * sg.hangNext(1);                                   // next request never answered (client times out)
 * sg.failNext(1, 400);                              // a non-retryable rejection
 * ... sg.received[0].json ...                       // every request, in arrival order
 * await sg.close();
 * ```
 *
 * Failure modes queue up in call order and apply to the next requests, whatever they contain;
 * failed and hung requests are recorded too (`status` = the answer, null when hung).
 */
import { randomBytes } from 'node:crypto';
import http, { type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request a stand-in received. */
export interface RecordedRequest {
  method: string;
  /** Path and query, e.g. `/v3/mail/send`. */
  path: string;
  /** Lower-cased header names. */
  headers: IncomingHttpHeaders;
  /** Raw body text. */
  body: string;
  /** Parsed body when it was JSON, else undefined. */
  json?: unknown;
  /** Parsed body when it was form-encoded, else undefined. */
  form?: Record<string, string>;
  /** HTTP status answered; null when the request was left hanging. */
  status: number | null;
}

/** A running stand-in. */
export interface ProviderServer {
  /** What to configure: a base URL (SendGrid, SMS) or the endpoint itself (webhook, PagerDuty). See each `start…`. */
  readonly url: string;
  /** `http://127.0.0.1:<port>`. */
  readonly baseUrl: string;
  /** Every request, in arrival order. */
  readonly received: RecordedRequest[];
  /** The next `n` requests are answered `status` (default 500) with the provider's error body. */
  failNext(n: number, status?: number): void;
  /** The next `n` requests are never answered (until `close`), so the client times out. */
  hangNext(n: number): void;
  /** Forgets received requests and pending failure modes. */
  reset(): void;
  /** Stops the server, dropping every connection (hung ones included). */
  close(): Promise<void>;
}

/** A provider's normal answer. */
interface Answer {
  status: number;
  headers?: Record<string, string>;
  body?: string;
}

interface ProviderSpec {
  /** Normal handling of a request (after auth and validation). */
  handle: (req: RecordedRequest) => Answer;
  /** Body of a programmed failure with `status`. */
  failBody: (status: number) => Answer;
  /** Suffix of `url` after the base URL. */
  urlPath: string;
}

type Mode = { kind: 'fail'; status: number } | { kind: 'hang' };

const json = (status: number, value: unknown, headers: Record<string, string> = {}): Answer => ({
  status,
  headers: { 'Content-Type': 'application/json', ...headers },
  body: JSON.stringify(value),
});

function parseBody(headers: IncomingHttpHeaders, body: string): Pick<RecordedRequest, 'json' | 'form'> {
  const type = String(headers['content-type'] ?? '');
  if (type.includes('application/json')) {
    try {
      return { json: JSON.parse(body) as unknown };
    } catch {
      return {};
    }
  }
  if (type.includes('application/x-www-form-urlencoded')) return { form: Object.fromEntries(new URLSearchParams(body)) };
  return {};
}

async function startProvider(spec: ProviderSpec): Promise<ProviderServer> {
  const received: RecordedRequest[] = [];
  let modes: Mode[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const rec: RecordedRequest = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body, ...parseBody(req.headers, body), status: null };
      received.push(rec);
      const mode = modes.shift();
      if (mode?.kind === 'hang') return; // never answered; close() drops the socket
      const answer = mode?.kind === 'fail' ? spec.failBody(mode.status) : spec.handle(rec);
      rec.status = answer.status;
      res.writeHead(answer.status, answer.headers ?? {});
      res.end(answer.body ?? '');
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const baseUrl = `http://127.0.0.1:${port}`;
  const queue = (n: number, mode: Mode) => {
    for (let i = 0; i < n; i++) modes.push(mode);
  };
  return {
    url: `${baseUrl}${spec.urlPath}`,
    baseUrl,
    received,
    failNext: (n, status = 500) => queue(n, { kind: 'fail', status }),
    hangNext: (n) => queue(n, { kind: 'hang' }),
    reset: () => {
      received.length = 0;
      modes = [];
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isEmailObject = (v: unknown) => isObject(v) && typeof v.email === 'string' && v.email.includes('@');

// -----------------------------------------------------------------------------------------------
// SendGrid

/** SendGrid stand-in: also exposes the API key it accepts. */
export interface SendGridServer extends ProviderServer {
  readonly apiKey: string;
}

const sendGridError = (status: number, message: string, field: string | null = null): Answer =>
  json(status, { errors: [{ message, field, help: null }] });

/**
 * SendGrid v3 stand-in. `url` is the base URL (SENDGRID_BASE_URL). `POST /v3/mail/send` needs
 * `Authorization: Bearer <apiKey>` (else 401) and a JSON body with `personalizations[].to[].email`,
 * `from.email`, a subject and `content[]` of `{type, value}` (else 400, SendGrid's error shape);
 * then answers 202 with an empty body and an `X-Message-Id` header, like SendGrid.
 * @param opts.apiKey the accepted key (default `SG.vigil-test-key.<random>`).
 */
export async function startSendGrid(opts: { apiKey?: string } = {}): Promise<SendGridServer> {
  const apiKey = opts.apiKey ?? `SG.vigil-test-key.${randomBytes(8).toString('hex')}`;
  const server = await startProvider({
    urlPath: '',
    failBody: (status) => sendGridError(status, status === 429 ? 'too many requests' : `simulated failure ${status}`),
    handle: (req) => {
      if (req.method !== 'POST' || req.path !== '/v3/mail/send') return sendGridError(404, 'not found');
      if (req.headers.authorization !== `Bearer ${apiKey}`) {
        return sendGridError(401, 'The provided authorization grant is invalid, expired, or revoked');
      }
      const b = req.json;
      if (!isObject(b)) return sendGridError(400, 'Bad Request: body must be JSON');
      const ps = b.personalizations;
      if (!Array.isArray(ps) || ps.length === 0) return sendGridError(400, 'The personalizations field is required', 'personalizations');
      for (const p of ps) {
        if (!isObject(p) || !Array.isArray(p.to) || p.to.length === 0 || !p.to.every(isEmailObject)) {
          return sendGridError(400, 'Each personalization needs a "to" array of emails', 'personalizations.to');
        }
      }
      if (!isEmailObject(b.from)) return sendGridError(400, 'The from object must be provided', 'from');
      const subjectOk = typeof b.subject === 'string' && b.subject !== '';
      if (!subjectOk && !ps.every((p) => isObject(p) && typeof p.subject === 'string')) {
        return sendGridError(400, 'The subject is required', 'subject');
      }
      const content = b.content;
      if (!Array.isArray(content) || content.length === 0 || !content.every((c) => isObject(c) && typeof c.type === 'string' && typeof c.value === 'string' && c.value !== '')) {
        return sendGridError(400, 'Unless a valid template_id is provided, the content parameter is required', 'content');
      }
      return { status: 202, headers: { 'X-Message-Id': randomBytes(11).toString('base64url') }, body: '' };
    },
  });
  return Object.assign(server, { apiKey });
}

// -----------------------------------------------------------------------------------------------
// Generic webhook

/**
 * A generic webhook receiver. `url` is the hook (`<base>/hook/<random token>`: a secret path, like
 * real hook URLs). Answers every request 200 `{"ok":true}`; failures answer `{"error":…}`.
 */
export async function startWebhookReceiver(): Promise<ProviderServer> {
  return startProvider({
    urlPath: `/hook/${randomBytes(12).toString('hex')}`,
    // A 401 quotes the header it wanted, as many services do (a credential-like text to keep out of the records).
    failBody: (status) => json(status, { error: status === 401 ? 'missing Authorization: Bearer token' : `simulated failure ${status}` }),
    handle: () => json(200, { ok: true }),
  });
}

// -----------------------------------------------------------------------------------------------
// PagerDuty

const pdInvalid = (errors: string[]): Answer => json(400, { status: 'invalid event', message: 'Event object is invalid', errors });

/**
 * PagerDuty Events API v2 stand-in. `url` is the enqueue endpoint (`<base>/v2/enqueue`,
 * PAGERDUTY_EVENTS_URL). Checks `routing_key` (32 characters), `event_action`
 * (trigger/acknowledge/resolve), `dedup_key`, and for a trigger `payload.summary`, `source` and
 * `severity` (critical/error/warning/info), else 400 `{status:'invalid event', errors}`; answers
 * 202 `{status:'success', message:'Event processed', dedup_key}`. 429 failures answer
 * `{status:'throttle event'}` like PagerDuty.
 */
export async function startPagerDuty(): Promise<ProviderServer> {
  return startProvider({
    urlPath: '/v2/enqueue',
    failBody: (status) =>
      status === 429
        ? json(429, { status: 'throttle event', message: 'Requests for this service are arriving too quickly. Please retry later.' })
        : status === 400
          ? pdInvalid(['simulated invalid event'])
          : json(status, { status: 'error', message: `simulated failure ${status}` }),
    handle: (req) => {
      if (req.method !== 'POST' || req.path !== '/v2/enqueue') return json(404, { status: 'not found' });
      const b = req.json;
      if (!isObject(b)) return pdInvalid(['body must be a JSON object']);
      const errors: string[] = [];
      if (typeof b.routing_key !== 'string' || b.routing_key.length !== 32) errors.push("'routing_key' must be 32 characters");
      if (!['trigger', 'acknowledge', 'resolve'].includes(String(b.event_action))) errors.push("'event_action' is invalid");
      if (typeof b.dedup_key !== 'string' || b.dedup_key === '' || b.dedup_key.length > 255) errors.push("'dedup_key' is missing or too long");
      if (b.event_action === 'trigger') {
        const p = b.payload;
        if (!isObject(p)) errors.push("'payload' is missing");
        else {
          if (typeof p.summary !== 'string' || p.summary === '' || p.summary.length > 1024) errors.push("'payload.summary' is missing or too long");
          if (typeof p.source !== 'string' || p.source === '') errors.push("'payload.source' is missing");
          if (!['critical', 'error', 'warning', 'info'].includes(String(p.severity))) errors.push("'payload.severity' is invalid");
        }
      }
      if (errors.length > 0) return pdInvalid(errors);
      return json(202, { status: 'success', message: 'Event processed', dedup_key: b.dedup_key });
    },
  });
}

// -----------------------------------------------------------------------------------------------
// SMS (Twilio-style)

/** SMS stand-in: also exposes the credentials it accepts. */
export interface SmsServer extends ProviderServer {
  readonly accountSid: string;
  readonly authToken: string;
}

const twilioError = (status: number, code: number, message: string): Answer =>
  json(status, { code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status });

/**
 * Twilio Messages API stand-in. `url` is the base URL (SMS_API_BASE_URL).
 * `POST /2010-04-01/Accounts/{sid}/Messages.json` needs HTTP basic auth `sid:token` matching the
 * path's account (else 401, code 20003), a form-encoded body with `To` (E.164), `From` and `Body`
 * (else 400 with Twilio's codes 21604/21603/21602/21211); answers 201 with the message
 * (`sid: 'SM…'`, `status: 'queued'`).
 * @param opts.accountSid default `AC` + 32 hex; `opts.authToken` default 32 random hex.
 */
export async function startSmsProvider(opts: { accountSid?: string; authToken?: string } = {}): Promise<SmsServer> {
  const accountSid = opts.accountSid ?? `AC${randomBytes(16).toString('hex')}`;
  const authToken = opts.authToken ?? randomBytes(16).toString('hex');
  const server = await startProvider({
    urlPath: '',
    failBody: (status) => twilioError(status, status === 429 ? 20429 : status === 400 ? 21610 : 20500, `simulated failure ${status}`),
    handle: (req) => {
      const m = /^\/2010-04-01\/Accounts\/([^/]+)\/Messages\.json$/.exec(req.path);
      if (req.method !== 'POST' || !m) return twilioError(404, 20404, 'The requested resource was not found');
      const expected = `Basic ${Buffer.from(`${accountSid}:${authToken}`).toString('base64')}`;
      if (req.headers.authorization !== expected || decodeURIComponent(m[1]!) !== accountSid) return twilioError(401, 20003, 'Authenticate');
      const f = req.form;
      if (!f) return twilioError(400, 21604, "A 'To' phone number is required.");
      if (!f.To) return twilioError(400, 21604, "A 'To' phone number is required.");
      if (!/^\+[1-9]\d{6,14}$/.test(f.To)) return twilioError(400, 21211, `The 'To' number ${f.To} is not a valid phone number.`);
      if (!f.From) return twilioError(400, 21603, "A 'From' phone number is required.");
      if (!f.Body) return twilioError(400, 21602, 'Message body is required.');
      const sid = `SM${randomBytes(16).toString('hex')}`;
      return json(201, {
        sid,
        account_sid: accountSid,
        to: f.To,
        from: f.From,
        body: f.Body,
        status: 'queued',
        num_segments: String(Math.ceil(f.Body.length / 153) || 1),
        date_created: new Date().toUTCString(),
        uri: `/2010-04-01/Accounts/${accountSid}/Messages/${sid}.json`,
      });
    },
  });
  return Object.assign(server, { accountSid, authToken });
}
