/*
 * How a repo's documents are laid out in its git trees.
 *
 * Every stage names a frame's document `<user>-<device>/<timestamp>.json` (the timestamp compact,
 * `YYYYMMDDTHHMMSSmmmZ`). Kept literally, a camera's folder would hold one entry per frame it ever
 * sent, and every commit would hash, compress and write that whole folder again. Repos therefore
 * store such a file deeper, in its day, hour and minute:
 * `<user>-<device>/YYYYMMDD/HH/MM/<timestamp>.json`. A commit rewrites the minute's folder, the
 * hour's (at most 60 entries), the day's (at most 24) and the camera's (one entry per day): its
 * cost is bounded by one minute of the camera's frames, whatever the camera's age.
 *
 * Minutes, not hours or days, because a camera that streams pays for its whole folder on every
 * commit: at one frame a second a day folder reaches 86,400 entries (about 4.7 MB to hash and
 * compress per commit by the evening), an hour folder 3,600 (about 250 KB), a minute folder 60
 * (about 4 KB). With a few hundred such cameras every group commit holds frames of several of
 * them, so that cost is paid several times per commit, a hundred commits a second. A
 * motion-triggered camera that sends a few frames a day pays two more small folders per commit
 * than with day folders.
 *
 * The folders are an internal layout: every repo function takes and returns the paths the
 * stages use (`<user>-<device>/<timestamp>.json`); only git itself (`git ls-tree`) shows them.
 * Each repo names its layout in a file (store.ts); a repo keeps the layout it was made with:
 * `flat` (made before layouts existed), `day-folders` (`<user>-<device>/YYYYMMDD/<timestamp>.json`),
 * `hour-folders` (`<user>-<device>/YYYYMMDD/HH/<timestamp>.json`), both made by earlier versions,
 * or `minute-folders` (every repo made now).
 */

/** A repo's layout: `flat` (paths stored as given), `day-folders`, `hour-folders` or `minute-folders` (see above). */
export type RepoLayout = 'flat' | 'day-folders' | 'hour-folders' | 'minute-folders';

/** The layouts a repo's layout file may name. */
export const REPO_LAYOUTS: readonly RepoLayout[] = ['flat', 'day-folders', 'hour-folders', 'minute-folders'];

/** A file name starting with a compact timestamp: its day (YYYYMMDD), hour (HH) and minute (MM). */
const TIMESTAMPED = /^(\d{8})T(\d{2})(\d{2})\d{2}/;
/** How many folder levels (day, hour, minute) each layout puts a timestamped file under. */
const DEPTH: Record<RepoLayout, number> = { flat: 0, 'day-folders': 1, 'hour-folders': 2, 'minute-folders': 3 };

/** The folders a timestamped file name goes under in a layout, or null for a name without a timestamp. */
function timeFolders(layout: RepoLayout, name: string): string[] | null {
  const m = TIMESTAMPED.exec(name);
  return m ? m.slice(1, 1 + DEPTH[layout]) : null;
}

/**
 * Where a repo path is stored in git: a timestamped file inside a folder goes into that folder's
 * `YYYYMMDD/` subfolder (`day-folders`), `YYYYMMDD/HH/` (`hour-folders`) or `YYYYMMDD/HH/MM/`
 * (`minute-folders`); anything else (top-level files, names without a timestamp) as is.
 */
export function storedPath(layout: RepoLayout, p: string): string {
  if (layout === 'flat') return p;
  const slash = p.lastIndexOf('/');
  if (slash < 0) return p;
  const name = p.slice(slash + 1);
  const folders = timeFolders(layout, name);
  return folders ? `${p.slice(0, slash)}/${folders.join('/')}/${name}` : p;
}

/**
 * The repo path of a path stored in git: the inverse of {@link storedPath}. A file whose name
 * starts with a timestamp, stored in exactly that timestamp's folders under at least one more
 * folder, loses those folders; any other stored path is read as it is.
 */
export function repoPath(layout: RepoLayout, stored: string): string {
  const depth = DEPTH[layout];
  if (depth === 0) return stored;
  const segs = stored.split('/');
  if (segs.length < depth + 2) return stored;
  const name = segs[segs.length - 1]!;
  const folders = timeFolders(layout, name);
  if (!folders || folders.some((f, i) => segs[segs.length - 1 - depth + i] !== f)) return stored;
  return [...segs.slice(0, -1 - depth), name].join('/');
}
