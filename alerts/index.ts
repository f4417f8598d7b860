/**
 * Public API of the alert delivery domain.
 *
 * ```ts
 * import { alertId, loadChannelSettings, planDeliveries, deliver } from '../alerts/index.js';
 * const settings = loadChannelSettings();                       // secrets: load in the worker, never pass them around
 * const deliveries = planDeliveries(alert, contacts, settings); // [{ channel, target, … }]
 * const record = await deliver(alert, deliveries[0], settings, attempt); // ONE request -> Attempt
 * // record.outcome: 'delivered' | 'retry' (throw a retryable error) | 'failed' (non-retryable)
 * ```
 */
export { alertId } from './alertId.js';
export { beginAttempt, classifyStatus, type AttemptResult, type AttemptStart } from './attempt.js';
export { cooldownKey, isSuppressed } from './cooldown.js';
export { deliver } from './deliver.js';
export { emailMessage, sendEmail } from './email.js';
export {
  alertClasses,
  alertHeadline,
  alertHtml,
  alertSubject,
  alertSummary,
  alertText,
  escapeHtml,
  evidenceRef,
  formatLocalTime,
  formatMatches,
  smsText,
} from './format.js';
export { sendOutbox, type OutboxTarget } from './outbox.js';
export { PAGERDUTY_PUBLIC_EVENTS_URL, pagerDutyEvent, pagerDutyUrl, sendPagerDuty, type PagerDutyEvent, type PagerDutyTarget } from './pagerduty.js';
export { planDeliveries } from './plan.js';
export { oneLine, redactEmail, redactPhone, redactUrl, scrubSecrets, summarize } from './redact.js';
export {
  AlertIdSchema,
  AlertMatchSchema,
  AlertSchema,
  AttemptSchema,
  ChannelEnvSchema,
  ChannelSchema,
  ContactsSchema,
  DeliverySchema,
  EvidenceSchema,
  OutcomeSchema,
  RESEND_SAFE_CHANNELS,
  SendingSchema,
  WithdrawnSchema,
  emailConfigured,
  loadChannelSettings,
  smsConfigured,
  type Alert,
  type AlertMatch,
  type Attempt,
  type Channel,
  type ChannelSettings,
  type Contacts,
  type ContactsInput,
  type Delivery,
  type Evidence,
  type Outcome,
  type Sending,
} from './schema.js';
export { sendSms, smsMessagesUrl } from './sms.js';
export { sendWebhook, urlSecrets, type WebhookBody } from './webhook.js';
