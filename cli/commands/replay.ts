import path from 'node:path';
import type { Command } from 'commander';
import { VigilError } from '../../lib/errors.js';
import { printJson, printTable } from '../output.js';
import { checkedOption, config, intOption, openDataStore } from './common.js';

/** `<user>/<device>` as the detections repo's folder prefix (`<user>-<device>/`). @throws VigilError E_BAD_ID */
function devicePrefix(value: string): string {
  const m = /^([a-z0-9_]{1,64})\/([a-z0-9_]{1,64})$/.exec(value);
  if (!m) throw new VigilError('E_BAD_ID', `expected <user>/<device>, e.g. alice/frontdoor`);
  return `${m[1]}-${m[2]}/`;
}

/** Registers `vigil replay`: history re-evaluated under other rules, a dry run that writes nothing. */
export function registerReplay(program: Command): void {
  program
    .command('replay')
    .description('re-evaluate every stored detection under a rules folder and list the frames whose alerts would change (writes nothing)')
    .option('--rules <dir>', 'rules folder to try (default: VIGIL_RULES, the rules in force next batch)')
    .option('--ref <ref>', 'detections branch or commit to replay', 'main')
    .option('--device <user/device>', 'only this device', checkedOption(devicePrefix))
    .option('--limit <n>', 'changed frames listed (the counts cover all)', intOption(0, 1_000_000), 50)
    .option('--json', 'machine-readable output')
    .action(async (opts: { rules?: string; ref: string; device?: string; limit: number; json?: boolean }) => {
      const { checkRules, formatIssue } = await import('../../rules/index.js');
      const { replayRules } = await import('../../stages/replay.js');
      const dir = path.resolve(opts.rules ?? config().VIGIL_RULES);
      const check = await checkRules(dir);
      if (!check.ok || !check.ruleSet) {
        for (const i of check.errors) console.error(formatIssue(i));
        throw new VigilError('E_CONFIG', `rules in ${dir} do not check: ${check.errors.length} error(s)`);
      }
      const r = await replayRules(await openDataStore(), check.ruleSet, { ref: opts.ref, prefix: opts.device, limit: opts.limit });
      if (opts.json) return printJson(r);
      const fmt = (x: number[] | null) => (x === null ? '(none)' : x.length ? `unsafe: rules ${x.join(', ')}` : 'safe');
      if (r.changes.length) printTable(['FRAME', 'CAPTURED', 'ON RECORD', 'REPLAYED'], r.changes.map((c) => [c.path, c.capturedAt, fmt(c.before), fmt(c.after)]));
      console.log(
        `replayed ${r.frames} detection(s) of detections@${r.detectionsCommit?.slice(0, 10) ?? '(none)'} under rules ${r.rulesHash.slice(0, 12)} in ${r.ms} ms: ` +
          `unsafe ${r.unsafeBefore} -> ${r.unsafeAfter}; ${r.newlyUnsafe} newly unsafe, ${r.noLongerUnsafe} no longer unsafe, ${r.otherRules} with other rules firing` +
          (r.changes.length < r.newlyUnsafe + r.noLongerUnsafe + r.otherRules ? ` (first ${r.changes.length} listed)` : ''),
      );
    });
}
