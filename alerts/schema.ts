/**
 * Schemas of the alert delivery domain: the alert itself, where it goes (contacts, re-used from
 * the rules module so they are defined once), the channel settings read from the environment,
 * one planned delivery, and the record of one delivery attempt. Every type is inferred.
 */
import { z } from 'zod';
import { VigilError } from '../lib/errors.js';
import { CommitIdSchema, IdSchema, RepoNameSchema, Sha256Schema } from '../lib/schemas.js';
import { BoxSchema, ContactsSchema, type Contacts } from '../rules/schema.js';

export { ContactsSchema, type Contacts };

/** What `ContactsSchema` accepts: every list optional, `format` defaults to `generic`. */
export type ContactsInput = z.input<typeof ContactsSchema>;

/** ISO 8601 instant with `Z` or an offset. */
const InstantSchema = z.iso.datetime({ offset: true });

/** Alert id: the first 32 hex digits of a sha256 (see `alerts/alertId.ts`). */
export const AlertIdSchema = z.string().regex(/^[0-9a-f]{32}$/, 'must be 32 lowercase hex digits');

/** Version of the rule set that raised the alert: a git commit id or a rule-set sha256. */
const RulesVersionSchema = z.string().regex(/^[0-9a-f]{7,64}$/, 'must be a hex commit id or hash');

/** One matching object shown in the alert. */
export const AlertMatchSchema = z.object({ class: z.string().min(1), score: z.number().min(0).max(1), box: BoxSchema });
export type AlertMatch = z.infer<typeof AlertMatchSchema>;

/** Where the evidence is: the document (and its commit) that raised the alert, and the frame's hash. */
export const EvidenceSchema = z.object({ repo: RepoNameSchema, commit: CommitIdSchema, path: z.string().min(1), frameSha256: Sha256Schema });
export type Evidence = z.infer<typeof EvidenceSchema>;

/**
 * One alert: a frame that fired one rule (`kind: 'threat'`), or a frame showing a broken or covered
 * camera (`kind: 'camera_fault'`, `matches` usually empty). `alertId` is
 * `alertId(frameId, rulesCommit, ruleId)`, so re-running never makes a second alert.
 */
export const AlertSchema = z.object({
  alertId: AlertIdSchema,
  frameId: Sha256Schema,
  tag: z.string().min(1),
  user: IdSchema,
  device: IdSchema,
  site: IdSchema,
  capturedAt: InstantSchema,
  /** IANA zone of the device, e.g. `Europe/Paris`. */
  tz: z.string().min(1),
  /** Global rule id; 0 for a user's or device's own include (and by convention camera faults). */
  ruleId: z.int().min(0),
  ruleName: z.string().min(1),
  rulesCommit: RulesVersionSchema,
  matches: z.array(AlertMatchSchema),
  evidence: EvidenceSchema,
  kind: z.enum(['threat', 'camera_fault']),
  createdAt: InstantSchema,
});
export type Alert = z.infer<typeof AlertSchema>;

/** Every channel an attempt can go through. `outbox` = kept locally because the channel has no credentials. */
export const ChannelSchema = z.enum(['email', 'webhook', 'pagerduty', 'sms', 'outbox']);
export type Channel = z.infer<typeof ChannelSchema>;

const HttpUrlSchema = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' });
/** An optional env value: empty or blank counts as unset. */
const optional = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v.trim()));
/** `alerts@example.com` or `Vigil <alerts@example.com>`. */
const FromSchema = z
  .string()
  .trim()
  .refine((v) => /^[^\s<>@]+@[^\s<>@]+$/.test(v) || /^[^<>]*<[^\s<>@]+@[^\s<>@]+>$/.test(v), 'must be an email address or "Name <address>"');

/**
 * The channel environment variables. Parsed by {@link loadChannelSettings} into {@link ChannelSettings}.
 * SendGrid needs both `SENDGRID_API_KEY` and `ALERT_EMAIL_FROM`; SMS needs all of `SMS_ACCOUNT_SID`,
 * `SMS_AUTH_TOKEN` and `SMS_FROM`. A channel with none of its credentials goes to the outbox; a
 * channel with only some of them is a configuration error.
 */
export const ChannelEnvSchema = z
  .object({
    SENDGRID_API_KEY: optional,
    SENDGRID_BASE_URL: HttpUrlSchema.default('https://api.sendgrid.com'),
    ALERT_EMAIL_FROM: optional.pipe(FromSchema.optional()),
    PAGERDUTY_EVENTS_URL: HttpUrlSchema.default('https://events.pagerduty.com/v2/enqueue'),
    SMS_API_BASE_URL: HttpUrlSchema.default('https://api.twilio.com'),
    SMS_ACCOUNT_SID: optional,
    SMS_AUTH_TOKEN: optional,
    SMS_FROM: optional,
    ALERT_TIMEOUT_MS: z.coerce.number().int().min(1).max(600_000).default(10_000),
  })
  .superRefine((e, ctx) => {
    if (e.SENDGRID_API_KEY !== undefined && e.ALERT_EMAIL_FROM === undefined) {
      ctx.addIssue({ code: 'custom', path: ['ALERT_EMAIL_FROM'], message: 'is required when SENDGRID_API_KEY is set' });
    }
    const sms = { SMS_ACCOUNT_SID: e.SMS_ACCOUNT_SID, SMS_AUTH_TOKEN: e.SMS_AUTH_TOKEN, SMS_FROM: e.SMS_FROM };
    const missing = Object.entries(sms).filter(([, v]) => v === undefined);
    if (missing.length > 0 && missing.length < 3) {
      for (const [k] of missing) ctx.addIssue({ code: 'custom', path: [k], message: 'is required when any SMS_* credential is set' });
    }
  })
  .transform((e) => ({
    sendgridApiKey: e.SENDGRID_API_KEY,
    sendgridBaseUrl: e.SENDGRID_BASE_URL,
    emailFrom: e.ALERT_EMAIL_FROM,
    pagerdutyEventsUrl: e.PAGERDUTY_EVENTS_URL,
    smsApiBaseUrl: e.SMS_API_BASE_URL,
    smsAccountSid: e.SMS_ACCOUNT_SID,
    smsAuthToken: e.SMS_AUTH_TOKEN,
    smsFrom: e.SMS_FROM,
    timeoutMs: e.ALERT_TIMEOUT_MS,
  }));

/**
 * Channel settings (contain secrets: load them in the worker, never pass them as workflow or
 * activity arguments, never log them).
 */
export type ChannelSettings = z.output<typeof ChannelEnvSchema>;

/**
 * Reads the channel settings from the environment (or `env`). Empty values count as unset.
 * @throws VigilError E_CONFIG naming the variable and the problem (never its value).
 */
export function loadChannelSettings(env: Record<string, string | undefined> = process.env): ChannelSettings {
  const picked = Object.fromEntries(Object.keys(ChannelEnvSchema.def.in.shape).map((k) => [k, env[k] === '' ? undefined : env[k]]));
  const r = ChannelEnvSchema.safeParse(picked);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new VigilError('E_CONFIG', `environment variable ${String(i.path[0])}: ${i.message}`, { variable: String(i.path[0]) });
  }
  return r.data;
}

/** True when e-mail goes through SendGrid (API key and sender set), false when it goes to the outbox. */
export function emailConfigured(s: ChannelSettings): boolean {
  return s.sendgridApiKey !== undefined && s.emailFrom !== undefined;
}

/** True when SMS goes through the provider (account SID, auth token and sender set). */
export function smsConfigured(s: ChannelSettings): boolean {
  return s.smsAccountSid !== undefined && s.smsAuthToken !== undefined && s.smsFrom !== undefined;
}

/** Phone number in E.164 (same rule as the rules module's contacts). */
const PhoneSchema = z.string().regex(/^\+[1-9]\d{6,14}$/, 'phone must be E.164');

/**
 * One planned delivery of one alert to one target. Serializable (an activity argument); holds no
 * credential except a PagerDuty routing key, which comes from the user's contacts.
 */
export const DeliverySchema = z.discriminatedUnion('channel', [
  z.object({ channel: z.literal('email'), target: z.email() }),
  z.object({ channel: z.literal('webhook'), target: HttpUrlSchema }),
  z.object({ channel: z.literal('pagerduty'), target: HttpUrlSchema, routingKey: z.string().min(1) }),
  z.object({ channel: z.literal('sms'), target: PhoneSchema }),
  /** Kept locally: `via` is the channel that had no credentials, `target` its address or phone. */
  z.object({ channel: z.literal('outbox'), target: z.string().min(1), via: z.enum(['email', 'sms']) }),
]);
export type Delivery = z.infer<typeof DeliverySchema>;

/**
 * What happened: delivered, worth retrying (429, 5xx, timeout, connection error), failed for good,
 * or unknown: a channel without an idempotency key (e-mail, SMS) sent the request but got no
 * answer, so the provider may have accepted it. Unknown is never retried (a retry could reach the
 * user twice); it is recorded and shown as such.
 */
export const OutcomeSchema = z.enum(['delivered', 'retry', 'failed', 'unknown']);
export type Outcome = z.infer<typeof OutcomeSchema>;

/**
 * The record of one delivery attempt. Holds no secret: `target` is redacted (`a***@example.com`,
 * a URL's host, a phone's last 4 digits), summaries never contain keys, tokens or webhook paths.
 */
export const AttemptSchema = z.object({
  alertId: AlertIdSchema,
  channel: ChannelSchema,
  target: z.string(),
  /** 1-based attempt number (Temporal's activity attempt). */
  attempt: z.int().min(1),
  /** When the request started, ISO 8601 UTC. */
  at: InstantSchema,
  requestSummary: z.string(),
  /** HTTP status, or null when there was none (timeout, connection error, outbox). */
  statusCode: z.int().nullable(),
  /** Response body or error, one line, at most 300 characters. */
  responseSummary: z.string().max(300),
  latencyMs: z.number().min(0),
  outcome: OutcomeSchema,
});
export type Attempt = z.infer<typeof AttemptSchema>;

/**
 * Channels on which a request may safely be sent again when it is not known whether the last one
 * arrived (it got no answer, or the worker was killed during it; see noAnswerResult and
 * stages/alerts.ts deliverAlert): the webhook carries `Idempotency-Key: <alertId>`, PagerDuty de-duplicates on
 * `dedup_key`, and the outbox makes no request. E-mail (SendGrid's mail/send) and SMS have no
 * such key.
 */
export const RESEND_SAFE_CHANNELS: ReadonlySet<Channel> = new Set<Channel>(['webhook', 'pagerduty', 'outbox']);

/**
 * A delivery about to go out on a channel that must not send twice, written to the ledger (and
 * fsync'd) before the request: a worker that dies during the request leaves this without an
 * attempt of the same number, and the next try records `unknown` instead of sending again.
 */
export const SendingSchema = z.object({
  sending: z.object({
    alertId: AlertIdSchema,
    channel: ChannelSchema,
    /** The delivery key (channel and a hash of the target; see stages/alerts.ts deliveryKey). */
    target: z.string(),
    attempt: z.int().min(1),
    at: InstantSchema,
  }),
});
export type Sending = z.infer<typeof SendingSchema>['sending'];

/**
 * A `sending` mark taken back: the delivery threw before its request went out (deliver() throws
 * only then, e.g. E_CONFIG when the channel's credentials went missing since the alert was
 * planned), so nothing was sent and a later try may send.
 */
export const WithdrawnSchema = z.object({ withdrawn: SendingSchema.shape.sending });
