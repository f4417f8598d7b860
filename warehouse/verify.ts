/**
 * `verifyWarehouse`: the full integrity check (`vigil warehouse verify`), kept out of
 * `openWarehouse` so that opening stays cheap. Re-hashes every live file against the manifest,
 * checks Parquet footers (and optionally row counts), and walks the folders for files the manifest
 * does not list: strays, interrupted appends, files a compaction replaced but has not removed yet,
 * and outputs of compactions that never committed.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { VigilError } from '../lib/errors.js';
import { mapLimit } from '../lib/mapLimit.js';
import { memoryDuckDB } from './instance.js';
import { duckMessage, sqlString } from './duck.js';
import {
  COMPACTED_LOG,
  absolutePath,
  hashFile,
  isLayoutPath,
  parquetDefect,
  parseLayoutPath,
  readCompactedLog,
  listTableFiles,
  readManifest,
  resolveRoot,
  type ManifestEntry,
} from './files.js';
import { JOURNAL_DIR, readJournals } from './journal.js';
import { TABLES, TABLE_NAMES, type TableName } from './schema.js';

/** Options of {@link verifyWarehouse}. */
export interface VerifyOptions {
  /** Re-hash every live file (default true); false checks existence, size and footers only. */
  hashes?: boolean;
  /** Also compare each live file's Parquet row count with the manifest (reads every footer with DuckDB; default false). */
  rows?: boolean;
}

/**
 * What is wrong with a file. Errors: `missing`, `changed` (size or sha256 differs from the
 * manifest), `corrupt` (not a whole Parquet file, wrong row count, unreadable log), `stray` (not a
 * warehouse path). Pending work, harmless to readers (they only see what the manifest lists):
 * `unlisted` (an append interrupted before its manifest line; re-running its batch records it),
 * `replaced` (merged into a compacted file, not removed yet), `uncommitted` (written by a compaction
 * that never committed), `interrupted` (a compaction journal: the next `compactWarehouse` finishes
 * or undoes it).
 */
export type ProblemKind = 'missing' | 'changed' | 'corrupt' | 'stray' | 'unlisted' | 'replaced' | 'uncommitted' | 'interrupted';

/** Problem kinds that are errors (the others are pending work). */
export const ERROR_KINDS: ReadonlySet<ProblemKind> = new Set(['missing', 'changed', 'corrupt', 'stray']);

/** One finding. */
export interface VerifyProblem {
  kind: ProblemKind;
  /** Relative path inside the warehouse. */
  file: string;
  /** One line naming the absolute path and what is wrong. */
  message: string;
}

/** Per-table totals of the live files. */
export interface TableTotals {
  files: number;
  compacted: number;
  rows: number;
  bytes: number;
}

/** Result of {@link verifyWarehouse}. */
export interface VerifyResult {
  root: string;
  /** Live files checked. */
  files: number;
  rows: number;
  bytes: number;
  hashed: boolean;
  rowsChecked: boolean;
  tables: Record<TableName, TableTotals>;
  /** Everything found, errors first. */
  problems: VerifyProblem[];
  /** True when no problem is an error. */
  ok: boolean;
}

/**
 * Checks the whole warehouse at `root` and returns every problem found (it does not stop at the
 * first one). Read-only.
 * @throws VigilError E_CORRUPT for an unreadable manifest line; E_CONFIG for a bad root.
 */
export async function verifyWarehouse(root: string, opts: VerifyOptions = {}): Promise<VerifyResult> {
  const abs = resolveRoot(root);
  const hashes = opts.hashes ?? true;
  const manifest = await readManifest(abs);
  const problems: VerifyProblem[] = [];
  const add = (kind: ProblemKind, file: string, message: string): void => void problems.push({ kind, file, message });
  const tables = Object.fromEntries(TABLE_NAMES.map((t) => [t, { files: 0, compacted: 0, rows: 0, bytes: 0 }])) as Record<TableName, TableTotals>;

  await mapLimit([...manifest.values()], 8, async (entry) => {
    const t = tables[entry.table];
    t.files++;
    t.rows += entry.rows;
    t.bytes += entry.bytes;
    if (parseLayoutPath(entry.file)?.kind === 'compacted') t.compacted++;
    const problem = await checkEntry(abs, entry, { footer: true, hash: hashes });
    if (problem !== null) problems.push(problem);
  });
  if (opts.rows) await checkRows(abs, [...manifest.values()], add);

  // Files on disk the manifest does not list.
  const journals = await readJournals(abs);
  const journalOutputs = new Set(journals.flatMap((j) => [j.output]));
  for (const j of journals) add('interrupted', `${JOURNAL_DIR}/${j.id}.json`, `compaction ${j.id} of ${j.table} ${j.first}..${j.last} was interrupted; the next \`vigil warehouse compact\` finishes or undoes it`);
  const replaced = new Map<string, string>(); // rel -> compaction id, from the day logs
  const pending: { table: TableName; rel: string; file: string }[] = [];
  for (const table of TABLE_NAMES) {
    const byUser = TABLES[table].userColumn !== null;
    for (const rel of await listTableFiles(abs, table)) {
      const file = absolutePath(abs, rel);
      const base = rel.slice(rel.lastIndexOf('/') + 1);
      if (base.startsWith('.')) continue; // a writer's temporary file
      if (base === COMPACTED_LOG) {
        const day = /\/day=(\d{4}-\d{2}-\d{2})\/_compacted\.jsonl$/.exec(rel)?.[1];
        if (day === undefined || rel !== `${table}/day=${day}/${COMPACTED_LOG}`) {
          add('stray', rel, `unexpected file ${file}: not a ${table} partition path`);
          continue;
        }
        try {
          const lines = await readCompactedLog(abs, table, day);
          const aborted = new Set(lines.filter((l) => l.status === 'aborted').map((l) => l.compaction));
          for (const l of lines) if (l.status === 'prepared' && !aborted.has(l.compaction)) for (const e of l.replaced) replaced.set(e.file, l.compaction);
        } catch (err) {
          add('corrupt', rel, (err as Error).message);
        }
        continue;
      }
      if (manifest.has(rel)) continue;
      if (!base.endsWith('.parquet') || !isLayoutPath(table, rel, byUser)) {
        add('stray', rel, `unexpected file ${file}: not a ${table} partition path`);
        continue;
      }
      const defect = await parquetDefect(file);
      if (defect !== null) {
        add('corrupt', rel, `corrupt parquet file ${file}: ${defect} (not in the manifest)`);
        continue;
      }
      pending.push({ table, rel, file });
    }
  }
  // Classified once every day log has been read.
  for (const p of pending.splice(0)) {
    const layout = parseLayoutPath(p.rel);
    if (layout?.kind === 'compacted') {
      add('uncommitted', p.rel, `${p.file} was written by a compaction that did not commit${journalOutputs.has(p.rel) ? ' (its journal is pending)' : ''}; readers ignore it and \`vigil warehouse compact\` removes it`);
    } else if (replaced.has(p.rel)) {
      add('replaced', p.rel, `${p.file} was merged by compaction ${replaced.get(p.rel)} and not removed yet; readers ignore it and \`vigil warehouse compact\` removes it`);
    } else {
      add('unlisted', p.rel, `${p.file} is not in the manifest (an append interrupted before recording it; re-running its batch records it); readers ignore it`);
    }
  }

  problems.sort((a, b) => Number(ERROR_KINDS.has(b.kind)) - Number(ERROR_KINDS.has(a.kind)) || (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
  const totals = Object.values(tables);
  return {
    root: abs,
    files: manifest.size,
    rows: totals.reduce((n, t) => n + t.rows, 0),
    bytes: totals.reduce((n, t) => n + t.bytes, 0),
    hashed: hashes,
    rowsChecked: opts.rows ?? false,
    tables,
    problems,
    ok: !problems.some((p) => ERROR_KINDS.has(p.kind)),
  };
}

/**
 * The problem of one live file, or null: it exists with the recorded size; with `footer`, it has
 * Parquet magic and a footer that fits; with `hash`, its sha256 is the recorded one.
 */
export async function checkEntry(root: string, entry: ManifestEntry, check: { footer: boolean; hash: boolean }): Promise<VerifyProblem | null> {
  const file = absolutePath(root, entry.file);
  let size: number;
  try {
    size = (await fs.stat(file)).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'missing', file: entry.file, message: `missing ${file} (listed in the warehouse manifest)` };
    return { kind: 'missing', file: entry.file, message: `cannot stat ${file}: ${(err as Error).message}` };
  }
  if (size !== entry.bytes) return { kind: 'changed', file: entry.file, message: `changed ${file}: ${size} bytes, manifest says ${entry.bytes}` };
  if (check.footer) {
    const defect = await parquetDefect(file);
    if (defect !== null) return { kind: 'corrupt', file: entry.file, message: `corrupt parquet file ${file}: ${defect}` };
  }
  if (check.hash && (await hashFile(file)).sha256 !== entry.sha256) return { kind: 'changed', file: entry.file, message: `changed ${file}: sha256 differs from the warehouse manifest` };
  return null;
}

/** Compares each file's Parquet row count (footer) with the manifest, a thousand files per query. */
async function checkRows(root: string, entries: ManifestEntry[], add: (kind: ProblemKind, file: string, message: string) => void): Promise<void> {
  const instance = await memoryDuckDB();
  const con = await instance.connect();
  try {
    for (let i = 0; i < entries.length; i += 1000) {
      const chunk = entries.slice(i, i + 1000);
      const byPath = new Map(chunk.map((e) => [absolutePath(root, e.file), e]));
      let rows: [string, bigint][];
      try {
        const r = await con.runAndReadAll(`SELECT file_name, num_rows::BIGINT FROM parquet_file_metadata([${[...byPath.keys()].map(sqlString).join(', ')}])`);
        rows = r.getRows() as [string, bigint][];
      } catch (err) {
        // One unreadable file fails the whole query: check them one by one to name it.
        for (const [file, e] of byPath) {
          try {
            const r = await con.runAndReadAll(`SELECT num_rows::BIGINT FROM parquet_file_metadata(${sqlString(file)})`);
            const n = Number(r.getRows()[0]?.[0] ?? -1);
            if (n !== e.rows) add('corrupt', e.file, `corrupt parquet file ${file}: ${n} rows, manifest says ${e.rows}`);
          } catch (err2) {
            add('corrupt', e.file, `corrupt parquet file ${file}: ${duckMessage(err2)}`);
          }
        }
        void err;
        continue;
      }
      for (const [file, n] of rows) {
        const e = byPath.get(file);
        if (e !== undefined && Number(n) !== e.rows) add('corrupt', e.file, `corrupt parquet file ${file}: ${n} rows, manifest says ${e.rows}`);
      }
    }
  } finally {
    con.closeSync();
    instance.closeSync();
  }
}
