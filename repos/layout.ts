/*
 * How a repo's documents are laid out in its git trees.
 *
 * Every stage names a frame's document `<user>-<device>/<timestamp>.json` (the timestamp compact,
 * `YYYYMMDDTHHMMSSmmmZ`). Kept literally, a camera's folder would hold one entry per frame it ever
 * sent, and every commit would hash, compress and write that whole folder again: a camera at one
 * frame per second makes a 3 MB folder in a day. So repos store such a file two folders deeper, in
 * its day and hour: `<user>-<device>/YYYYMMDD/HH/<timestamp>.json`. A commit then rewrites the
 * hour's folder (at most 3,600 entries at one frame per second), the day's (24) and the camera's
 * (one per day), whatever the camera's age.
 *
 * The sharding is an internal layout: every repo function takes and returns the paths the stages
 * use (`<user>-<device>/<timestamp>.json`); only git itself (`git ls-tree`) shows the day and hour
 * folders. Repos created before this layout (no layout file in the repo) keep their flat folders.
 */

/** A repo's layout: `flat` (paths stored as given) or `time-shards` (see above). */
export type RepoLayout = 'flat' | 'time-shards';

/** A file name starting with a compact timestamp: its day (YYYYMMDD) and hour (HH). */
const TIMESTAMPED = /^(\d{8})T(\d{2})\d{4}/;
const DAY = /^\d{8}$/;
const HOUR = /^\d{2}$/;

/**
 * Where a repo path is stored in git: a timestamped file inside a folder goes into that folder's
 * `YYYYMMDD/HH/` subfolders; anything else (top-level files, names without a timestamp) as is.
 */
export function storedPath(layout: RepoLayout, p: string): string {
  if (layout === 'flat') return p;
  const slash = p.lastIndexOf('/');
  if (slash < 0) return p;
  const name = p.slice(slash + 1);
  const m = TIMESTAMPED.exec(name);
  return m ? `${p.slice(0, slash)}/${m[1]}/${m[2]}/${name}` : p;
}

/**
 * The repo path of a path stored in git: the inverse of {@link storedPath}. A file whose name
 * starts with day D and hour H, stored in `D/H/` under at least one more folder, loses those two.
 */
export function repoPath(layout: RepoLayout, stored: string): string {
  if (layout === 'flat') return stored;
  const segs = stored.split('/');
  if (segs.length < 4) return stored;
  const [day, hour, name] = segs.slice(-3) as [string, string, string];
  if (!DAY.test(day) || !HOUR.test(hour) || !name.startsWith(`${day}T${hour}`) || !TIMESTAMPED.test(name)) return stored;
  return [...segs.slice(0, -3), name].join('/');
}
