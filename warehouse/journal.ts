/**
 * Compaction journals: `<root>/_compacting/<id>.json`, written (atomically, fsynced) before a
 * compaction creates its output and removed once it has fully finished. A journal left behind names
 * everything recovery needs: the output, its temporary name and the inputs.
 */
import os from 'node:os';
import fs from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { VigilError } from '../lib/errors.js';
import { fsyncPath } from './files.js';
import { TableNameSchema } from './schema.js';

/** Folder of the journals, at the warehouse root. */
export const JOURNAL_DIR = '_compacting';

const Day = z.string().regex(/^\d{4}-\d{2}-\d{2}$/);

/** One compaction in progress. */
export const JournalSchema = z.object({
  id: z.string().regex(/^[0-9a-f]{8,64}$/),
  table: TableNameSchema,
  first: Day,
  last: Day,
  /** Relative path of the compacted file (not live until the manifest lists it). */
  output: z.string().min(1),
  /** Relative path of its temporary name while being written. */
  tmp: z.string().min(1),
  /** Relative paths of the files it replaces. */
  inputs: z.array(z.string().min(1)),
  /** UTC days whose `_compacted.jsonl` it writes to. */
  days: z.array(Day),
  pid: z.int(),
  host: z.string(),
  started_at: z.string(),
});
export type Journal = z.infer<typeof JournalSchema>;

/** Writes a journal: temporary file, fsync, rename, fsync of the folder. */
export async function writeJournal(root: string, j: Omit<Journal, 'pid' | 'host' | 'started_at'>): Promise<Journal> {
  const journal: Journal = { ...j, pid: process.pid, host: os.hostname(), started_at: new Date().toISOString() };
  const dir = path.join(root, JOURNAL_DIR);
  await fs.mkdir(dir, { recursive: true });
  const file = path.join(dir, `${j.id}.json`);
  const tmp = path.join(dir, `.${j.id}.json.tmp`);
  const fh = await fs.open(tmp, 'w');
  try {
    await fh.writeFile(JSON.stringify(journal));
    await fh.sync();
  } finally {
    await fh.close();
  }
  await fs.rename(tmp, file);
  await fsyncPath(dir);
  return journal;
}

/**
 * Every journal left in the warehouse (leftover temporary journal files are not journals: the
 * compaction that wrote them had not started writing anything else).
 * @throws VigilError E_CORRUPT naming an unreadable journal.
 */
export async function readJournals(root: string): Promise<Journal[]> {
  const dir = path.join(root, JOURNAL_DIR);
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new VigilError('E_STORAGE', `cannot list ${dir}: ${(err as Error).message}`);
  }
  const out: Journal[] = [];
  for (const name of names.sort()) {
    if (!name.endsWith('.json') || name.startsWith('.')) continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(await fs.readFile(path.join(dir, name), 'utf8'));
    } catch {
      parsed = undefined;
    }
    const r = JournalSchema.safeParse(parsed);
    if (!r.success || `${r.data.id}.json` !== name) throw new VigilError('E_CORRUPT', `unreadable compaction journal ${path.join(dir, name)}`, { file: `${JOURNAL_DIR}/${name}` });
    out.push(r.data);
  }
  return out;
}

/** Removes a finished journal (and leftover temporary journal files), then fsyncs the folder. */
export async function removeJournal(root: string, id: string): Promise<void> {
  const dir = path.join(root, JOURNAL_DIR);
  await fs.rm(path.join(dir, `${id}.json`), { force: true });
  await fs.rm(path.join(dir, `.${id}.json.tmp`), { force: true });
  await fsyncPath(dir);
}

/** Removes temporary journal files left by a compaction that died before its journal was complete. */
export async function removeJournalTemps(root: string): Promise<void> {
  const dir = path.join(root, JOURNAL_DIR);
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch {
    return;
  }
  for (const n of names) if (n.startsWith('.') && n.endsWith('.json.tmp')) await fs.rm(path.join(dir, n), { force: true });
}
