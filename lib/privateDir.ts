import fs from 'node:fs';

/**
 * Makes a folder (and missing parents) readable by this user only (mode 700), unless it exists:
 * an existing folder keeps its mode, which is reported.
 * @returns its mode (octal text) and whether other users can read it.
 */
export function ensurePrivateDir(dir: string): { created: boolean; mode: string; othersCanRead: boolean } {
  const created = fs.mkdirSync(dir, { recursive: true, mode: 0o700 }) !== undefined;
  const mode = fs.statSync(dir).mode & 0o777;
  return { created, mode: mode.toString(8).padStart(3, '0'), othersCanRead: (mode & 0o044) !== 0 };
}

/**
 * Makes Vigil's data folder private when it is missing (see ensurePrivateDir).
 * @returns a warning to print when the folder exists and other users can read it, else null.
 */
export function privateDataDir(dir: string): string | null {
  const access = ensurePrivateDir(dir);
  return access.othersCanRead ? `${dir} is readable by other users (mode ${access.mode}); it holds camera images and alert contacts: chmod 700 it` : null;
}
