/**
 * Which files of a rules folder make up the rule set: `global.{yaml,yml,json}` and
 * `users/*.{yaml,yml,json}`. Everything else is ignored (other YAML/JSON files with a warning).
 */
import type { Dirent } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import type { RulesIssue } from './schema.js';

/** Rule files found, as paths relative to the rules folder (posix separators), sorted. */
export interface RuleFileList {
  readonly global: readonly string[];
  readonly users: readonly string[];
  readonly issues: readonly RulesIssue[];
}

const RULE_FILE = /\.(ya?ml|json)$/i;
const GLOBAL_FILE = /^global\.(ya?ml|json)$/i;

function errnoCode(err: unknown): string | undefined {
  return err && typeof err === 'object' && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

async function entries(dir: string): Promise<Dirent[] | string> {
  try {
    const list = await readdir(dir, { withFileTypes: true });
    return list.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  } catch (err) {
    const code = errnoCode(err);
    return code === 'ENOENT' ? 'folder not found' : code === 'ENOTDIR' ? 'not a folder' : `cannot read folder: ${(err as Error).message}`;
  }
}

/**
 * True for a dotfile, which is skipped: silently (`.git`, editor files), or with a warning when
 * its name looks like a rule file (`users/.alice.yaml`, `users/..yaml`), which would otherwise be
 * dropped without a word.
 */
function hidden(name: string, folder: string, issue: (severity: RulesIssue['severity'], rel: string, message: string) => void): boolean {
  if (!name.startsWith('.')) return false;
  if (RULE_FILE.test(name)) issue('warning', `${folder}${name}`, 'ignored: a hidden file (its name starts with a dot)');
  return true;
}

/**
 * Lists the rule files of `dir`. Problems (missing folder, missing or ambiguous global file,
 * symbolic links) are returned as errors; ignored YAML/JSON files as warnings. Dotfiles are skipped
 * (with a warning when named like a rule file).
 */
export async function listRuleFiles(dir: string): Promise<RuleFileList> {
  const issues: RulesIssue[] = [];
  const issue = (severity: RulesIssue['severity'], rel: string, message: string): void => {
    issues.push({ severity, file: rel ? path.join(dir, rel) : dir, path: '', message });
  };
  const top = await entries(dir);
  if (typeof top === 'string') {
    issue('error', '', `rules ${top}`);
    return { global: [], users: [], issues };
  }
  const global: string[] = [];
  const users: string[] = [];
  let usersDir = false;
  for (const e of top) {
    if (hidden(e.name, '', issue)) continue;
    if (e.name === 'users') {
      if (e.isDirectory()) usersDir = true;
      else issue('error', e.name, '"users" must be a folder of <user>.yaml files');
    } else if (GLOBAL_FILE.test(e.name)) {
      if (e.isFile()) global.push(e.name);
      else issue('error', e.name, e.isSymbolicLink() ? 'symbolic links are not allowed in a rules folder' : 'not a regular file');
    } else if (RULE_FILE.test(e.name)) {
      issue('warning', e.name, 'ignored: a rule set is global.yaml plus users/<user>.yaml');
    }
  }
  if (global.length === 0) issue('error', 'global.yaml', 'missing: the global rules file (global.yaml, .yml or .json) is required');
  if (global.length > 1) issue('error', global[1] ?? '', `several global rules files (${global.join(', ')}): keep exactly one`);
  if (usersDir) {
    const list = await entries(path.join(dir, 'users'));
    if (typeof list === 'string') issue('error', 'users', list);
    else {
      for (const e of list) {
        if (hidden(e.name, 'users/', issue)) continue;
        const rel = `users/${e.name}`;
        if (e.isSymbolicLink()) issue('error', rel, 'symbolic links are not allowed in a rules folder');
        else if (!e.isFile()) issue('warning', rel, 'ignored: only <user>.yaml files belong in users/');
        else if (RULE_FILE.test(e.name)) users.push(rel);
        else issue('warning', rel, 'ignored: not a .yaml, .yml or .json file');
      }
    }
  }
  return { global, users, issues };
}
