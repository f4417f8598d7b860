import { ApplicationFailure, Context } from '@temporalio/activity';
import { VigilError, type VigilErrorCode } from '../lib/errors.js';

/** Errors that retrying cannot fix: the workflow fails at once with the code as failure type. */
const NON_RETRYABLE = new Set<VigilErrorCode>(['E_CORRUPT', 'E_BAD_ID', 'E_CONFIG', 'E_HASH_MISMATCH']);

/** Wraps an activity so that VigilErrors reach Temporal as ApplicationFailures typed by code. */
export function asActivity<A extends unknown[], R>(fn: (...args: A) => Promise<R>): (...args: A) => Promise<R> {
  return async (...args: A) => {
    // Heartbeat while running, so that a worker that dies is noticed within the heartbeat
    // timeout instead of the whole start-to-close timeout.
    const ctx = Context.current();
    const beat = setInterval(() => ctx.heartbeat(), HEARTBEAT_EVERY_MS);
    try {
      return await fn(...args);
    } catch (err) {
      if (err instanceof VigilError) {
        throw ApplicationFailure.create({ type: err.code, message: err.message, nonRetryable: NON_RETRYABLE.has(err.code) });
      }
      throw err;
    } finally {
      clearInterval(beat);
    }
  };
}

/** How often every activity heartbeats (the workflows' heartbeat timeout is several times this). */
export const HEARTBEAT_EVERY_MS = 5_000;
