import { VigilError } from '../lib/errors.js';
import { pagerDutyUrl } from './pagerduty.js';
import { ContactsSchema, emailConfigured, smsConfigured, type Alert, type ChannelSettings, type ContactsInput, type Delivery } from './schema.js';

/**
 * Every delivery of one alert, in a stable order (e-mails, then webhooks in the order listed,
 * then phones; duplicates dropped):
 * - each e-mail address -> `email` when SendGrid is configured, else an `outbox` entry (`via: 'email'`);
 * - each webhook -> `webhook` (format `generic`) or `pagerduty` (format `pagerduty`, with its
 *   routing key; a contact naming PagerDuty's public endpoint goes to PAGERDUTY_EVENTS_URL);
 * - each phone -> `sms` when SMS credentials are set, else an `outbox` entry (`via: 'sms'`).
 *
 * The alert is accepted for future per-kind routing; today every kind goes to every contact.
 * @throws VigilError E_BAD_INPUT for invalid contacts (parsed with the rules' ContactsSchema).
 */
export function planDeliveries(alert: Alert, contacts: ContactsInput, settings: ChannelSettings): Delivery[] {
  void alert;
  const parsed = ContactsSchema.safeParse(contacts);
  if (!parsed.success) {
    const i = parsed.error.issues[0]!;
    throw new VigilError('E_BAD_INPUT', `invalid contacts at ${i.path.map(String).join('.') || '(root)'}: ${i.message}`);
  }
  const c = parsed.data;
  const out: Delivery[] = [];
  const seen = new Set<string>();
  const add = (d: Delivery) => {
    const key = JSON.stringify(d);
    if (!seen.has(key)) {
      seen.add(key);
      out.push(d);
    }
  };
  const email = emailConfigured(settings);
  for (const to of c.email) add(email ? { channel: 'email', target: to } : { channel: 'outbox', target: to, via: 'email' });
  for (const w of c.webhook) {
    if (w.format === 'pagerduty') add({ channel: 'pagerduty', target: pagerDutyUrl(w.url, settings), routingKey: w.routingKey ?? '' });
    else add({ channel: 'webhook', target: w.url });
  }
  const sms = smsConfigured(settings);
  for (const to of c.phone) add(sms ? { channel: 'sms', target: to } : { channel: 'outbox', target: to, via: 'sms' });
  return out;
}
