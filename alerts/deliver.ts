import { VigilError } from '../lib/errors.js';
import { sendEmail } from './email.js';
import { sendOutbox } from './outbox.js';
import { sendPagerDuty } from './pagerduty.js';
import { AlertSchema, DeliverySchema, type Alert, type Attempt, type ChannelSettings, type Delivery } from './schema.js';
import { sendSms } from './sms.js';
import { sendWebhook } from './webhook.js';

/**
 * Makes ONE delivery attempt of `alert` to `delivery` (from {@link planDeliveries}) and returns its
 * record. Retrying is the caller's job (Temporal, with backoff): retry while `outcome` is `retry`,
 * stop on `delivered` or `failed`. Provider failures never throw.
 * @param attempt 1-based attempt number (Temporal's `Context.current().info.attempt`).
 * @throws VigilError E_BAD_INPUT for an invalid alert or delivery (not retryable),
 *   E_CONFIG when the channel's settings are missing (not retryable until configured).
 */
export async function deliver(alert: Alert, delivery: Delivery, settings: ChannelSettings, attempt: number): Promise<Attempt> {
  const a = AlertSchema.safeParse(alert);
  if (!a.success) throw new VigilError('E_BAD_INPUT', `invalid alert: ${issue(a.error)}`);
  const d = DeliverySchema.safeParse(delivery);
  if (!d.success) throw new VigilError('E_BAD_INPUT', `invalid delivery: ${issue(d.error)}`);
  const al = a.data;
  const dl = d.data;
  switch (dl.channel) {
    case 'email':
      return sendEmail(al, dl.target, settings, attempt);
    case 'webhook':
      return sendWebhook(al, dl.target, settings, attempt);
    case 'pagerduty':
      return sendPagerDuty(al, { url: dl.target, routingKey: dl.routingKey }, settings, attempt);
    case 'sms':
      return sendSms(al, dl.target, settings, attempt);
    case 'outbox':
      return sendOutbox(al, { via: dl.via, target: dl.target }, attempt);
  }
}

function issue(err: { issues: { path: PropertyKey[]; message: string }[] }): string {
  const i = err.issues[0];
  return i ? `${i.path.map(String).join('.') || '(root)'}: ${i.message}` : 'invalid';
}
