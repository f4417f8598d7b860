import { z } from 'zod';
import { VigilError } from '../lib/errors.js';
import { commitChanges, readFiles, readJsons, sha256Hex, type Change, type RepoStore } from '../repos/index.js';
import { evaluate, ruleSetHash, type RuleSet } from '../rules/index.js';
import { DecisionSchema } from '../rules/schema.js';
import { datumKey } from './datum.js';
import { readRuleSet } from './rulesVersion.js';
import { DetectionDocSchema, FrameFields } from './schema.js';

/** Bump when the threats stage's output for the same detection and rules would change. */
export const THREATS_STAGE_VERSION = '1';

/** `threats/<user>-<device>/<timestamp>.json`: the decision for one frame. */
export const ThreatDocSchema = z.object({
  kind: z.literal('threat'),
  ...FrameFields,
  rulesCommit: z.string().nullable(),
  rulesHash: z.string().nullable(),
  decision: DecisionSchema,
  objects: z.number().int(),
});
export type ThreatDoc = z.infer<typeof ThreatDocSchema>;

/** Input of the threats stage. */
export const ThreatsInputSchema = z.object({
  batchId: z.string(),
  detectionsCommit: z.string(),
  paths: z.array(z.string()),
  rulesCommit: z.string().nullable(),
});
export type ThreatsInput = z.infer<typeof ThreatsInputSchema>;

/** An unsafe frame, handed to the alerts stage. */
export const UnsafeRefSchema = z.object({ path: z.string(), frameId: z.string(), rulesFired: z.array(z.number().int()) });

/** Output of the threats stage. */
export const ThreatsOutputSchema = z.object({
  threatsCommit: z.string().nullable(),
  unsafe: z.array(UnsafeRefSchema),
  safe: z.number().int(),
  skipped: z.number().int(),
});
export type ThreatsOutput = z.infer<typeof ThreatsOutputSchema>;

const EMPTY_RULES: RuleSet = { schemaVersion: 1, rules: [], users: {} };

/**
 * The threats stage: the pure rule engine over each detection, with the rule set of one `rules`
 * commit. Every frame's decision (safe or not) is committed to `threats` with provenance to the
 * detection commit and the rules commit, and records the ids of the rules that fired.
 */
export async function threatsStage(store: RepoStore, input: ThreatsInput, ruleSet?: RuleSet | null): Promise<ThreatsOutput> {
  const rules = ruleSet ?? (input.rulesCommit ? await readRuleSet(store, input.rulesCommit) : null) ?? EMPTY_RULES;
  const rulesHash = input.rulesCommit ? ruleSetHash(rules) : null;
  const out: ThreatsOutput = { threatsCommit: null, unsafe: [], safe: 0, skipped: 0 };
  const changes: Change[] = [];
  const [dets, prevs] = await Promise.all([
    readFiles(store, 'detections', input.paths, input.detectionsCommit),
    readJsons<ThreatDoc>(store, 'threats', input.paths).catch(() => new Map<string, ThreatDoc | null>()),
  ]);
  for (const path of input.paths) {
    const bytes = dets.get(path) ?? null;
    const parsed = DetectionDocSchema.safeParse(bytes ? JSON.parse(bytes.toString('utf8')) : null);
    if (!bytes || !parsed.success) throw new VigilError('E_CORRUPT', `detections@${input.detectionsCommit}:${path} is missing or malformed`);
    const det = parsed.data;
    const sha = sha256Hex(bytes);
    const datum = datumKey('threats', THREATS_STAGE_VERSION, sha, rulesHash ?? 'none');
    const prev = prevs.get(path) ?? null;
    const decision = prev?.datum === datum ? prev.decision : evaluate(det, rules);
    if (decision.unsafe) out.unsafe.push({ path, frameId: det.frameId, rulesFired: decision.rulesFired });
    else out.safe++;
    if (prev?.datum === datum) {
      out.skipped++;
      continue;
    }
    const doc: ThreatDoc = {
      kind: 'threat', frameId: det.frameId, tag: det.tag, user: det.user, device: det.device, site: det.site,
      capturedAt: det.capturedAt, timestamp: det.timestamp, tz: det.tz,
      source: { repo: 'detections', commit: input.detectionsCommit, path, sha256: sha },
      rulesCommit: input.rulesCommit, rulesHash, decision, objects: det.objects.length, datum,
    };
    changes.push({ path, content: JSON.stringify(doc, null, 1) + '\n' });
  }
  const inputs = [{ repo: 'detections', commit: input.detectionsCommit }];
  if (input.rulesCommit) inputs.push({ repo: 'rules', commit: input.rulesCommit });
  const res = await commitChanges(store, {
    repo: 'threats', changes,
    provenance: { batchId: input.batchId, stage: 'threats', stageVersion: THREATS_STAGE_VERSION, inputs, extra: { rulesHash } },
    summary: `threats ${input.batchId}: ${out.unsafe.length} unsafe of ${input.paths.length}`,
    durable: true,
  });
  out.threatsCommit = res.commit;
  return out;
}
