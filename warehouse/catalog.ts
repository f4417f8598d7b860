/**
 * The catalog: the live files of the warehouse as the manifest lists them, kept current cheaply
 * (the new tail of the manifest when it only grew, all of it after compaction rewrote it), and
 * the SQL relation over an explicit list of them. Readers never glob the folders: a file is
 * visible exactly when the manifest lists it, so the originals and the compacted file that
 * replaced them are never both read.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { VigilError } from '../lib/errors.js';
import { sqlIdent, sqlString } from './duck.js';
import { MANIFEST, absolutePath, applyManifestLines, parseLayoutPath, type ManifestEntry } from './files.js';
import { TABLES, TABLE_NAMES, type TableName } from './schema.js';

/** One live file. */
export interface CatalogFile {
  /** Relative path, `/`-separated. */
  rel: string;
  table: TableName;
  kind: 'batch' | 'compacted';
  /** First and last UTC day of its rows. */
  first: string;
  last: string;
  /** `user=` partition of a batch file; null for compacted files and tables without a user. */
  user: string | null;
  entry: ManifestEntry;
}

/** Days `[from, to]` (inclusive, `YYYY-MM-DD`); a missing bound is open. */
export interface DayRange {
  from?: string;
  to?: string;
}

/** The live files of a warehouse, refreshed from its manifest. */
export class Catalog {
  /** Absolute warehouse root. */
  readonly root: string;
  /** Bumped whenever the live set changes. */
  version = 0;
  private entries = new Map<string, ManifestEntry>();
  private ino = -1;
  /** Birth time: a rewritten manifest is a new file even if the file system reuses an inode number. */
  private born = -1;
  private size = -1;
  private mtimeMs = -1;
  /** Bytes of the manifest applied so far (up to the last complete line). */
  private consumed = 0;
  private lines = 0;
  private byTable: Map<TableName, CatalogFile[]> | null = null;

  constructor(root: string) {
    this.root = root;
  }

  /**
   * Brings the catalog up to date with the manifest: nothing when it is unchanged (one stat), the
   * new lines when it only grew (appends), all of it when it was replaced (compaction) or `full`.
   * @returns true when the live set changed.
   * @throws VigilError E_CORRUPT for an unreadable manifest line; E_STORAGE for I/O errors.
   */
  async refresh(full = false): Promise<boolean> {
    const file = path.join(this.root, MANIFEST);
    let fh: fs.FileHandle;
    try {
      fh = await fs.open(file, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new VigilError('E_STORAGE', `cannot read ${file}: ${(err as Error).message}`);
      const had = this.entries.size > 0;
      this.reset();
      this.ino = this.born = this.size = this.mtimeMs = -1;
      if (had) this.changed();
      return had;
    }
    try {
      const st = await fh.stat();
      const same = st.ino === this.ino && st.birthtimeMs === this.born;
      if (!full && same && st.size === this.size && st.mtimeMs === this.mtimeMs) return false;
      let changed = false;
      if (full || !same || st.size < this.consumed) {
        changed = this.entries.size > 0;
        this.reset();
      }
      this.ino = st.ino;
      this.born = st.birthtimeMs;
      this.size = st.size;
      this.mtimeMs = st.mtimeMs;
      const length = st.size - this.consumed;
      if (length > 0) {
        const buf = Buffer.alloc(length);
        let got = 0;
        while (got < length) {
          const { bytesRead } = await fh.read(buf, got, length - got, this.consumed + got);
          if (bytesRead === 0) break;
          got += bytesRead;
        }
        const end = buf.subarray(0, got).lastIndexOf(0x0a);
        if (end >= 0) {
          const lines = buf.toString('utf8', 0, end).split('\n');
          applyManifestLines(this.root, lines, this.lines + 1, this.entries);
          this.lines += lines.length;
          this.consumed += end + 1;
          changed = true;
        }
      }
      if (changed) this.changed();
      return changed;
    } finally {
      await fh.close();
    }
  }

  private reset(): void {
    this.entries = new Map();
    this.consumed = 0;
    this.lines = 0;
  }

  private changed(): void {
    this.version++;
    this.byTable = null;
  }

  /** Live manifest entries, by relative path. */
  get live(): ReadonlyMap<string, ManifestEntry> {
    return this.entries;
  }

  /** Live files of `table`, sorted by path. */
  files(table: TableName): readonly CatalogFile[] {
    if (this.byTable === null) {
      const m = new Map<TableName, CatalogFile[]>(TABLE_NAMES.map((t) => [t, []]));
      for (const [rel, entry] of this.entries) {
        const p = parseLayoutPath(rel);
        if (p === null) continue; // applyManifestLines refuses these
        m.get(entry.table)?.push({ rel, table: entry.table, kind: p.kind, first: p.first, last: p.last, user: p.user, entry });
      }
      for (const list of m.values()) list.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
      this.byTable = m;
    }
    return this.byTable.get(table) ?? [];
  }

  /** Live files of `table` holding rows of a day in `days` (all of them without a range). */
  select(table: TableName, days?: DayRange): CatalogFile[] {
    return this.files(table).filter((f) => (days?.from === undefined || f.last >= days.from) && (days?.to === undefined || f.first <= days.to));
  }

  /** Number of live files per table. */
  counts(): Record<TableName, number> {
    return Object.fromEntries(TABLE_NAMES.map((t) => [t, this.files(t).length])) as Record<TableName, number>;
  }
}

/**
 * The SELECT over exactly `files` of `table`: its columns in order, then `day` (and `user` for
 * tables partitioned by user). Batch files take `day`/`user` from their partition folders (hive
 * partitioning); compacted files store `day` as a column and `user` is their `user_id`. No glob and
 * no `union_by_name` (which would open every file to read its schema before any pruning). An empty
 * list is an empty relation with the same columns.
 */
export function relationSql(root: string, table: TableName, files: readonly CatalogFile[]): string {
  const def = TABLES[table];
  const cols = Object.keys(def.columns).map(sqlIdent).join(', ');
  const list = (fs: readonly CatalogFile[]) => `[${fs.map((f) => sqlString(absolutePath(root, f.rel))).join(', ')}]`;
  const batch = files.filter((f) => f.kind === 'batch');
  const compacted = files.filter((f) => f.kind === 'compacted');
  const parts: string[] = [];
  if (batch.length > 0) {
    const hive = def.userColumn === null ? `{'day': VARCHAR}` : `{'day': VARCHAR, 'user': VARCHAR}`;
    parts.push(`SELECT ${cols}, "day"${def.userColumn === null ? '' : ', "user"'} FROM read_parquet(${list(batch)}, hive_partitioning = true, hive_types = ${hive})`);
  }
  if (compacted.length > 0) {
    parts.push(`SELECT ${cols}, "day"${def.userColumn === null ? '' : `, ${sqlIdent(def.userColumn)} AS "user"`} FROM read_parquet(${list(compacted)}, hive_partitioning = false)`);
  }
  if (parts.length === 0) {
    const partitions: [string, string][] = def.userColumn === null ? [['day', 'VARCHAR']] : [['day', 'VARCHAR'], ['user', 'VARCHAR']];
    const nulls = [...Object.entries(def.columns), ...partitions].map(([n, t]) => `CAST(NULL AS ${t}) AS ${sqlIdent(n)}`);
    return `SELECT ${nulls.join(', ')} WHERE false`;
  }
  return parts.join(' UNION ALL ');
}
