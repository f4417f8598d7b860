import { ApplicationFailure, Context } from '@temporalio/activity';
import { loadChannelSettings } from '../alerts/index.js';
import type { RepoStore } from '../repos/index.js';
import { deliverAlert, deliverAlerts, prepareAlerts, type DeliverManyResult, type DeliverResult, type PrepareAlertsInput, type PrepareAlertsOutput } from '../stages/alerts.js';
import { asActivity } from './failure.js';

/**
 * The alerts activities. Channel settings (credentials) are read from the worker's environment
 * here and never travel through workflow history.
 */
export function makeAlertActivities(store: RepoStore, opts: { cooldownMs: number; maxAttempts: number }) {
  return {
    prepareAlerts: asActivity(async function prepareAlertsActivity(input: PrepareAlertsInput): Promise<PrepareAlertsOutput> {
      return prepareAlerts(store, input, { cooldownMs: opts.cooldownMs, settings: loadChannelSettings() });
    }),
    /** One delivery round; throws a retryable failure while a provider answers 5xx/429 or times out. */
    deliverAlert: asActivity(async function deliverAlertActivity(input: { alertsCommit: string; path: string }): Promise<DeliverResult> {
      const final = Context.current().info.attempt >= opts.maxAttempts;
      const result = await deliverAlert(store, input, loadChannelSettings(), final);
      if (result.retry > 0) {
        throw ApplicationFailure.retryable(`${result.retry} delivery(ies) of alert ${result.alertId} will be retried`, 'E_DELIVERY_RETRY');
      }
      return result;
    }),
    /** One delivery round for every pending alert of a chunk; retried as a whole while any delivery must be retried. */
    deliverAlerts: asActivity(async function deliverAlertsActivity(input: { alertsCommit: string; paths: string[] }): Promise<DeliverManyResult> {
      const final = Context.current().info.attempt >= opts.maxAttempts;
      const result = await deliverAlerts(store, input, loadChannelSettings(), final);
      if (result.retry > 0) {
        throw ApplicationFailure.retryable(`${result.retry} delivery(ies) of ${result.alerts} alert(s) will be retried`, 'E_DELIVERY_RETRY');
      }
      return result;
    }),
  };
}
