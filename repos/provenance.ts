import { ProvenanceSchema, type Provenance } from '../lib/schemas.js';

const TRAILER = 'Vigil-Provenance: ';

/** Builds a commit message whose last line carries the provenance as JSON. */
export function formatCommitMessage(summary: string, provenance: Provenance): string {
  const clean = summary.replace(/\s+/g, ' ').trim().slice(0, 200);
  return `${clean}\n\n${TRAILER}${JSON.stringify(ProvenanceSchema.parse(provenance))}\n`;
}

/** Reads the provenance from a commit message; null when there is none or it is malformed. */
export function parseProvenance(message: string): Provenance | null {
  const line = message.split('\n').find((l) => l.startsWith(TRAILER));
  if (!line) return null;
  try {
    const parsed = ProvenanceSchema.safeParse(JSON.parse(line.slice(TRAILER.length)));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

/** The first line of a commit message. */
export function commitSummary(message: string): string {
  return message.split('\n')[0] ?? '';
}
