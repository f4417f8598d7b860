/**
 * Typed errors shared by every Vigil module. Each carries a stable machine-readable `code`
 * so that the CLI, the HTTP API and the workflows can react to it without parsing messages.
 */

/** Every error code Vigil raises on purpose. */
export type VigilErrorCode =
  | 'E_BAD_ID'
  | 'E_BAD_INPUT'
  | 'E_CONFIG'
  | 'E_NOT_FOUND'
  | 'E_CONFLICT'
  | 'E_HASH_MISMATCH'
  | 'E_CORRUPT'
  | 'E_LOCKED'
  | 'E_UNAUTHORIZED'
  | 'E_TOO_LARGE'
  | 'E_UNSUPPORTED'
  | 'E_MODEL'
  | 'E_TOOL_MISSING'
  | 'E_UNAVAILABLE'
  | 'E_STORAGE';

/** Base class of every deliberate Vigil error. */
export class VigilError extends Error {
  /** Stable code, e.g. `E_HASH_MISMATCH`. */
  readonly code: VigilErrorCode;
  /** Optional structured detail (never secrets). */
  readonly detail?: Record<string, unknown>;

  constructor(code: VigilErrorCode, message: string, detail?: Record<string, unknown>) {
    super(message);
    this.name = 'VigilError';
    this.code = code;
    this.detail = detail;
  }
}

/** True when `err` is a VigilError, optionally with the given code. */
export function isVigilError(err: unknown, code?: VigilErrorCode): err is VigilError {
  return err instanceof VigilError && (code === undefined || err.code === code);
}
