/**
 * Schemas of the rule files (`global.yaml`, `users/<user>.yaml`), of the normalized rule set that
 * is versioned and hashed, of the engine's decision and of `checkRules`' report. Defined once
 * here; every type is inferred. Semantics are documented in `rules/README.md`.
 */
import { z } from 'zod';
import { IdSchema } from '../lib/schemas.js';

/** Largest rule file accepted, in bytes (1 MiB). */
export const MAX_RULE_FILE_BYTES = 1024 * 1024;

/** Rule id reserved for a user's or device's own `include` entries in decisions. */
export const INCLUDE_RULE_ID = 0;

/** A detector class name. Trimmed and lower-cased, so `Dog` and `dog` are the same class. */
export const ClassNameSchema = z.string().trim().toLowerCase().min(1, 'class name must not be empty').max(64);

/** Id of a global rule: a positive integer (0 is reserved for includes). */
export const RuleIdSchema = z.int('rule id must be an integer from 1 to 999999').min(1, 'rule id must be an integer from 1 to 999999').max(999_999, 'rule id must be an integer from 1 to 999999');

/** Minimum detector score for a match, in (0, 1]. A match needs `score >= minScore`. */
export const MinScoreSchema = z.number().gt(0, 'minScore must be > 0').max(1, 'minScore must be <= 1');

/** Minimum box area as a FRACTION of the image area, in (0, 1] (0.01 = 1 % of the frame). */
export const MinBoxAreaSchema = z.number().gt(0, 'minBoxArea must be > 0').max(1, 'minBoxArea is a fraction of the image area, <= 1');

/** A local wall-clock time `HH:MM`, 24 h. Quote it in YAML (`"22:00"`). */
export const ClockSchema = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'must be a 24 h time "HH:MM" (quote it in YAML)');

/**
 * Local time window in the device's own time zone: `from` inclusive, `to` exclusive; `from > to`
 * crosses midnight (22:00–06:00). `from == to` is rejected (omit the window for "always").
 */
export const ActiveHoursSchema = z
  .strictObject({ from: ClockSchema, to: ClockSchema })
  .refine((h) => h.from !== h.to, { message: 'from and to must differ (omit activeHours to be active all day)', path: ['to'] });
export type ActiveHours = z.infer<typeof ActiveHoursSchema>;

/** A global rule, reusable by id: classes that are unsafe at or above `minScore`. */
export const GlobalRuleSchema = z.strictObject({
  id: RuleIdSchema,
  name: z.string().trim().min(1, 'name must not be empty').max(80),
  description: z.string().max(1000).optional(),
  unsafe: z.array(ClassNameSchema).min(1, 'a rule needs at least one unsafe class'),
  minScore: MinScoreSchema,
  activeHours: ActiveHoursSchema.optional(),
  minBoxArea: MinBoxAreaSchema.optional(),
});
export type GlobalRule = z.infer<typeof GlobalRuleSchema>;

/** A user's or device's own unsafe class with its threshold. */
export const IncludeSchema = z.strictObject({
  class: ClassNameSchema,
  minScore: MinScoreSchema,
  minBoxArea: MinBoxAreaSchema.optional(),
});
export type Include = z.infer<typeof IncludeSchema>;

/** PagerDuty Events v2 routing (integration) key: 32 letters or digits. */
const RoutingKeySchema = z.string().regex(/^[A-Za-z0-9]{32}$/, 'PagerDuty routing key must be 32 letters or digits');

/** A webhook: generic JSON POST, or a PagerDuty Events v2 endpoint with its routing key. */
export const WebhookSchema = z
  .strictObject({
    // A user name or password in it is refused by `vigil rules check` (rules/check.ts), not here:
    // this schema also reads rule sets committed before that check existed.
    url: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }),
    format: z.enum(['generic', 'pagerduty']).default('generic'),
    routingKey: RoutingKeySchema.optional(),
  })
  .superRefine((w, ctx) => {
    if (w.format === 'pagerduty' && w.routingKey === undefined) {
      ctx.addIssue({ code: 'custom', path: ['routingKey'], message: 'routingKey is required when format is pagerduty' });
    }
    if (w.format === 'generic' && w.routingKey !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['routingKey'], message: 'routingKey is only for format: pagerduty' });
    }
  });
export type Webhook = z.infer<typeof WebhookSchema>;

/** E.164 phone number, e.g. `+15555550100`. */
const PhoneSchema = z.string().regex(/^\+[1-9]\d{6,14}$/, 'phone must be E.164, e.g. "+15555550100" (quote it in YAML)');

/** Where a user's alerts go. */
export const ContactsSchema = z.strictObject({
  email: z.array(z.email('invalid email address')).default([]),
  webhook: z.array(WebhookSchema).default([]),
  phone: z.array(PhoneSchema).default([]),
});
export type Contacts = z.infer<typeof ContactsSchema>;

/**
 * Per-device override. `rules`, when present, REPLACES the user's rule list; `exclude` and
 * `include` apply on top of the user's; `activeHours` and `minBoxArea` restrict every rule.
 */
export const DeviceOverrideSchema = z.strictObject({
  rules: z.array(RuleIdSchema).optional(),
  include: z.array(IncludeSchema).default([]),
  exclude: z.array(ClassNameSchema).default([]),
  activeHours: ActiveHoursSchema.optional(),
  minBoxArea: MinBoxAreaSchema.optional(),
});
export type DeviceOverride = z.infer<typeof DeviceOverrideSchema>;

/** One user's rules (`users/<user>.yaml`). */
export const UserRulesSchema = z.strictObject({
  user: IdSchema,
  rules: z.array(RuleIdSchema).default([]),
  include: z.array(IncludeSchema).default([]),
  exclude: z.array(ClassNameSchema).default([]),
  contacts: ContactsSchema.default({ email: [], webhook: [], phone: [] }),
  devices: z.record(IdSchema, DeviceOverrideSchema).default({}),
});
export type UserRules = z.infer<typeof UserRulesSchema>;

/** The global rules file (`global.yaml`). */
export const GlobalRulesFileSchema = z.strictObject({
  rules: z.array(GlobalRuleSchema),
});
export type GlobalRulesFile = z.infer<typeof GlobalRulesFileSchema>;

/**
 * The whole rule set, normalized (see `normalizeRuleSet`): what is serialized, hashed and
 * committed, and what `evaluate` reads. Internally consistent: unique rule ids, every referenced
 * rule id exists, each user is stored under its own id.
 */
export const RuleSetSchema = z
  .strictObject({
    schemaVersion: z.literal(1),
    rules: z.array(GlobalRuleSchema),
    users: z.record(IdSchema, UserRulesSchema),
  })
  .superRefine((set, ctx) => {
    const ids = new Set<number>();
    set.rules.forEach((r, i) => {
      if (ids.has(r.id)) ctx.addIssue({ code: 'custom', path: ['rules', i, 'id'], message: `duplicate rule id ${r.id}` });
      ids.add(r.id);
    });
    for (const [key, u] of Object.entries(set.users)) {
      if (u.user !== key) ctx.addIssue({ code: 'custom', path: ['users', key, 'user'], message: `user "${u.user}" stored under "${key}"` });
      const refs: [(string | number)[], number[]][] = [[['users', key, 'rules'], u.rules]];
      for (const [d, dev] of Object.entries(u.devices)) if (dev.rules) refs.push([['users', key, 'devices', d, 'rules'], dev.rules]);
      for (const [p, list] of refs) {
        list.forEach((id, i) => {
          if (!ids.has(id)) ctx.addIssue({ code: 'custom', path: [...p, i], message: `unknown rule id ${id}` });
        });
      }
    }
  });
export type RuleSet = z.infer<typeof RuleSetSchema>;

/** A box in original image pixels. */
export const BoxSchema = z.object({ x: z.number(), y: z.number(), width: z.number(), height: z.number() });

/** Where a matching rule came from: a global rule, or a user's / device's own include. */
export const MatchSourceSchema = z.enum(['rule', 'user', 'device']);

/** One (object, rule) pair that made a detection unsafe. */
export const MatchSchema = z.object({
  /** Global rule id, or {@link INCLUDE_RULE_ID} (0) for a user/device include. */
  ruleId: z.int().min(0),
  ruleName: z.string(),
  source: MatchSourceSchema,
  class: z.string(),
  score: z.number(),
  box: BoxSchema,
  /** Index of the object in the detection's `objects`. */
  objectIndex: z.int().min(0),
});
export type Match = z.infer<typeof MatchSchema>;

/** The engine's verdict on one detection. */
export const DecisionSchema = z.object({
  unsafe: z.boolean(),
  /** False when the detection's user has no rules file (then nothing is unsafe). */
  configured: z.boolean(),
  /** Ordered by objectIndex, then rule id (includes: user before device). */
  matches: z.array(MatchSchema),
  /** Distinct rule ids with at least one match, ascending (0 = an include). */
  rulesFired: z.array(z.int().min(0)),
});
export type Decision = z.infer<typeof DecisionSchema>;

/** One problem found by `checkRules`. */
export const RulesIssueSchema = z.object({
  severity: z.enum(['error', 'warning']),
  /** The file, as `dir` joined with its path inside the rules folder. */
  file: z.string(),
  /** Path inside the file, e.g. `rules[0].minScore`; empty for the whole file. */
  path: z.string(),
  /** 1-based line in the file, when known. */
  line: z.int().min(1).optional(),
  message: z.string(),
});
export type RulesIssue = z.infer<typeof RulesIssueSchema>;

/** Result of `checkRules`. `ok` = no errors (warnings allowed); then `ruleSet` and `hash` are set. */
export const RulesCheckResultSchema = z.object({
  ok: z.boolean(),
  dir: z.string(),
  /** Rule files read, in reading order. */
  files: z.array(z.string()),
  errors: z.array(RulesIssueSchema),
  warnings: z.array(RulesIssueSchema),
  summary: z.object({ rules: z.int(), users: z.int(), devices: z.int() }),
  ruleSet: RuleSetSchema.optional(),
  hash: z.string().optional(),
});
export type RulesCheckResult = z.infer<typeof RulesCheckResultSchema>;
