/**
 * Reading one rule file: size limit, UTF-8, YAML (or JSON) parsing, and mapping of paths inside
 * the document to line numbers for error messages.
 */
import { lstat, readFile } from 'node:fs/promises';
import path from 'node:path';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document } from 'yaml';
import { MAX_RULE_FILE_BYTES, type RulesIssue } from './schema.js';

/** A parsed rule file. */
export interface RuleFile {
  /** Path relative to the rules folder (posix). */
  readonly rel: string;
  /** Path shown in messages: the rules folder joined with `rel`. */
  readonly file: string;
  /** Parsed content (a plain mapping). */
  readonly value: Record<string, unknown>;
  /** 1-based line of the node at `path` (or of its nearest existing ancestor), when known. */
  lineOf(path: readonly PropertyKey[]): number | undefined;
}

/** A parsed file, or the reason it could not be parsed. */
export type ReadRuleFileResult = { ok: true; file: RuleFile } | { ok: false; issue: RulesIssue };

const MAX_ALIASES = 100;

function keyOf(node: unknown): string | undefined {
  return isScalar(node) ? String(node.value) : undefined;
}

function rangeStart(node: unknown): number | undefined {
  if (node && typeof node === 'object' && 'range' in node && Array.isArray(node.range)) {
    const start: unknown = node.range[0];
    return typeof start === 'number' ? start : undefined;
  }
  return undefined;
}

/** Start offset of the deepest node along `p` (value, else its key, else the nearest ancestor). */
function offsetOf(doc: Document, p: readonly PropertyKey[]): number | undefined {
  let node: unknown = doc.contents;
  let best = rangeStart(node);
  for (const seg of p) {
    if (isMap(node)) {
      const pair = node.items.find((it) => keyOf(it.key) === String(seg));
      if (!pair) break;
      best = rangeStart(pair.key) ?? best;
      node = pair.value;
    } else if (isSeq(node) && typeof seg === 'number') {
      node = node.items[seg];
    } else break;
    best = rangeStart(node) ?? best;
  }
  return best;
}

function typeName(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'a mapping' : `a ${typeof v}`;
}

/**
 * Reads and parses `rel` inside `dir`. Rejects files over {@link MAX_RULE_FILE_BYTES}, invalid
 * UTF-8, YAML errors (including duplicate keys and multiple documents), JSON syntax errors for
 * `.json`, and documents that are not a mapping.
 */
export async function readRuleFile(dir: string, rel: string): Promise<ReadRuleFileResult> {
  const file = path.join(dir, rel);
  const fail = (message: string, line?: number): ReadRuleFileResult => ({
    ok: false,
    issue: { severity: 'error', file, path: '', ...(line !== undefined ? { line } : {}), message },
  });
  const abs = path.join(dir, ...rel.split('/'));
  let bytes: Buffer;
  try {
    const st = await lstat(abs);
    if (!st.isFile()) return fail('not a regular file');
    if (st.size > MAX_RULE_FILE_BYTES) return fail(`file is ${st.size} bytes, over the ${MAX_RULE_FILE_BYTES}-byte (1 MiB) limit`);
    bytes = await readFile(abs);
  } catch (err) {
    return fail(`cannot read: ${(err as Error).message}`);
  }
  if (bytes.length > MAX_RULE_FILE_BYTES) return fail(`file is ${bytes.length} bytes, over the ${MAX_RULE_FILE_BYTES}-byte (1 MiB) limit`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return fail('not valid UTF-8 text');
  }

  const shape = checkShape(text);
  if (shape) return fail(shape);
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false, version: '1.2', schema: 'core' });
  const isJson = /\.json$/i.test(rel);
  let value: unknown;
  if (isJson) {
    try {
      value = JSON.parse(text);
    } catch (err) {
      return fail(`invalid JSON: ${(err as Error).message}`);
    }
    const dup = doc.errors.find((e) => e.code === 'DUPLICATE_KEY');
    if (dup) return fail(`invalid JSON: ${dup.message.split('\n')[0]}`, lineCounter.linePos(dup.pos[0]).line);
  } else {
    const err = doc.errors[0];
    if (err) return fail(`invalid YAML: ${err.message.split('\n')[0]}`, lineCounter.linePos(err.pos[0]).line);
    try {
      value = doc.toJS({ maxAliasCount: MAX_ALIASES });
    } catch (e) {
      return fail(`invalid YAML: ${(e as Error).message}`);
    }
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    const got = value === null || value === undefined ? 'an empty document' : typeName(value);
    return fail(`the file must contain a mapping (key: value pairs), not ${got}`);
  }
  const banned = findBannedKey(value);
  if (banned) return fail(`key ${JSON.stringify(banned)} is not allowed (it would change object prototypes)`);
  const usable = doc.errors.length === 0;
  return {
    ok: true,
    file: {
      rel,
      file,
      value: value as Record<string, unknown>,
      lineOf: (p) => {
        const off = usable ? offsetOf(doc, p) : undefined;
        return off === undefined ? undefined : lineCounter.linePos(off).line;
      },
    },
  };
}

/** Most lines a rule file may have (keeps parsing and error lookups fast). */
export const MAX_RULE_FILE_LINES = 10_000;
/** Deepest nesting of flow collections (`[`/`{`) or block indentation a rule file may have. */
export const MAX_RULE_FILE_DEPTH = 32;

/**
 * Cheap structural limits checked before the YAML parser runs, so that a hostile file (deeply
 * nested brackets, hundreds of thousands of keys) is refused quickly instead of exhausting the
 * parser's stack or running for minutes.
 * @returns a reason, or null when the file is within the limits.
 */
export function checkShape(text: string): string | null {
  let lines = 1;
  let depth = 0;
  let maxDepth = 0;
  let quote: string | null = null;
  let lineStart = true;
  let indent = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '\n') {
      lines++;
      lineStart = true;
      indent = 0;
      if (quote === "'") quote = null;
      continue;
    }
    if (lineStart) {
      if (c === ' ') {
        indent++;
        if (indent / 2 > MAX_RULE_FILE_DEPTH * 2) return `indentation deeper than ${MAX_RULE_FILE_DEPTH * 4} spaces on line ${lines}`;
        continue;
      }
      lineStart = false;
    }
    if (quote) {
      if (c === '\\' && quote === '"') i++;
      else if (c === quote) quote = null;
      continue;
    }
    if (c === '"' || c === "'") quote = c;
    else if (c === '#') {
      while (i + 1 < text.length && text[i + 1] !== '\n') i++;
    } else if (c === '[' || c === '{') {
      depth++;
      if (depth > maxDepth) maxDepth = depth;
      if (depth > MAX_RULE_FILE_DEPTH) return `nesting deeper than ${MAX_RULE_FILE_DEPTH} levels on line ${lines}`;
    } else if (c === ']' || c === '}') depth = Math.max(0, depth - 1);
  }
  if (lines > MAX_RULE_FILE_LINES) return `file has ${lines} lines; rule files are limited to ${MAX_RULE_FILE_LINES}`;
  return null;
}

const BANNED_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/** The first key anywhere in a parsed document that could tamper with prototypes, or null. */
export function findBannedKey(value: unknown, depth = 0): string | null {
  if (depth > 64 || value === null || typeof value !== 'object') return null;
  for (const k of Object.keys(value)) {
    if (BANNED_KEYS.has(k)) return k;
    const inner = findBannedKey((value as Record<string, unknown>)[k], depth + 1);
    if (inner) return inner;
  }
  return null;
}
