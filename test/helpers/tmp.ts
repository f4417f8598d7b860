import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
/**
 * A fresh temporary folder, removed when the test process exits. (Not with node:test's `after`:
 * registered inside a `before` hook, that runs as soon as the hook ends.)
 */
export function tmpDir(prefix = 'vigil-test-'): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  if (made.size === 0) process.once('exit', () => made.forEach((d) => rmSync(d, { recursive: true, force: true })));
  made.add(dir);
  return dir;
}

/** Folders tmpDir() made, removed by one exit listener (one each tripped MaxListenersExceededWarning). */
const made = new Set<string>();

/** Folder of the real-photo fixtures (copies of the shared ones, see test/fixtures/README.md). */
export const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/images');
