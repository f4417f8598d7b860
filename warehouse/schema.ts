/**
 * Row schemas of the compliance records warehouse. Every table is a set of append-only Parquet
 * files under `<root>/<table>/day=YYYY-MM-DD[/user=<user_id>]/<batchId>[-<part>].parquet`; this file
 * defines, once per table, the zod schema of one row (snake_case columns, instants as ISO 8601
 * strings with `Z` or an offset), the DuckDB/Parquet type of each column, and how rows are
 * partitioned. Row types are inferred from the schemas.
 *
 * Instants are stored as `TIMESTAMPTZ` (Parquet `TIMESTAMP(isAdjustedToUTC=true, MICROS)`), i.e. UTC.
 */
import { z } from 'zod';
import { IdSchema, Sha256Schema } from '../lib/schemas.js';
import { InvalidReasonSchema } from '../validate/reasons.js';
import { isoToMicros } from './time.js';

/** ISO 8601 instant with `Z` or an explicit offset (a bare local time is ambiguous and refused). */
export const InstantSchema = z.iso.datetime({ offset: true, error: 'must be an ISO 8601 instant with Z or an offset' });

/** Batch id (also the Parquet file name): letters, digits, `_`, `.`, `-`, not starting with a dot. */
export const BatchIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9_.-]{1,128}$/, 'must be 1-128 characters of A-Z, a-z, 0-9, _, . and -')
  .refine((s) => !s.startsWith('.'), 'must not start with a dot');

/** Version of a rule set: a git commit id of the `rules` repo or a rule-set sha256 (hex, 7-64). */
export const RulesVersionSchema = z.string().regex(/^[0-9a-f]{7,64}$/, 'must be a hex commit id or hash');

/** Alert id (the alerts module uses 32 hex digits; any safe token is accepted). */
export const AlertIdSchema = z.string().regex(/^[A-Za-z0-9_.:-]{1,128}$/, 'must be 1-128 characters of A-Z, a-z, 0-9, _, ., : and -');

const Score = z.number().min(0).max(1);
const Count = z.int().min(0);
const Hour = z.int().min(0).max(23);
const Label = z.string().min(1).max(128);
/** Free text kept short; summaries are one line. */
const Summary = z.string().max(2000);

/**
 * Obvious credentials in a delivery summary (bearer tokens, Authorization headers, api keys,
 * passwords, SendGrid keys), each with the token after it. A summary must never carry secrets:
 * the tables refuse a summary any of them matches, and {@link clearCredentials} cuts them out.
 */
const CREDENTIAL_FORMS = [
  /\bauthorization\s*[:=]\s*(?:bearer\s+)?\S*/gi,
  /\bbearer\s+\S+/gi,
  /\bapi[_-]?key\s*[:=]\s*\S*/gi,
  /\bpassword\s*[:=]\s*\S*/gi,
  /\bsecret\s*[:=]\s*\S*/gi,
  /\bauth[_-]?token\s*[:=]\s*\S*/gi,
  /\bSG\.[\w-]{16,}\S*/gi,
];
const SECRET_PATTERN = new RegExp(CREDENTIAL_FORMS.map((f) => f.source).join('|'), 'i');
const NoSecrets = Summary.refine((s) => !SECRET_PATTERN.test(s), 'looks like it contains a credential (summaries must hold no secrets)');

/**
 * A summary with every credential-looking part replaced by `[credential removed]`, so that it
 * passes the tables' no-secrets check: a provider's answer may quote a header back ("missing
 * Authorization: Bearer token"), and a rule may be named "secret: …". Refusing such a row failed
 * the records stage on every retry and held its batch for good.
 */
export function clearCredentials(text: string): string {
  return CREDENTIAL_FORMS.reduce((t, form) => t.replace(form, '[credential removed]'), text);
}

/** Wall-clock date and hour of `instant` in IANA zone `tz`, or undefined for an unknown zone. */
function localDateHour(instant: string, tz: string): { date: string; hour: number } | undefined {
  let fmt = FORMATTERS.get(tz);
  if (fmt === undefined) {
    try {
      fmt = new Intl.DateTimeFormat('en-CA', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', hourCycle: 'h23' });
    } catch {
      return undefined;
    }
    FORMATTERS.set(tz, fmt);
  }
  const parts = Object.fromEntries(fmt.formatToParts(new Date(instant)).map((p) => [p.type, p.value]));
  return { date: `${parts.year}-${parts.month}-${parts.day}`, hour: Number(parts.hour) };
}
const FORMATTERS = new Map<string, Intl.DateTimeFormat>();

/** `frames`: one row per frame the validate stage saw (standardized or invalid). */
export const FrameRowSchema = z
  .strictObject({
    frame_id: Sha256Schema,
    tag: z.string().min(1).max(256),
    user_id: IdSchema,
    device_id: IdSchema,
    site: IdSchema,
    captured_at: InstantSchema,
    /** IANA zone of the device, e.g. `Europe/Paris`. */
    tz: z.string().min(1).max(64),
    /** Capture date in the device's zone, `YYYY-MM-DD`. */
    local_date: z.iso.date(),
    /** Capture hour (0-23) in the device's zone. */
    local_hour: Hour,
    received_at: InstantSchema,
    batch_id: BatchIdSchema,
    status: z.enum(['standardized', 'invalid']),
    /** Why the frame was refused; null for a standardized frame. */
    reason: InvalidReasonSchema.nullable(),
    /** The frame shows a broken or covered camera (blank / black). */
    camera_fault: z.boolean(),
  })
  .superRefine((r, ctx) => {
    if (r.status === 'invalid' && r.reason === null) ctx.addIssue({ code: 'custom', path: ['reason'], message: 'is required when status is invalid' });
    if (r.status === 'standardized' && r.reason !== null) ctx.addIssue({ code: 'custom', path: ['reason'], message: 'must be null when status is standardized' });
    const local = localDateHour(r.captured_at, r.tz);
    if (local === undefined) {
      ctx.addIssue({ code: 'custom', path: ['tz'], message: `unknown time zone ${JSON.stringify(r.tz)}` });
      return;
    }
    if (local.date !== r.local_date) ctx.addIssue({ code: 'custom', path: ['local_date'], message: `is ${local.date} for captured_at in ${r.tz}` });
    if (local.hour !== r.local_hour) ctx.addIssue({ code: 'custom', path: ['local_hour'], message: `is ${local.hour} for captured_at in ${r.tz}` });
  });
export type FrameRow = z.infer<typeof FrameRowSchema>;

/** `detections`: one row per detected object. */
export const DetectionRowSchema = z.strictObject({
  frame_id: Sha256Schema,
  user_id: IdSchema,
  device_id: IdSchema,
  captured_at: InstantSchema,
  batch_id: BatchIdSchema,
  model_sha256: Sha256Schema,
  class: Label,
  score: Score,
  /** Box in original image pixels. */
  box_x: z.number(),
  box_y: z.number(),
  box_w: z.number().min(0),
  box_h: z.number().min(0),
});
export type DetectionRow = z.infer<typeof DetectionRowSchema>;

/** `threats`: one row per (object, rule) match that made a frame unsafe. */
export const ThreatRowSchema = z.strictObject({
  frame_id: Sha256Schema,
  tag: z.string().min(1).max(256),
  user_id: IdSchema,
  device_id: IdSchema,
  captured_at: InstantSchema,
  /** Capture hour (0-23) in the device's zone. */
  local_hour: Hour,
  batch_id: BatchIdSchema,
  rules_commit: RulesVersionSchema,
  /** Global rule id; 0 for a user's or device's own include. */
  rule_id: z.int().min(0),
  rule_name: z.string().min(1).max(256),
  class: Label,
  score: Score,
});
export type ThreatRow = z.infer<typeof ThreatRowSchema>;

/** `non_matches`: safe frames aggregated per user, device, UTC hour and batch (not one row per frame). */
export const NonMatchRowSchema = z.strictObject({
  user_id: IdSchema,
  device_id: IdSchema,
  /** Start of the UTC hour the frames were captured in (minutes, seconds and fraction zero). */
  hour: InstantSchema.refine((s) => isoToMicros(s) % 3_600_000_000n === 0n, 'must be truncated to the hour'),
  batch_id: BatchIdSchema,
  /** Safe frames in that hour. */
  frames: z.int().min(1),
  /** Objects detected in those frames (none of which matched a rule). */
  objects: Count,
});
export type NonMatchRow = z.infer<typeof NonMatchRowSchema>;

/** `alerts`: one row per alert (a frame that fired a rule, or a camera fault). */
export const AlertRowSchema = z.strictObject({
  alert_id: AlertIdSchema,
  frame_id: Sha256Schema,
  user_id: IdSchema,
  device_id: IdSchema,
  /** Global rule id; 0 for an include (and by convention a camera fault). */
  rule_id: z.int().min(0),
  /** Classes of the matching objects (empty for a camera fault). Stored as `VARCHAR[]`. */
  classes: z.array(Label).max(256),
  max_score: Score,
  created_at: InstantSchema,
  batch_id: BatchIdSchema,
  /** Final state: delivered on at least one channel, failed on all, unknown (sent without an answer on a channel that is never resent), suppressed (cooldown), recorded (raised by reprocessing history, never sent), or kept in the outbox. */
  status: z.enum(['delivered', 'failed', 'unknown', 'suppressed', 'recorded', 'outbox']),
  /** Channels the alert was sent to. */
  channels: Count,
});
export type AlertRow = z.infer<typeof AlertRowSchema>;

/** `deliveries`: one row per delivery attempt of an alert on a channel. Holds no secrets. */
export const DeliveryRowSchema = z.strictObject({
  alert_id: AlertIdSchema,
  channel: z.enum(['email', 'webhook', 'pagerduty', 'sms', 'outbox']),
  /** 1-based attempt number. */
  attempt: z.int().min(1).max(1000),
  /** When the request started. */
  at: InstantSchema,
  request_summary: NoSecrets,
  /** HTTP status, or null when there was none (timeout, connection error, outbox). */
  status_code: z.int().min(100).max(599).nullable(),
  response_summary: NoSecrets,
  latency_ms: z.number().min(0),
  outcome: z.enum(['delivered', 'retry', 'failed', 'unknown', 'suppressed']),
});
export type DeliveryRow = z.infer<typeof DeliveryRowSchema>;

/** `rule_versions`: one row per rule-set version used. */
export const RuleVersionRowSchema = z.strictObject({
  rules_commit: RulesVersionSchema,
  rules_hash: Sha256Schema,
  at: InstantSchema,
  /** Rule ids of the set, comma-separated ascending, e.g. `1,2,5` (empty for no rules). */
  rule_ids: z.string().regex(/^(\d{1,6}(,\d{1,6})*)?$/, 'must be comma-separated integers'),
});
export type RuleVersionRow = z.infer<typeof RuleVersionRowSchema>;

/** DuckDB / Parquet column types used by the warehouse. */
export type SqlType = 'VARCHAR' | 'VARCHAR[]' | 'TIMESTAMPTZ' | 'DATE' | 'TINYINT' | 'SMALLINT' | 'INTEGER' | 'BIGINT' | 'DOUBLE' | 'BOOLEAN';

/** Everything the warehouse knows about one table. */
export interface TableDef<S extends z.ZodType = z.ZodType> {
  /** Row schema. */
  readonly schema: S;
  /** Column name -> type, in file column order. */
  readonly columns: Readonly<Record<string, SqlType>>;
  /** Instant column whose UTC date is the `day` partition. */
  readonly dayColumn: string;
  /** Column whose value is the `user` partition, or null (partitioned by day only). */
  readonly userColumn: string | null;
}

function table<S extends z.ZodType>(
  schema: S,
  columns: { readonly [K in keyof z.infer<S> & string]: SqlType },
  dayColumn: keyof z.infer<S> & string,
  userColumn: (keyof z.infer<S> & string) | null,
): TableDef<S> {
  return { schema, columns, dayColumn, userColumn };
}

/** Every table, its row schema, column types and partitioning. */
export const TABLES = {
  frames: table(
    FrameRowSchema,
    {
      frame_id: 'VARCHAR', tag: 'VARCHAR', user_id: 'VARCHAR', device_id: 'VARCHAR', site: 'VARCHAR',
      captured_at: 'TIMESTAMPTZ', tz: 'VARCHAR', local_date: 'DATE', local_hour: 'TINYINT', received_at: 'TIMESTAMPTZ',
      batch_id: 'VARCHAR', status: 'VARCHAR', reason: 'VARCHAR', camera_fault: 'BOOLEAN',
    },
    'captured_at',
    'user_id',
  ),
  detections: table(
    DetectionRowSchema,
    {
      frame_id: 'VARCHAR', user_id: 'VARCHAR', device_id: 'VARCHAR', captured_at: 'TIMESTAMPTZ', batch_id: 'VARCHAR',
      model_sha256: 'VARCHAR', class: 'VARCHAR', score: 'DOUBLE', box_x: 'DOUBLE', box_y: 'DOUBLE', box_w: 'DOUBLE', box_h: 'DOUBLE',
    },
    'captured_at',
    'user_id',
  ),
  threats: table(
    ThreatRowSchema,
    {
      frame_id: 'VARCHAR', tag: 'VARCHAR', user_id: 'VARCHAR', device_id: 'VARCHAR', captured_at: 'TIMESTAMPTZ',
      local_hour: 'TINYINT', batch_id: 'VARCHAR', rules_commit: 'VARCHAR', rule_id: 'INTEGER', rule_name: 'VARCHAR',
      class: 'VARCHAR', score: 'DOUBLE',
    },
    'captured_at',
    'user_id',
  ),
  non_matches: table(
    NonMatchRowSchema,
    { user_id: 'VARCHAR', device_id: 'VARCHAR', hour: 'TIMESTAMPTZ', batch_id: 'VARCHAR', frames: 'INTEGER', objects: 'INTEGER' },
    'hour',
    'user_id',
  ),
  alerts: table(
    AlertRowSchema,
    {
      alert_id: 'VARCHAR', frame_id: 'VARCHAR', user_id: 'VARCHAR', device_id: 'VARCHAR', rule_id: 'INTEGER',
      classes: 'VARCHAR[]', max_score: 'DOUBLE', created_at: 'TIMESTAMPTZ', batch_id: 'VARCHAR', status: 'VARCHAR', channels: 'SMALLINT',
    },
    'created_at',
    'user_id',
  ),
  deliveries: table(
    DeliveryRowSchema,
    {
      alert_id: 'VARCHAR', channel: 'VARCHAR', attempt: 'SMALLINT', at: 'TIMESTAMPTZ', request_summary: 'VARCHAR',
      status_code: 'SMALLINT', response_summary: 'VARCHAR', latency_ms: 'DOUBLE', outcome: 'VARCHAR',
    },
    'at',
    null,
  ),
  rule_versions: table(
    RuleVersionRowSchema,
    { rules_commit: 'VARCHAR', rules_hash: 'VARCHAR', at: 'TIMESTAMPTZ', rule_ids: 'VARCHAR' },
    'at',
    null,
  ),
} as const;

/** Name of a warehouse table (also its folder under the warehouse root and its SQL view). */
export type TableName = keyof typeof TABLES;

/** Every table name, in a stable order. */
export const TABLE_NAMES = Object.keys(TABLES) as TableName[];

/** Zod schema of a table name. */
export const TableNameSchema = z.enum(TABLE_NAMES as [TableName, ...TableName[]]);

/** The row type of table `T`, as appended and as returned by queries (instants as ISO strings). */
export type TableRow<T extends TableName> = z.infer<(typeof TABLES)[T]['schema']>;

/**
 * `invalid_frames` is not a table of its own: it is a view over `frames` where `status = 'invalid'`
 * (same columns), created by `openWarehouse`.
 */
export const DERIVED_VIEWS = { invalid_frames: `SELECT * FROM frames WHERE status = 'invalid'` } as const;
