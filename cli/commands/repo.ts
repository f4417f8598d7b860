/**
 * `vigil repo list|log|inspect|diff|fsck|gc`: look into the versioned stage repos.
 */
import type { Command } from 'commander';
import type { Provenance } from '../../lib/schemas.js';
import { fail, formatBytes, printFields, printJson, printTable, shortId } from '../output.js';
import { intOption, openDataStore } from './common.js';

const repos = () => import('../../repos/index.js');

/** `repo@commit` with a short commit id. */
export function repoCommitLabel(repo: string, commit: string | null | undefined): string {
  return `${repo}@${shortId(commit)}`;
}

/** Prints a commit's provenance as aligned fields (everything it holds). */
export function printProvenance(p: Provenance | null, indent = '  '): void {
  if (!p) {
    process.stdout.write(`${indent}(none: this commit carries no valid provenance)\n`);
    return;
  }
  const fields: [string, string][] = [
    ['batch', p.batchId],
    ['stage', `${p.stage} (version ${p.stageVersion})`],
    ['inputs', p.inputs.length ? p.inputs.map((i) => `${i.repo}@${i.commit}`).join(', ') : '(none)'],
  ];
  if (p.model) fields.push(['model', `${p.model.name} sha256:${p.model.sha256}`]);
  if (p.extra) for (const [k, v] of Object.entries(p.extra)) fields.push([`extra.${k}`, JSON.stringify(v)]);
  printFields(fields, indent);
}

/** Registers `vigil repo …`. */
export function registerRepo(program: Command): void {
  const repo = program.command('repo').description('inspect the versioned repos (frames, rules, standardized, invalid, detections, threats, alerts)');

  repo
    .command('list')
    .description('list repos with their main head, number of commits and files')
    .option('--json', 'print machine-readable JSON')
    .action(async (opts: { json?: boolean }) => {
      const store = await openDataStore();
      const { listRepoNames, resolveRef, log, listFiles } = await repos();
      const rows = [];
      for (const name of await listRepoNames(store)) {
        // A repo without a main branch (not one Vigil wrote) is listed without a head.
        const head = await resolveRef(store, name, 'main').catch(() => null);
        rows.push({
          name,
          branch: 'main',
          head,
          commits: head ? (await log(store, name, head)).length : 0,
          files: head ? (await listFiles(store, name, head)).length : 0,
        });
      }
      if (opts.json) return printJson(rows);
      printTable(
        ['REPO', 'BRANCH', 'HEAD', 'COMMITS', 'FILES'],
        rows.map((r) => [r.name, r.branch, shortId(r.head), r.commits, r.files]),
        { empty: `no repos yet in ${store.dataDir}` },
      );
    });

  repo
    .command('log')
    .description('show the history of a repo branch, newest first')
    .argument('<repo>', 'repo name (or repo@ref)')
    .option('--ref <ref>', 'branch, commit id or unambiguous prefix (default: main)')
    .option('-n, --max-count <n>', 'show at most n commits', intOption(1, 1_000_000))
    .option('--json', 'print machine-readable JSON')
    .action(async (spec: string, opts: { ref?: string; maxCount?: number; json?: boolean }) => {
      const store = await openDataStore();
      const { parseRepoRef, log } = await repos();
      const { repo: name, ref } = parseRepoRef(spec);
      const commits = await log(store, name, opts.ref ?? ref, opts.maxCount);
      if (opts.json) return printJson(commits);
      printTable(
        ['COMMIT', 'TIME', 'STAGE', 'BATCH', 'SUMMARY'],
        commits.map((c) => [shortId(c.commit), c.time, c.provenance?.stage, c.provenance?.batchId, c.summary]),
        { empty: `${name} has no commits yet` },
      );
    });

  repo
    .command('inspect')
    .description('show one commit: its full provenance and every file of its tree')
    .argument('<repo@ref>', 'repo and ref, e.g. frames@main or detections@3f2a9c1e')
    .option('--json', 'print machine-readable JSON')
    .action(async (spec: string, opts: { json?: boolean }) => {
      const store = await openDataStore();
      const { parseRepoRef, inspect } = await repos();
      const { repo: name, ref } = parseRepoRef(spec);
      const info = await inspect(store, name, ref);
      if (opts.json) return printJson(info);
      printFields([
        ['repo', info.repo],
        ['commit', info.commit],
        ['parents', info.parents.join(', ') || '(none)'],
        ['tree', info.tree],
        ['time', info.time],
        ['summary', info.summary],
      ]);
      process.stdout.write('provenance\n');
      printProvenance(info.provenance);
      process.stdout.write(`files (${info.files.length})\n`);
      printTable(['PATH', 'BLOB'], info.files.map((f) => [f.path, f.oid]), { indent: '  ', empty: '(none)' });
    });

  repo
    .command('diff')
    .description('compare the files of two refs (of one repo or of two repos)')
    .argument('<a>', 'repo@ref (before)')
    .argument('<b>', 'repo@ref (after)')
    .option('--json', 'print machine-readable JSON')
    .action(async (aSpec: string, bSpec: string, opts: { json?: boolean }) => {
      const store = await openDataStore();
      const { parseRepoRef, resolveRef, diff } = await repos();
      const a = parseRepoRef(aSpec);
      const b = parseRepoRef(bSpec);
      const [ca, cb] = await Promise.all([resolveRef(store, a.repo, a.ref), resolveRef(store, b.repo, b.ref)]);
      const d = await diff(store, a, b);
      if (opts.json) return printJson({ a: { ...a, commit: ca }, b: { ...b, commit: cb }, ...d });
      process.stdout.write(`${repoCommitLabel(a.repo, ca)} -> ${repoCommitLabel(b.repo, cb)}: ${d.added.length} added, ${d.removed.length} removed, ${d.modified.length} modified\n`);
      const lines = [
        ...d.added.map((p) => ({ p, l: `A  ${p}` })),
        ...d.removed.map((p) => ({ p, l: `D  ${p}` })),
        ...d.modified.map((p) => ({ p, l: `M  ${p}` })),
      ].sort((x, y) => (x.p < y.p ? -1 : x.p > y.p ? 1 : 0));
      if (lines.length) process.stdout.write(lines.map((x) => x.l).join('\n') + '\n');
    });

  repo
    .command('fsck')
    .description('check every commit, tree, blob, provenance link and stored object; exit 1 on any problem')
    .option('--json', 'print machine-readable JSON')
    .action(async (opts: { json?: boolean }) => {
      const store = await openDataStore();
      const { fsck } = await repos();
      const report = await fsck(store);
      if (opts.json) printJson({ ok: report.problems.length === 0, ...report });
      else {
        printFields([
          ['repos', report.repos],
          ['commits', report.commits],
          ['blobs', report.blobs],
          ['objects', report.objects],
          ['provenance links', report.provenanceLinks],
          ['problems', report.problems.length],
        ]);
        for (const p of report.problems) process.stdout.write(`PROBLEM ${p.where}: ${p.problem.replace(/\s*\n\s*/g, ' ')}\n`);
        if (report.problems.length === 0) process.stdout.write('ok: no problems found\n');
      }
      if (report.problems.length) fail(`fsck found ${report.problems.length} problem${report.problems.length === 1 ? '' : 's'} (first: ${report.problems[0]?.where})`);
    });

  repo
    .command('gc')
    .description("pack every repo's loose objects (needs git) and remove temp files that writers killed mid-write left (older than an hour); prints bytes before and after")
    .option('--json', 'print machine-readable JSON')
    .action(async (opts: { json?: boolean }) => {
      const store = await openDataStore();
      const { gcAll, sweepTempFiles } = await repos();
      const results = await gcAll(store);
      // Temp files of writers that died mid-write (older than an hour: no live writer's).
      const tempFiles = await sweepTempFiles(store);
      const before = results.reduce((s, r) => s + r.bytesBefore, 0);
      const after = results.reduce((s, r) => s + r.bytesAfter, 0);
      if (opts.json) return printJson({ repos: results, bytesBefore: before, bytesAfter: after, tempFiles });
      if (tempFiles.removed) console.log(`removed ${tempFiles.removed} temp file(s) (${formatBytes(tempFiles.bytes)}) left by writers that stopped mid-write`);
      const row = (name: string, b: number, a: number) => [name, b, a, formatBytes(b), formatBytes(a)];
      printTable(
        ['REPO', 'BYTES BEFORE', 'BYTES AFTER', 'BEFORE', 'AFTER'],
        results.length ? [...results.map((r) => row(r.repo, r.bytesBefore, r.bytesAfter)), row('total', before, after)] : [],
        { empty: `no repos yet in ${store.dataDir}` },
      );
    });
}
