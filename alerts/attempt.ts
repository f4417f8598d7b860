/**
 * Shared by every channel: classifying a provider's answer, describing a failure without secrets,
 * and building the {@link Attempt} record of one request.
 */
import { VigilError } from '../lib/errors.js';
import { summarize } from './redact.js';
import { RESEND_SAFE_CHANNELS, type Attempt, type Channel, type Outcome } from './schema.js';

/**
 * Outcome of an HTTP status: 2xx delivered; 408, 429 and 5xx worth retrying; anything else (other
 * 4xx, unexpected 1xx/3xx) failed for good.
 */
export function classifyStatus(status: number): Outcome {
  if (status >= 200 && status < 300) return 'delivered';
  if (status === 408 || status === 429 || status >= 500) return 'retry';
  return 'failed';
}

/** True for the error an `AbortSignal.timeout()` aborts with. */
export function isTimeout(signal: AbortSignal | undefined, err?: unknown): boolean {
  const reason: unknown = signal?.aborted ? signal.reason : err;
  return reason instanceof Error && reason.name === 'TimeoutError';
}

/**
 * One-line description of a request that got no HTTP answer (connection refused or reset, DNS,
 * TLS…), e.g. `connection error: ECONNREFUSED connect ECONNREFUSED 127.0.0.1:9`.
 */
export function describeNetworkError(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown; cause?: { code?: unknown; message?: unknown } } | undefined;
  const inner = e?.cause && typeof e.cause === 'object' ? e.cause : e;
  const code = typeof inner?.code === 'string' ? inner.code : typeof e?.code === 'string' ? e.code : '';
  const message = typeof inner?.message === 'string' ? inner.message : String(err);
  return `connection error: ${code ? `${code} ` : ''}${message}`;
}

/** The fixed part of an attempt record, known before the request is sent. */
export interface AttemptStart {
  alertId: string;
  channel: Channel;
  /** Already redacted. */
  target: string;
  attempt: number;
  /** No secret in it (it is scrubbed again anyway). */
  requestSummary: string;
  /** Values that must never appear in the record (API keys, tokens, webhook URLs). */
  secrets: readonly (string | undefined)[];
}

/** Result of the request, turned into a record by {@link beginAttempt}'s `finish`. */
export interface AttemptResult {
  statusCode: number | null;
  response: string;
  outcome: Outcome;
}

/**
 * Starts the clock of one attempt; `finish` builds its record (summaries scrubbed of `secrets`,
 * one line, response cut to 300 characters).
 * @throws VigilError E_BAD_INPUT when `attempt` is not an integer >= 1.
 */
export function beginAttempt(start: AttemptStart): { finish: (result: AttemptResult) => Attempt } {
  if (!Number.isInteger(start.attempt) || start.attempt < 1) {
    throw new VigilError('E_BAD_INPUT', `attempt must be an integer >= 1, got ${String(start.attempt)}`);
  }
  const at = new Date().toISOString();
  const t0 = performance.now();
  return {
    finish: (r) => ({
      alertId: start.alertId,
      channel: start.channel,
      target: start.target,
      attempt: start.attempt,
      at,
      requestSummary: summarize(start.requestSummary, start.secrets, 500),
      statusCode: r.statusCode,
      responseSummary: summarize(r.response, start.secrets, 300),
      latencyMs: Math.round((performance.now() - t0) * 10) / 10,
      outcome: r.outcome,
    }),
  };
}

/** Record of a request that got an HTTP answer: `HTTP <status>` then the start of the body. */
export function httpResult(status: number, body: string): AttemptResult {
  const text = body.trim();
  return { statusCode: status, response: `HTTP ${status}${text ? ` ${text}` : ''}`, outcome: classifyStatus(status) };
}

/** Connection errors that prove the request never reached the provider. */
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT', 'ERR_INVALID_URL']);

/** True when `err` shows the request was never delivered to the provider (refused, DNS, unreachable). */
export function neverSent(err: unknown): boolean {
  const e = err as { code?: unknown; cause?: { code?: unknown } } | undefined;
  const codes = [e?.code, e?.cause?.code].filter((c): c is string => typeof c === 'string');
  return codes.some((c) => NOT_SENT.has(c));
}

/**
 * Record of a request that got no answer. A request that never left (connection refused, DNS)
 * is worth retrying. One that may have reached the provider (a timeout, a reset) is retried only
 * on a channel in RESEND_SAFE_CHANNELS (the provider de-duplicates by key); otherwise it is `unknown`.
 */
export function noAnswerResult(err: unknown, signal: AbortSignal | undefined, timeoutMs: number, channel: Channel): AttemptResult {
  const maybeSent = !neverSent(err);
  const outcome = maybeSent && !RESEND_SAFE_CHANNELS.has(channel) ? 'unknown' : 'retry';
  if (isTimeout(signal, err)) return { statusCode: null, response: `timeout: no answer within ${timeoutMs} ms${outcome === 'unknown' ? ' (may have been delivered; not retried)' : ''}`, outcome };
  return { statusCode: null, response: describeNetworkError(err), outcome };
}
