import { VigilError } from './errors.js';

/**
 * Identifier rules. User, device, site and repo ids end up in file paths and git tree
 * paths, so they are restricted to a safe alphabet: no slashes, dots-only names, NUL,
 * unicode look-alikes or leading dashes.
 */
export const ID_PATTERN = /^[a-z0-9][a-z0-9_]{0,62}$/;

/**
 * Checks an id (user, device, site). Dashes are not allowed because the frame tag
 * `<user>-<device>-<timestamp>-<tz>` uses them as separators.
 * @throws VigilError E_BAD_ID
 */
export function assertId(kind: string, value: unknown): string {
  if (typeof value !== 'string' || !ID_PATTERN.test(value)) {
    throw new VigilError(
      'E_BAD_ID',
      `${kind} id ${JSON.stringify(value)} is invalid: use 1-63 characters of a-z, 0-9 and _ starting with a letter or digit`,
      { kind },
    );
  }
  return value;
}

/** True for a lowercase hex SHA-256. */
export function isSha256(value: unknown): value is string {
  return typeof value === 'string' && /^[0-9a-f]{64}$/.test(value);
}

/**
 * Checks a SHA-256 hex string.
 * @throws VigilError E_BAD_ID
 */
export function assertSha256(value: unknown): string {
  if (!isSha256(value)) throw new VigilError('E_BAD_ID', `not a sha256: ${JSON.stringify(value)}`);
  return value;
}
