import * as crypto from 'node:crypto';

/**
 * One-shot digest of `data` as hex: `crypto.hash` (Node >= 20.12; no Hash object, no copy), else
 * through a Hash object, so the Node 20 releases before it (the README asks for >= 20.9) work too.
 */
export const hashHex: (algorithm: string, data: Buffer | Uint8Array) => string =
  typeof crypto.hash === 'function'
    ? (algorithm, data) => crypto.hash(algorithm, data, 'hex')
    : (algorithm, data) => crypto.createHash(algorithm).update(data).digest('hex');
