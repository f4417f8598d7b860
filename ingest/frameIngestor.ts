import { randomUUID } from 'node:crypto';
import { VigilError } from '../lib/errors.js';
import type { FrameDoc } from '../lib/schemas.js';
import { commitChanges, readJson, sha256Hex, type RepoStore } from '../repos/index.js';
import type { Device } from './devices.js';
import { assertTimeZone, compactTimestamp, framePath, frameTag, parseCaptureTime } from './frameTag.js';
import { sniffImageType } from './sniff.js';

/** What the ingest API answers for an accepted frame. */
export interface AcceptedFrame {
  frameId: string;
  tag: string;
  path: string;
  /** True when this exact frame was already stored (nothing new was written). */
  duplicate: boolean;
}

/** Called after new frames are durably committed, before the client gets its answer. */
export type OnFramesCommitted = (frames: FrameDoc[], framesCommit: string) => Promise<void>;

interface Pending {
  doc: FrameDoc;
  path: string;
  resolve: (r: AcceptedFrame) => void;
  reject: (e: unknown) => void;
}

/**
 * Accepts frames into the `frames` repo. Bytes go to the object store first (fsync'd); frame
 * documents are group-committed: every request waiting at the same moment shares one git commit,
 * and each request is answered only once that commit (and the collector's record of it) is durable.
 */
export class FrameIngestor {
  private queue: Pending[] = [];
  private flushing: Promise<void> | null = null;

  constructor(
    private readonly store: RepoStore,
    private readonly opts: { maxBytes: number; onCommitted?: OnFramesCommitted; maxFutureSkewMs?: number },
  ) {}

  /**
   * Checks and stores one frame from an authenticated device.
   * @throws VigilError E_BAD_INPUT (empty, bad time or zone), E_TOO_LARGE, E_UNSUPPORTED, E_CONFLICT
   *   (another frame already has this device and timestamp), E_STORAGE.
   */
  async accept(device: Device, bytes: Buffer, capturedAt: unknown, tz?: unknown): Promise<AcceptedFrame> {
    if (bytes.length === 0) throw new VigilError('E_BAD_INPUT', 'the frame is empty');
    if (bytes.length > this.opts.maxBytes) throw new VigilError('E_TOO_LARGE', `the frame is ${bytes.length} bytes; the limit is ${this.opts.maxBytes}`);
    const mediaType = sniffImageType(bytes);
    if (!mediaType) throw new VigilError('E_UNSUPPORTED', 'the frame is not a JPEG, PNG or WebP image');
    const when = parseCaptureTime(capturedAt);
    const now = Date.now();
    if (when.getTime() > now + (this.opts.maxFutureSkewMs ?? 300_000)) {
      throw new VigilError('E_BAD_INPUT', `capture time ${when.toISOString()} is in the future`);
    }
    const zone = assertTimeZone(tz ?? device.tz);
    const timestamp = compactTimestamp(when);
    const framePathNow = framePath(device.user, device.device, timestamp);
    const already = await readJson<FrameDoc>(this.store, 'frames', framePathNow).catch(() => null);
    if (already && already.frameId !== sha256Hex(bytes)) {
      // Refused before the bytes are stored, so a conflict leaves nothing behind.
      throw new VigilError('E_CONFLICT', `device ${device.user}/${device.device} already sent a different frame with capture time ${when.toISOString()}`);
    }
    const put = await this.store.objects.put(bytes);
    const doc: FrameDoc = {
      kind: 'frame',
      frameId: put.sha256,
      tag: frameTag(device.user, device.device, timestamp, zone),
      user: device.user,
      device: device.device,
      site: device.site,
      capturedAt: when.toISOString(),
      timestamp,
      tz: zone,
      receivedAt: new Date(now).toISOString(),
      object: { sha256: put.sha256, size: put.size, mediaType },
    };
    return new Promise<AcceptedFrame>((resolve, reject) => {
      this.queue.push({ doc, path: framePathNow, resolve, reject });
      void this.kick();
    });
  }

  private async kick(): Promise<void> {
    if (this.flushing) return;
    this.flushing = (async () => {
      while (this.queue.length) {
        const group = this.queue.splice(0, 500);
        await this.flush(group).catch((err) => group.forEach((p) => p.reject(err)));
      }
    })();
    try {
      await this.flushing;
    } finally {
      this.flushing = null;
      if (this.queue.length) void this.kick();
    }
  }

  /** Resolves once every frame accepted so far is committed. */
  async drain(): Promise<void> {
    while (this.flushing || this.queue.length) await (this.flushing ?? this.kick());
  }

  private async flush(group: Pending[]): Promise<void> {
    const fresh: Pending[] = [];
    const seen = new Map<string, string>();
    for (const p of group) {
      const existing = seen.get(p.path) ?? (await readJson<FrameDoc>(this.store, 'frames', p.path).catch(() => null))?.frameId;
      if (existing === p.doc.frameId) {
        p.resolve({ frameId: p.doc.frameId, tag: p.doc.tag, path: p.path, duplicate: true });
      } else if (existing) {
        p.reject(new VigilError('E_CONFLICT', `device ${p.doc.user}/${p.doc.device} already sent a different frame with capture time ${p.doc.capturedAt}`));
      } else {
        seen.set(p.path, p.doc.frameId);
        fresh.push(p);
      }
    }
    if (!fresh.length) return;
    const result = await commitChanges(this.store, {
      repo: 'frames',
      changes: fresh.map((p) => ({ path: p.path, content: JSON.stringify(p.doc, null, 1) + '\n' })),
      provenance: { batchId: `ingest-${randomUUID()}`, stage: 'ingest', stageVersion: '1', inputs: [], extra: { frames: fresh.length } },
      summary: `ingest ${fresh.length} frame(s)`,
    });
    if (!result.commit) throw new VigilError('E_STORAGE', 'frames commit produced no head');
    await this.opts.onCommitted?.(fresh.map((p) => p.doc), result.commit);
    for (const p of fresh) p.resolve({ frameId: p.doc.frameId, tag: p.doc.tag, path: p.path, duplicate: false });
  }
}
