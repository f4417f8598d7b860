import type { FrameDoc } from '../lib/schemas.js';
import { compactTimestamp, framePath, frameTag } from '../ingest/frameTag.js';

/**
 * Checks a frame's tags for consistency: the tag, the path and the capture time must agree.
 * @returns null when fine, or a one-line reason.
 */
export function checkFrameTags(doc: FrameDoc, path: string): string | null {
  const at = new Date(doc.capturedAt);
  if (Number.isNaN(at.getTime())) return `capture time ${doc.capturedAt} is not a date`;
  if (compactTimestamp(at) !== doc.timestamp) return `timestamp ${doc.timestamp} does not match capture time ${doc.capturedAt}`;
  if (doc.tag !== frameTag(doc.user, doc.device, doc.timestamp, doc.tz)) return `tag ${doc.tag} does not match the frame's user, device, time and zone`;
  if (path !== framePath(doc.user, doc.device, doc.timestamp)) return `frame stored at ${path}, expected ${framePath(doc.user, doc.device, doc.timestamp)}`;
  return null;
}
