import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after } from 'node:test';

/** A fresh temporary folder, removed when the test file ends. */
export function tmpDir(prefix = 'vigil-test-'): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Folder of the shared real-photo fixtures. */
export const FIXTURES = path.resolve(import.meta.dirname, '../../../shared/fixtures/images');
