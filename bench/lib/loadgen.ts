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
import { FrameClient } from './http.js';
import { now, selfCpuMs } from './common.js';

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
  /** CPU the load generator itself used (ms, whole run including warm-up). */
  cpuMs: number;
}

async function runLoad(req: LoadRequest): Promise<LoadResult> {
  const bases = (await benchFrames(req.cacheDir, 'mixed', req.baseFrom, req.baseCount)).map((f) => f.bytes);
  const client = new FrameClient(req.apiUrl, req.keys.length);
  const cpu0 = selfCpuMs();
  const t0 = now();
  const measureFrom = t0 + req.warmupMs;
  const stopAt = measureFrom + req.durationMs;
  const out: LoadResult = { accepted: 0, statuses: {}, latencies: [], timeline: [], measuredMs: req.durationMs, meanBytes: 0, errors: [], cpuMs: 0 };
  let sentBytes = 0;
  let sent = 0;
  await Promise.all(
    req.keys.map(async (key, c) => {
      let t = req.captureStartMs + c * 1000;
      for (let k = 0; ; k++) {
        const start = now();
        if (start >= stopAt) break;
        const body = uniqueJpeg(bases[(k + c) % bases.length]!, `vigil-bench ${process.pid} ${c} ${k}`);
        const at = new Date(t).toISOString();
        t += req.keys.length * 1000;
        try {
          const r = await client.post(key, body, at);
          const end = now();
          if (start >= measureFrom && end <= stopAt) {
            out.statuses[r.status] = (out.statuses[r.status] ?? 0) + 1;
            out.latencies.push(r.ms);
            sentBytes += body.length;
            sent++;
            if (r.status === 202) {
              out.accepted++;
              const sec = Math.floor((end - measureFrom) / 1000);
              out.timeline[sec] = (out.timeline[sec] ?? 0) + 1;
            } else if (out.errors.length < 5) out.errors.push(`${r.status} ${JSON.stringify(r.body)}`);
          }
        } catch (err) {
          if (out.errors.length < 5) out.errors.push((err as Error).message);
          out.statuses.error = (out.statuses.error ?? 0) + 1;
        }
      }
    }),
  );
  client.close();
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
