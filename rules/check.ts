/**
 * `vigil rules check [dir]`: validates a rules folder completely and reports every problem with
 * its file, the path inside the file and the reason.
 */
import { z } from 'zod';
import { COCO80_LABELS } from '../detector/labels.js';
import { listRuleFiles } from './files.js';
import { ruleSetHash } from './hash.js';
import { formatPath } from './issues.js';
import { normalizeRuleSet } from './normalize.js';
import { readRuleFile, type RuleFile } from './read.js';
import { resolveRules } from './resolve.js';
import {
  ClassNameSchema,
  GlobalRuleSchema,
  RuleSetSchema,
  UserRulesSchema,
  type GlobalRule,
  type Include,
  type RuleSet,
  type RulesCheckResult,
  type RulesIssue,
  type UserRules,
} from './schema.js';

/** Options of {@link checkRules}. */
export interface CheckRulesOptions {
  /** Class names the active model can produce (e.g. a ResolvedModelConfig's `classNames`). Default: COCO 80. */
  readonly labels?: readonly string[];
  /** Model name used in warnings. Default: `coco80`. */
  readonly modelName?: string;
}

type Path = readonly PropertyKey[];

/** Collects issues for one check run. */
class Issues {
  readonly errors: RulesIssue[] = [];
  readonly warnings: RulesIssue[] = [];

  private readonly seen = new Set<string>();

  /** Records an issue once (a value can break several checks that say the same thing). */
  add(issue: RulesIssue): void {
    const key = JSON.stringify([issue.severity, issue.file, issue.path, issue.message]);
    if (this.seen.has(key)) return;
    this.seen.add(key);
    (issue.severity === 'error' ? this.errors : this.warnings).push(issue);
  }

  at(severity: RulesIssue['severity'], f: RuleFile, p: Path, message: string): void {
    const line = f.lineOf(p);
    this.add({ severity, file: f.file, path: formatPath(p), ...(line !== undefined ? { line } : {}), message });
  }
}

function valueAt(root: unknown, p: Path): unknown {
  let v: unknown = root;
  for (const k of p) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[k];
  }
  return v;
}

/**
 * Validates the value at `base` in `f` against `schema`, recording one error per problem.
 * @returns the parsed value, or undefined when invalid.
 */
function validate<S extends z.ZodType>(schema: S, f: RuleFile, out: Issues, base: Path = []): z.infer<S> | undefined {
  const value = valueAt(f.value, base);
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  for (const i of r.error.issues) {
    const p = [...base, ...i.path];
    if (i.code === 'unrecognized_keys') {
      for (const k of i.keys) out.at('error', f, [...p, k], `unknown key "${k}"`);
    } else if (i.code === 'invalid_key') {
      out.at('error', f, p, `invalid key "${String(p[p.length - 1])}": ${i.issues[0]?.message ?? i.message}`);
    } else if (i.code === 'invalid_type' && p.length > 0 && valueAt(f.value, p) === undefined) {
      out.at('error', f, p, `missing required key "${String(p[p.length - 1])}"`);
    } else {
      out.at('error', f, p, i.message);
    }
  }
  return undefined;
}

/** Top level of the global file, its rules validated one by one below. */
const GlobalShapeSchema = z.strictObject({ rules: z.array(z.unknown()) });

/**
 * Validates the global file rule by rule, so one bad rule does not hide the others.
 * @returns the valid rules (with their index) and the ids of all rules, valid or not, that have an
 *   integer id (so references to a rule with another error are not also reported as unknown).
 */
function validateGlobal(f: RuleFile, out: Issues): { rules: { rule: GlobalRule; index: number }[]; ids: Set<number>; valid: boolean } {
  const shape = validate(GlobalShapeSchema, f, out);
  if (!shape) return { rules: [], ids: new Set(), valid: false };
  const rules: { rule: GlobalRule; index: number }[] = [];
  const ids = new Set<number>();
  const firstById = new Map<number, number>();
  shape.rules.forEach((raw, index) => {
    const id = valueAt(raw, ['id']);
    if (typeof id === 'number' && Number.isInteger(id)) {
      const prev = firstById.get(id);
      if (prev !== undefined) out.at('error', f, ['rules', index, 'id'], `duplicate rule id ${id} (first defined at rules[${prev}])`);
      else firstById.set(id, index);
      ids.add(id);
    }
    const rule = validate(GlobalRuleSchema, f, out, ['rules', index]);
    if (rule) rules.push({ rule, index });
  });
  return { rules, ids, valid: rules.length === shape.rules.length };
}

/** Warns about entries listed more than once; returns nothing. */
function warnDuplicates(out: Issues, f: RuleFile, base: Path, list: readonly (string | number)[], what: string): void {
  const seen = new Set<string | number>();
  list.forEach((x, i) => {
    if (seen.has(x)) out.at('warning', f, [...base, i], `${what} ${JSON.stringify(x)} is listed twice`);
    seen.add(x);
  });
}

interface Ctx {
  readonly out: Issues;
  readonly labels: ReadonlySet<string>;
  readonly modelName: string;
  /** Known rule ids, or undefined when the global file is unusable (reference checks skipped). */
  readonly ruleIds: ReadonlySet<number> | undefined;
}

function unknownClassMessage(owner: string, cls: string, ctx: Ctx): string {
  return `${owner}: class "${cls}" is not a class the model (${ctx.modelName}) can produce; it will never match`;
}

function checkGlobal(f: RuleFile, rules: readonly { rule: GlobalRule; index: number }[], ctx: Ctx): void {
  const firstByName = new Map<string, number>();
  rules.forEach(({ rule: r, index: i }) => {
    const prevName = firstByName.get(r.name);
    if (prevName !== undefined) ctx.out.at('warning', f, ['rules', i, 'name'], `rule name "${r.name}" is also used by rules[${prevName}]`);
    else firstByName.set(r.name, i);
    warnDuplicates(ctx.out, f, ['rules', i, 'unsafe'], r.unsafe, 'class');
    r.unsafe.forEach((c, k) => {
      if (!ctx.labels.has(c)) ctx.out.at('warning', f, ['rules', i, 'unsafe', k], unknownClassMessage(`rule ${r.id} (${r.name})`, c, ctx));
    });
  });
}

function checkRefs(f: RuleFile, base: Path, ids: readonly number[], ctx: Ctx): void {
  warnDuplicates(ctx.out, f, base, ids, 'rule id');
  if (!ctx.ruleIds) return;
  const known = [...ctx.ruleIds].sort((a, b) => a - b).join(', ') || 'none';
  ids.forEach((id, i) => {
    if (!ctx.ruleIds?.has(id)) ctx.out.at('error', f, [...base, i], `unknown rule id ${id} (global rules: ${known})`);
  });
}

/** Errors for a class included twice in one layer (`classes`: each include's class, undefined when it has none). */
function checkIncludedOnce(f: RuleFile, base: Path, classes: readonly (string | undefined)[], out: Issues): void {
  const seen = new Map<string, number>();
  classes.forEach((c, i) => {
    if (c === undefined) return;
    const prev = seen.get(c);
    if (prev !== undefined) out.at('error', f, [...base, 'include', i, 'class'], `class "${c}" is already included at include[${prev}]: keep one threshold`);
    else seen.set(c, i);
  });
}

/**
 * For a user file that did not validate: the classes included twice, found in the raw document
 * (the user's and each device's `include`), so they are not reported only once the rest is fixed.
 */
function checkRawIncludes(f: RuleFile, out: Issues): void {
  const devices = valueAt(f.value, ['devices']);
  const bases: Path[] = [[], ...(devices && typeof devices === 'object' && !Array.isArray(devices) ? Object.keys(devices).map((d) => ['devices', d]) : [])];
  for (const base of bases) {
    const include = valueAt(f.value, [...base, 'include']);
    if (!Array.isArray(include)) continue;
    checkIncludedOnce(f, base, include.map((inc) => ClassNameSchema.safeParse(valueAt(inc, ['class'])).data), out);
  }
}

function checkLayer(f: RuleFile, base: Path, owner: string, layer: { include: readonly Include[]; exclude: readonly string[] }, ctx: Ctx): void {
  checkIncludedOnce(f, base, layer.include.map((inc) => inc.class), ctx.out);
  layer.include.forEach((inc, i) => {
    if (!ctx.labels.has(inc.class)) ctx.out.at('warning', f, [...base, 'include', i, 'class'], unknownClassMessage(`${owner} include`, inc.class, ctx));
  });
  warnDuplicates(ctx.out, f, [...base, 'exclude'], layer.exclude, 'class');
  layer.exclude.forEach((c, i) => {
    if (!ctx.labels.has(c)) ctx.out.at('warning', f, [...base, 'exclude', i], unknownClassMessage(`${owner} exclude`, c, ctx));
  });
}

function checkUser(f: RuleFile, u: UserRules, ctx: Ctx): void {
  const stem = f.rel.replace(/^users\//, '').replace(/\.(ya?ml|json)$/i, '');
  if (stem !== u.user) ctx.out.at('error', f, ['user'], `user "${u.user}" must be in users/${u.user}.yaml, not ${f.rel}`);
  checkRefs(f, ['rules'], u.rules, ctx);
  checkLayer(f, [], `user ${u.user}`, u, ctx);
  for (const [name, d] of Object.entries(u.devices)) {
    if (d.rules) checkRefs(f, ['devices', name, 'rules'], d.rules, ctx);
    checkLayer(f, ['devices', name], `user ${u.user} device ${name}`, d, ctx);
  }
  const c = u.contacts;
  c.webhook.forEach((w, i) => {
    const url = new URL(w.url);
    // fetch refuses such a URL: no alert would ever be delivered to it.
    if (url.username !== '' || url.password !== '') {
      ctx.out.at('error', f, ['contacts', 'webhook', i, 'url'], 'must not hold a user name or password (user:pass@host): put a token in the path or query instead');
    }
  });
  if (c.email.length + c.webhook.length + c.phone.length === 0) {
    ctx.out.at('warning', f, ['contacts'], `user ${u.user} has no contacts: alerts will not be delivered`);
  }
}

/** Warns for each user default and device under which nothing can ever be unsafe. */
function checkReachable(set: RuleSet, files: ReadonlyMap<string, RuleFile>, out: Issues): void {
  for (const [user, u] of Object.entries(set.users)) {
    const f = files.get(user);
    if (!f) continue;
    if (resolveRules(set, user, '').rules.length === 0 && Object.keys(u.devices).length === 0) {
      out.at('warning', f, ['rules'], `user ${user}: no rule or include applies, nothing will ever be unsafe`);
    }
    for (const device of Object.keys(u.devices)) {
      if (resolveRules(set, user, device).rules.length === 0) {
        out.at('warning', f, ['devices', device], `user ${user} device ${device}: no rule or include applies, nothing will ever be unsafe`);
      }
    }
  }
}

async function readAll(dir: string, rels: readonly string[], out: Issues, files: string[]): Promise<RuleFile[]> {
  const parsed: RuleFile[] = [];
  for (const rel of rels) {
    const r = await readRuleFile(dir, rel);
    files.push(r.ok ? r.file.file : r.issue.file);
    if (r.ok) parsed.push(r.file);
    else out.add(r.issue);
  }
  return parsed;
}

/**
 * Validates every rule file under `dir` (`global.yaml` and `users/*.yaml`, see rules/README.md).
 *
 * Errors: unreadable/oversized (> 1 MiB) files, invalid YAML/JSON, a document that is not a
 * mapping, wrong types or values, unknown keys, duplicate rule ids, unknown rule ids referenced by
 * a user or device, duplicate users, a user file not named after its user, conflicting includes.
 * Warnings: classes the model cannot produce (naming file, rule and class), duplicates in lists,
 * users without contacts, users/devices under which nothing can be unsafe, ignored files.
 *
 * Never throws for a bad rule set: everything is in the result (`ok` = no errors).
 */
export async function checkRules(dir: string, options: CheckRulesOptions = {}): Promise<RulesCheckResult> {
  const out = new Issues();
  const files: string[] = [];
  const list = await listRuleFiles(dir);
  list.issues.forEach((i) => out.add(i));
  const labels = new Set((options.labels ?? COCO80_LABELS).map((l) => l.trim().toLowerCase()));
  const modelName = options.modelName ?? 'coco80';

  let globalRules: GlobalRule[] | undefined;
  let ruleIds: Set<number> | undefined;
  const [globalFile] = list.global.length === 1 ? await readAll(dir, list.global, out, files) : [];
  if (globalFile) {
    const g = validateGlobal(globalFile, out);
    checkGlobal(globalFile, g.rules, { out, labels, modelName, ruleIds: undefined });
    if (g.valid) globalRules = g.rules.map((r) => r.rule);
    if (g.valid || g.ids.size > 0) ruleIds = g.ids;
  }
  const ctx: Ctx = { out, labels, modelName, ruleIds };

  const users = new Map<string, UserRules>();
  const userFiles = new Map<string, RuleFile>();
  for (const f of await readAll(dir, list.users, out, files)) {
    const u = validate(UserRulesSchema, f, out);
    if (!u) {
      checkRawIncludes(f, out);
      continue;
    }
    checkUser(f, u, ctx);
    const prev = userFiles.get(u.user);
    if (prev) {
      out.at('error', f, ['user'], `duplicate user "${u.user}" (also defined in ${prev.file})`);
      continue;
    }
    users.set(u.user, u);
    userFiles.set(u.user, f);
  }
  if (list.users.length === 0 && out.errors.length === 0) {
    out.add({ severity: 'warning', file: dir, path: '', message: 'no users/<user>.yaml files: nothing will ever be unsafe' });
  }

  const summary = {
    rules: globalRules?.length ?? 0,
    users: users.size,
    devices: [...users.values()].reduce((n, u) => n + Object.keys(u.devices).length, 0),
  };
  let ruleSet: RuleSet | undefined;
  if (out.errors.length === 0 && globalRules) {
    const built = RuleSetSchema.safeParse(normalizeRuleSet({ schemaVersion: 1, rules: globalRules, users: Object.fromEntries(users) }));
    if (built.success) {
      ruleSet = built.data;
      checkReachable(ruleSet, userFiles, out);
    } else {
      for (const i of built.error.issues) out.add({ severity: 'error', file: dir, path: formatPath(i.path), message: i.message });
    }
  }
  const ok = out.errors.length === 0 && ruleSet !== undefined;
  return {
    ok,
    dir,
    files,
    errors: out.errors,
    warnings: out.warnings,
    summary,
    ...(ok && ruleSet ? { ruleSet, hash: ruleSetHash(ruleSet) } : {}),
  };
}
