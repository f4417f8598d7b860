/**
 * The ingest load generator, run as a child process (so the client never shares the server's event
 * loop): `clients` concurrent camera clients, one keep-alive connection and one device key each,
 * each POSTing ~100 KB JPEGs back to back for a fixed time. Every request has distinct bytes (a
 * unique JPEG comment segment) and a new capture time, so nothing is a duplicate or a conflict.
 *
 * Protocol: the parent forks this file and sends one {@link LoadRequest}; the child answers one
 * {@link LoadResult} and exits.
 */
import { benchFrames, uniqueJpeg } from './frames.js';
import { FrameClient, type PostResult } from './http.js';
import { now, selfCpuMs, stats } from './common.js';

/** What to do. */
export interface LoadRequest {
  apiUrl: string;
  /** One device key per client. */
  keys: string[];
  cacheDir: string;
  /** Mixed-pool frame indexes used as base images. */
  baseFrom: number;
  baseCount: number;
  warmupMs: number;
  durationMs: number;
  /** First capture time (epoch ms); each client steps by 1 s. */
  captureStartMs: number;
  /**
   * Open loop: frames/s offered in total, spread evenly over the clients (cameras), each sending on
   * its own fixed schedule whether or not its earlier frames were answered (a camera does not wait
   * for the server). Latency then counts from the scheduled send time, so a stalled server shows
   * up in it (no coordinated omission). Absent: closed loop, each client POSTing back to back.
   */
  ratePerSec?: number;
}

/** What happened during the measured window. */
export interface LoadResult {
  accepted: number;
  /** Answers by HTTP status (measured window only). */
  statuses: Record<string, number>;
  /** Client-side latency of every measured request (ms). */
  latencies: number[];
  /** Accepted frames per second of the window. */
  timeline: number[];
  measuredMs: number;
  meanBytes: number;
  errors: string[];
  /** Requests sent again after the server closed their kept-alive connection as they were sent (FrameClient.resetRetries). */
  resetRetries: number;
  /**
   * Open loop: how late the generator itself sent the frames due in the window (ms after they were
   * due; its timers and event loop share the cores with the server). Part of every latency, since
   * latency counts from when a frame was due. Null in closed loop.
   */
  sendLag: ReturnType<typeof stats> | null;
  /** CPU the load generator itself used (ms, whole run including warm-up). */
  cpuMs: number;
  /**
   * Every answer, warm-up included: when it was sent (closed loop) or due (open loop), in ms from
   * the window's start, and its latency. For finding when a run stalled (e.g. its first seconds).
   */
  series: Array<[number, number]>;
}

async function runLoad(req: LoadRequest): Promise<LoadResult> {
  const bases = (await benchFrames(req.cacheDir, 'mixed', req.baseFrom, req.baseCount)).map((f) => f.bytes);
  // Open loop: a client may have several requests in flight while the server is slow.
  const client = new FrameClient(req.apiUrl, req.ratePerSec ? req.keys.length * 8 : req.keys.length);
  const cpu0 = selfCpuMs();
  const t0 = now();
  const measureFrom = t0 + req.warmupMs;
  const stopAt = measureFrom + req.durationMs;
  const out: LoadResult = { accepted: 0, statuses: {}, latencies: [], timeline: [], measuredMs: req.durationMs, meanBytes: 0, errors: [], resetRetries: 0, sendLag: null, cpuMs: 0, series: [] };
  const lags: number[] = [];
  let sentBytes = 0;
  let sent = 0;
  /** Counts one answer: `from` (when it was sent, or due) and `end` decide whether it is in the window. */
  const record = (from: number, end: number, latencyMs: number, r: PostResult, bodyBytes: number) => {
    // Closed loop: requests sent and answered in the window. Open loop: every frame due in the
    // window, however late its answer (a slow server must not drop its slowest answers).
    out.series.push([Math.round(from - measureFrom), Math.round(latencyMs)]);
    if (from < measureFrom || (req.ratePerSec ? from >= stopAt : end > stopAt)) return;
    out.statuses[r.status] = (out.statuses[r.status] ?? 0) + 1;
    out.latencies.push(latencyMs);
    sentBytes += bodyBytes;
    sent++;
    if (r.status === 202) {
      out.accepted++;
      const sec = Math.floor((end - measureFrom) / 1000);
      out.timeline[sec] = (out.timeline[sec] ?? 0) + 1;
    } else if (out.errors.length < 5) out.errors.push(`${r.status} ${JSON.stringify(r.body)}`);
  };
  const failed = (err: unknown) => {
    if (out.errors.length < 5) out.errors.push((err as Error).message);
    out.statuses.error = (out.statuses.error ?? 0) + 1;
  };
  const frame = (c: number, k: number) => ({
    body: uniqueJpeg(bases[(k + c) % bases.length]!, `vigil-bench ${process.pid} ${c} ${k}`),
    at: new Date(req.captureStartMs + c * 1000 + k * req.keys.length * 1000).toISOString(),
  });
  if (req.ratePerSec) {
    // Each client k-th frame is due at t0 + offset + k * interval; sent then (or at once when the
    // generator itself fell behind), latency counted from when it was due.
    const interval = (1000 * req.keys.length) / req.ratePerSec;
    await Promise.all(
      req.keys.map(async (key, c) => {
        const pending: Promise<void>[] = [];
        for (let k = 0; ; k++) {
          const due = t0 + (c * interval) / req.keys.length + k * interval;
          if (due >= stopAt) break;
          const wait = due - now();
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
          const { body, at } = frame(c, k);
          if (due >= measureFrom) lags.push(now() - due);
          pending.push(client.post(key, body, at).then((r) => {
            const end = now();
            record(due, end, end - due, r, body.length);
          }, failed));
        }
        await Promise.all(pending);
      }),
    );
  } else {
    await Promise.all(
      req.keys.map(async (key, c) => {
        for (let k = 0; ; k++) {
          const start = now();
          if (start >= stopAt) break;
          const { body, at } = frame(c, k);
          try {
            const r = await client.post(key, body, at);
            record(start, now(), r.ms, r, body.length);
          } catch (err) {
            failed(err);
          }
        }
      }),
    );
  }
  client.close();
  out.resetRetries = client.resetRetries;
  if (req.ratePerSec) out.sendLag = stats(lags);
  out.cpuMs = Math.round(selfCpuMs() - cpu0);
  out.meanBytes = sent ? Math.round(sentBytes / sent) : 0;
  for (let i = 0; i < out.timeline.length; i++) out.timeline[i] ??= 0;
  return out;
}

if (process.send) {
  process.once('message', (msg: LoadRequest) => {
    runLoad(msg).then(
      (r) => process.send!({ ok: true, result: r }, () => process.exit(0)),
      (e: unknown) => process.send!({ ok: false, error: (e as Error).stack ?? String(e) }, () => process.exit(1)),
    );
  });
}
