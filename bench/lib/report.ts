/**
 * bench/RESULTS.md: one section per benchmark, each with its own date, command, machine and load,
 * so running `--only x` replaces x's section and keeps the others' latest figures.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { BenchResult, MachineInfo } from './common.js';

/** One invocation of the runner. */
export interface RunRecord {
  command: string;
  quick: boolean;
  startedAt: string;
  durationMs: number;
  machine: MachineInfo;
  results: BenchResult[];
}

/** Section order in RESULTS.md: every benchmark in bench/run.ts's BENCHMARKS (a name missing here is not written). */
const ORDER = ['pipeline-vs-detector', 'ingest-api', 'rules-replay', 'reports-at-scale', 'storage', 'scale-out', 'commit-growth'];

const start = (name: string) => `<!-- bench:${name}:start -->`;
const end = (name: string) => `<!-- bench:${name}:end -->`;

function machineLine(m: MachineInfo): string {
  return `${m.cores} cores (${m.cpuModel}), ${m.memoryGiB} GiB RAM, Node ${m.node}, ${m.platform}; model ${m.model.name} sha256 \`${m.model.sha256}\` (${m.model.config}), ${m.intraOpThreads} intra-op thread(s)${m.dataFileSystem ? `; data folders on ${m.dataFileSystem}` : ''}`;
}

function section(r: BenchResult, run: RunRecord): string {
  const lines = [
    start(r.name),
    `## ${r.name}: ${r.title}`,
    '',
    `- **Result:** ${r.summary}`,
    `- Run ${r.startedAt} with \`${run.command}\`${run.quick ? ' (quick)' : ''}, ${Math.round(r.durationMs / 100) / 10} s`,
    `- Machine: ${machineLine(run.machine)}`,
    `- Load average (1/5/15 min): ${r.load.before.join(' / ')} before, ${r.load.after.join(' / ')} after`,
    '',
  ];
  if (r.targets.length) {
    lines.push('| target | goal | measured | |', '| --- | --- | --- | --- |');
    for (const t of r.targets) lines.push(`| ${t.name} | ${t.target} | ${t.value ?? 'n/a'} ${t.unit} | ${t.met === null ? 'not measured' : t.met ? 'met' : '**missed**'} |`);
    lines.push('');
  }
  if (r.markdown?.length) lines.push(...r.markdown, '');
  if (r.notes.length) {
    lines.push('Notes:', '');
    for (const n of r.notes) lines.push(`- ${n}`);
    lines.push('');
  }
  if (r.error) lines.push('```', r.error.split('\n').slice(0, 8).join('\n'), '```', '');
  lines.push(end(r.name));
  return lines.join('\n');
}

/** Rewrites the results file: this run's sections replace the previous ones, other sections stay. */
export function writeResultsMd(file: string, run: RunRecord): void {
  const old = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const sections = new Map<string, string>();
  for (const name of ORDER) {
    const a = old.indexOf(start(name));
    const b = old.indexOf(end(name));
    if (a >= 0 && b > a) sections.set(name, old.slice(a, b + end(name).length));
  }
  for (const r of run.results) sections.set(r.name, section(r, run));
  const summary = ORDER.filter((n) => sections.has(n)).map((n) => {
    const text = sections.get(n)!;
    const m = /- \*\*Result:\*\* (.*)/.exec(text);
    return `| ${n} | ${m?.[1] ?? ''} |`;
  });
  const head = [
    '# Vigil benchmarks: latest figures',
    '',
    'Written by `npm run bench` (bench/run.ts); every section says when, with which command, on which machine',
    'and under which load it was measured. Full results of each run: `bench/out/results-<timestamp>.json` (git-ignored).',
    '',
    '```sh',
    'npm run bench                       # everything (about 14 minutes; the first run also builds cached data)',
    'npm run bench -- --quick            # smoke run, about 2 minutes: figures not judged, this file left as is',
    'npm run bench -- --only rules-replay,storage --json /tmp/bench.json',
    '```',
    '',
    `Latest run: ${run.startedAt}, \`${run.command}\`; machine: ${machineLine(run.machine)}; load ${run.machine.loadAvg.join(' / ')} at start.`,
    '',
    '| benchmark | latest result |',
    '| --- | --- |',
    ...summary,
    '',
  ];
  const body = ORDER.filter((n) => sections.has(n)).map((n) => sections.get(n)!);
  writeFileSync(file, head.join('\n') + '\n' + body.join('\n\n') + '\n');
}
