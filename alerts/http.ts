/**
 * One HTTP request with Node's fetch, turned into an {@link Attempt}: used by the webhook,
 * PagerDuty and SMS channels. Never throws for provider failures.
 */
import { beginAttempt, httpResult, noAnswerResult, type AttemptStart } from './attempt.js';
import type { Attempt } from './schema.js';

/** Most of a response body ever read (the record keeps 300 characters). */
const MAX_BODY_BYTES = 4096;

/** User-Agent of every alert request. */
export const USER_AGENT = 'vigil-alerts/0.1';

/** Reads at most `max` bytes of a body, then drops the rest. */
async function readSnippet(res: Response, max = MAX_BODY_BYTES): Promise<string> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < max) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
    }
  } finally {
    if (size >= max) await reader.cancel().catch(() => undefined);
    reader.releaseLock();
  }
  return new TextDecoder().decode(Buffer.concat(chunks).subarray(0, max));
}

/** True for a parseable http: or https: URL. */
export function isHttpUrl(url: string): boolean {
  try {
    const u = new URL(url);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
}

/** A request to make once. */
export interface HttpAttemptRequest extends AttemptStart {
  url: string;
  method?: 'POST';
  headers: Record<string, string>;
  body: string;
  timeoutMs: number;
}

/**
 * Sends the request once (no redirects followed: a 3xx is a failed delivery) under
 * `AbortSignal.timeout(timeoutMs)` — covering the answer's body too — and classifies the answer.
 */
export async function httpAttempt(req: HttpAttemptRequest): Promise<Attempt> {
  const { finish } = beginAttempt(req);
  if (!isHttpUrl(req.url)) return finish({ statusCode: null, response: 'invalid URL: not an http(s) URL', outcome: 'failed' });
  const signal = AbortSignal.timeout(req.timeoutMs);
  try {
    const res = await fetch(req.url, {
      method: req.method ?? 'POST',
      headers: { 'User-Agent': USER_AGENT, ...req.headers },
      body: req.body,
      redirect: 'manual',
      signal,
    });
    let body: string;
    try {
      body = await readSnippet(res);
    } catch (err) {
      // The status arrived but the body did not (timeout or reset mid-body): the status decides.
      body = `(body not read: ${noAnswerResult(err, signal, req.timeoutMs, req.channel).response})`;
    }
    return finish(httpResult(res.status, body));
  } catch (err) {
    return finish(noAnswerResult(err, signal, req.timeoutMs, req.channel));
  }
}
