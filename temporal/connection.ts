import { readFileSync } from 'node:fs';
import { Connection, Client } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import type { Config } from '../lib/config.js';
import { VigilError } from '../lib/errors.js';

/** TLS options from TEMPORAL_TLS_* (undefined = plain connection, as for the embedded server). */
export function tlsFromConfig(config: Config) {
  if (!config.TEMPORAL_TLS_CERT && !config.TEMPORAL_TLS_CA) return undefined;
  if (Boolean(config.TEMPORAL_TLS_CERT) !== Boolean(config.TEMPORAL_TLS_KEY)) {
    throw new VigilError('E_CONFIG', 'TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY must be set together');
  }
  return {
    serverNameOverride: config.TEMPORAL_TLS_SERVER_NAME,
    serverRootCACertificate: config.TEMPORAL_TLS_CA ? readFileSync(config.TEMPORAL_TLS_CA) : undefined,
    clientCertPair: config.TEMPORAL_TLS_CERT
      ? { crt: readFileSync(config.TEMPORAL_TLS_CERT), key: readFileSync(config.TEMPORAL_TLS_KEY!) }
      : undefined,
  };
}

/** Retries `fn` until it succeeds or `timeoutMs` passes. */
export async function retryUntil<T>(what: string, fn: () => Promise<T>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      return await fn();
    } catch (err) {
      last = err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  throw new VigilError('E_UNAVAILABLE', `${what}: ${last instanceof Error ? last.message.split('\n')[0] : String(last)}`);
}

/** A Temporal client for `address` (waits up to `timeoutMs` for the server). */
export async function connectClient(config: Config, address: string, timeoutMs = 60_000): Promise<Client> {
  const connection = await retryUntil(`cannot reach Temporal at ${address}`, () => Connection.connect({ address, tls: tlsFromConfig(config) }), timeoutMs);
  return new Client({ connection, namespace: config.TEMPORAL_NAMESPACE });
}

/** A worker connection for `address` (waits up to `timeoutMs` for the server). */
export async function connectWorker(config: Config, address: string, timeoutMs = 60_000): Promise<NativeConnection> {
  return retryUntil(`cannot reach Temporal at ${address}`, () => NativeConnection.connect({ address, tls: tlsFromConfig(config) }), timeoutMs);
}
