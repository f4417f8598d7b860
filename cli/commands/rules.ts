import path from 'node:path';
import type { Command } from 'commander';
import { PROJECT_DIR } from '../../lib/config.js';
import { VigilError } from '../../lib/errors.js';
import { printJson } from '../output.js';
import { config } from './common.js';

/** Registers `vigil rules check [dir]`. */
export function registerRules(program: Command): void {
  const rules = program.command('rules').description('threat rules: global rules, per-user and per-device choices');
  rules
    .command('check [dir]')
    .description('validate every rule file; errors name the file, the path inside it and the reason')
    .option('--json', 'machine-readable output')
    .action(async (dir: string | undefined, opts: { json?: boolean }) => {
      const { checkRules, formatIssue } = await import('../../rules/index.js');
      const { loadModelConfig } = await import('../../detector/index.js');
      const model = await loadModelConfig(config().VIGIL_MODEL);
      const target = path.resolve(dir ?? process.env.VIGIL_RULES ?? path.join(PROJECT_DIR, 'rules'));
      const result = await checkRules(target, { labels: model.classNames, modelName: model.name });
      if (opts.json) {
        const { ruleSet: _omit, ...rest } = result;
        printJson(rest);
      } else {
        for (const i of [...result.errors, ...result.warnings]) console.log(formatIssue(i));
        console.log(`${target}: ${result.summary.rules} rule(s), ${result.summary.users} user(s), ${result.summary.devices} device override(s); ${result.errors.length} error(s), ${result.warnings.length} warning(s)`);
      }
      if (!result.ok) throw new VigilError('E_CONFIG', `rules check failed: ${result.errors.length} error(s)`);
    });
}
