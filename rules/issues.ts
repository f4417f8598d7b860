/**
 * Formatting of rule-file problems: paths inside a file and one-line issue text.
 */
import type { RulesIssue } from './schema.js';

/** `rules[0].minScore` from `['rules', 0, 'minScore']`; keys that are not plain words are quoted. */
export function formatPath(path: readonly PropertyKey[]): string {
  return path
    .map((k, i) => {
      if (typeof k === 'number') return `[${k}]`;
      const s = String(k);
      if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(s)) return i === 0 ? s : `.${s}`;
      return `[${JSON.stringify(s)}]`;
    })
    .join('');
}

/** One line for a terminal: `error users/demo.yaml:4 devices.lobby.rules[0]: unknown rule id 999`. */
export function formatIssue(issue: RulesIssue): string {
  const where = issue.line === undefined ? issue.file : `${issue.file}:${issue.line}`;
  return `${issue.severity} ${where}${issue.path ? ` ${issue.path}` : ''}: ${issue.message}`;
}
