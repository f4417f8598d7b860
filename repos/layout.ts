/*
 * How a repo's documents are laid out in its git trees.
 *
 * Every stage names a frame's document `<user>-<device>/<timestamp>.json` (the timestamp compact,
 * `YYYYMMDDTHHMMSSmmmZ`). Kept literally, a camera's folder would hold one entry per frame it ever
 * sent, and every commit would hash, compress and write that whole folder again. Repos therefore
 * store such a file deeper, in its day and hour: `<user>-<device>/YYYYMMDD/HH/<timestamp>.json`.
 * A commit rewrites the hour's folder, the day's (at most 24 entries) and the camera's (one entry
 * per day): its cost is bounded by one hour of the camera's frames, whatever the camera's age.
 *
 * Hours, not days, because a camera that streams pays for its whole folder on every commit: at one
 * frame a second a day folder reaches 86,400 entries (about 4.7 MB to hash and compress per
 * commit by the evening), an hour folder 3,600. A motion-triggered camera that sends a few frames a
 * day pays one more small folder per commit than with day folders.
 *
 * The folders are an internal layout: every repo function takes and returns the paths the
 * stages use (`<user>-<device>/<timestamp>.json`); only git itself (`git ls-tree`) shows them.
 * Each repo names its layout in a file (store.ts); a repo keeps the layout it was made with:
 * `flat` (made before layouts existed), `day-folders` (`<user>-<device>/YYYYMMDD/<timestamp>.json`,
 * made before hour folders) or `hour-folders` (every repo made now).
 */

/** A repo's layout: `flat` (paths stored as given), `day-folders` or `hour-folders` (see above). */
export type RepoLayout = 'flat' | 'day-folders' | 'hour-folders';

/** The layouts a repo's layout file may name. */
export const REPO_LAYOUTS: readonly RepoLayout[] = ['flat', 'day-folders', 'hour-folders'];

/** A file name starting with a compact timestamp: its day (YYYYMMDD) and hour (HH). */
const TIMESTAMPED = /^(\d{8})T(\d{2})\d{4}/;
const DAY = /^\d{8}$/;
const HOUR = /^\d{2}$/;

/**
 * Where a repo path is stored in git: a timestamped file inside a folder goes into that folder's
 * `YYYYMMDD/` subfolder (`day-folders`) or `YYYYMMDD/HH/` (`hour-folders`); anything else
 * (top-level files, names without a timestamp) as is.
 */
export function storedPath(layout: RepoLayout, p: string): string {
  if (layout === 'flat') return p;
  const slash = p.lastIndexOf('/');
  if (slash < 0) return p;
  const name = p.slice(slash + 1);
  const m = TIMESTAMPED.exec(name);
  if (!m) return p;
  return layout === 'hour-folders' ? `${p.slice(0, slash)}/${m[1]}/${m[2]}/${name}` : `${p.slice(0, slash)}/${m[1]}/${name}`;
}

/**
 * The repo path of a path stored in git: the inverse of {@link storedPath}. A file whose name
 * starts with day D (and hour H), stored in `D/` (`D/H/`) under at least one more folder, loses
 * those folders; any other stored path is read as it is.
 */
export function repoPath(layout: RepoLayout, stored: string): string {
  if (layout === 'flat') return stored;
  const segs = stored.split('/');
  const hours = layout === 'hour-folders';
  if (segs.length < (hours ? 4 : 3)) return stored;
  const name = segs[segs.length - 1]!;
  const day = segs[segs.length - (hours ? 3 : 2)]!;
  const hour = hours ? segs[segs.length - 2]! : null;
  const m = TIMESTAMPED.exec(name);
  if (!m || !DAY.test(day) || m[1] !== day || (hour !== null && (!HOUR.test(hour) || m[2] !== hour))) return stored;
  return [...segs.slice(0, hours ? -3 : -2), name].join('/');
}
