/**
 * A small HTTP client for POST /v1/frames over keep-alive connections (node:http; no new
 * dependency). Cheaper per request than fetch, which matters when the client shares two cores
 * with the server it measures.
 */
import http from 'node:http';
import { now } from './common.js';

/** Outcome of one POST. */
export interface PostResult {
  status: number;
  /** Client-side latency, from writing the request to the end of the answer (ms). */
  ms: number;
  /** Wall-clock ms when the request was sent. */
  sentAt: number;
  body: { frameId?: string; duplicate?: boolean; error?: { code: string; message: string } };
}

/** A keep-alive client for one API. */
export class FrameClient {
  private readonly agent: http.Agent;
  private readonly url: URL;

  constructor(apiUrl: string, maxSockets: number) {
    this.url = new URL('/v1/frames', apiUrl);
    // Idle sockets are closed by the client after 3 s, before the server's keep-alive timeout
    // (5 s, which Node 20 enforces at 6 s). Without an agent timeout of its own, node:http's Agent
    // keeps idle sockets forever and does not heed the server's `Keep-Alive: timeout=5` hint.
    this.agent = new http.Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets, timeout: 3_000 });
  }

  /**
   * Requests sent again because the server had closed their kept-alive connection as they were
   * sent: the request fails with ECONNRESET ("socket hang up") or EPIPE before the server read it.
   * The agent's idle timeout (above) makes this rare; Node's documentation answers what is left of
   * the race by retrying when `req.reusedSocket`, and so does this client: once, on a connection
   * of its own (`agent: false`; another pooled socket may have been closed in the same pass).
   * Latency still counts from the first try. Seen in the open-loop runs, where a slow spell left
   * many extra sockets idle afterwards. A resend is safe: the server answers a frame it already
   * stored (same device, capture time and bytes) with `202 duplicate`.
   */
  resetRetries = 0;

  /** POSTs one frame with a device key and a capture time. */
  post(key: string, bytes: Buffer, capturedAt: string, contentType = 'image/jpeg'): Promise<PostResult> {
    const sentAt = Date.now();
    const t0 = now();
    const once = (fresh: boolean): Promise<PostResult> =>
      new Promise<PostResult>((resolve, reject) => {
        const req = http.request(
          this.url,
          {
            method: 'POST',
            agent: fresh ? false : this.agent,
            headers: { Authorization: `Bearer ${key}`, 'Content-Type': contentType, 'Content-Length': bytes.length, 'X-Capture-Time': capturedAt },
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => {
              let body: PostResult['body'] = {};
              try {
                body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as PostResult['body'];
              } catch {
                // not JSON: leave empty
              }
              resolve({ status: res.statusCode ?? 0, ms: now() - t0, sentAt, body });
            });
            res.on('error', reject);
          },
        );
        req.on('error', (err: NodeJS.ErrnoException) => reject(Object.assign(err, { reusedSocket: req.reusedSocket })));
        req.end(bytes);
      });
    return once(false).catch((err: NodeJS.ErrnoException & { reusedSocket?: boolean }) => {
      if (!err.reusedSocket || (err.code !== 'ECONNRESET' && err.code !== 'EPIPE')) throw err;
      this.resetRetries++;
      return once(true);
    });
  }

  /** Closes idle connections. */
  close(): void {
    this.agent.destroy();
  }
}

/** Runs `fn` over `items` with at most `limit` in flight; results in input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/**
 * Capture times for one device: strictly increasing, one second apart, starting three days ago
 * (never in the future, never twice the same, so no frame is a 409 conflict).
 */
export class CaptureClock {
  private next: number;

  constructor(startMs = Math.floor(Date.now() / 1000) * 1000 - 3 * 86_400_000) {
    this.next = startMs;
  }

  /** The next capture time (ISO 8601 UTC). */
  take(): string {
    const t = this.next;
    this.next += 1000;
    return new Date(t).toISOString();
  }
}

/** POSTs every frame (with `concurrency` in flight); throws on any answer but 202. */
export async function postFrames(client: FrameClient, key: string, frames: readonly { bytes: Buffer }[], clock: CaptureClock, concurrency: number): Promise<PostResult[]> {
  const times = frames.map(() => clock.take());
  const results = await mapLimit(frames, concurrency, (f, i) => client.post(key, f.bytes, times[i]!));
  const bad = results.find((r) => r.status !== 202);
  if (bad) throw new Error(`POST /v1/frames answered ${bad.status}: ${JSON.stringify(bad.body)}`);
  return results;
}
