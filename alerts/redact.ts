/**
 * Redaction helpers for attempt records: targets are shown so that an operator can tell them apart
 * without the record leaking an address, a webhook path (often a secret) or a phone number, and
 * summaries are single lines with every known secret removed.
 */

/** `alice@example.com` -> `a***@example.com`. Anything that is not an address -> `***`. */
export function redactEmail(address: string): string {
  const at = address.lastIndexOf('@');
  if (at <= 0 || at === address.length - 1) return '***';
  return `${address[0]}***@${address.slice(at + 1).toLowerCase()}`;
}

/** `https://hooks.example.com:8443/services/T0/B0/XYZ?token=1` -> `hooks.example.com:8443` (host only). */
export function redactUrl(url: string): string {
  try {
    return new URL(url).host || '***';
  } catch {
    return '***';
  }
}

/** `+15555550100` -> `***0100` (last 4 digits). */
export function redactPhone(phone: string): string {
  const digits = phone.replace(/\D/g, '');
  return digits.length >= 4 ? `***${digits.slice(-4)}` : '***';
}

/** Collapses whitespace (newlines included) to single spaces and cuts to `max` characters. */
export function oneLine(text: string, max = 300): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length <= max ? line : `${line.slice(0, max - 1)}…`;
}

/** A secret as it is written, and URL-encoded as in a query or form body (`+1555…` is `%2B1555…` there). */
function spellings(secret: string): string[] {
  return [secret, encodeURIComponent(secret), new URLSearchParams({ s: secret }).toString().slice(2)];
}

/**
 * Replaces every occurrence of each secret in `text`, also URL-encoded (a provider may echo a form
 * field), with `***` (secrets shorter than 4 characters are ignored, they would only garble the text).
 */
export function scrubSecrets(text: string, secrets: readonly (string | undefined)[]): string {
  let out = text;
  const given = secrets.filter((s): s is string => s !== undefined && s.length >= 4);
  const list = [...new Set(given.flatMap(spellings))].sort((a, b) => b.length - a.length);
  for (const s of list) out = out.split(s).join('***');
  return out;
}

/** A summary for an attempt record: secrets scrubbed first, then one line of at most `max` characters. */
export function summarize(text: string, secrets: readonly (string | undefined)[] = [], max = 300): string {
  return oneLine(scrubSecrets(text, secrets), max);
}
