import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';

/** Whether strace runs here (tests that read system calls skip without it). */
export const hasStrace = spawnSync('strace', ['-V']).status === 0;

/**
 * Runs a TypeScript snippet (an ES module, through tsx) under strace and returns the paths it
 * called fsync or fdatasync on, in order (from `strace -y`, which prints each descriptor's path;
 * a call another thread interrupted is printed `<unfinished ...>` on its first line, so the
 * calls are read from where they start).
 */
export function fsyncedBy(snippet: string, logDir: string): string[] {
  const log = path.join(logDir, 'strace.log');
  execFileSync('strace', ['-f', '-y', '-qq', '-e', 'trace=fsync,fdatasync', '-o', log, process.execPath, '--import', 'tsx', '--input-type=module', '-e', snippet], { stdio: 'inherit' });
  return readFileSync(log, 'utf8')
    .split('\n')
    .map((l) => /^\d+\s+f(?:data)?sync\(\d+<([^>]+)>/.exec(l)?.[1])
    .filter((p): p is string => p !== undefined);
}
