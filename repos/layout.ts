/*
 * How a repo's documents are laid out in its git trees.
 *
 * Every stage names a frame's document `<user>-<device>/<timestamp>.json` (the timestamp compact,
 * `YYYYMMDDTHHMMSSmmmZ`). Kept literally, a camera's folder would hold one entry per frame it ever
 * sent, and every commit would hash, compress and write that whole folder again: one frame
 * committed after a day of one frame per second costs about 60 ms, after a week seven times that. So
 * repos store such a file one folder deeper, in its day: `<user>-<device>/YYYYMMDD/<timestamp>.json`.
 * A commit then rewrites the day's folder and the camera's (one entry per day): its cost is bounded
 * by one day of the camera's frames, whatever the camera's age, and a camera that sends a few
 * frames a day pays one small folder a day (an hour level as well would cost two folders per
 * frame for such cameras, which are most motion-triggered ones).
 *
 * The day folders are an internal layout: every repo function takes and returns the paths the
 * stages use (`<user>-<device>/<timestamp>.json`); only git itself (`git ls-tree`) shows them.
 * Repos created before this layout (no layout file in the repo) keep their flat folders.
 */

/** A repo's layout: `flat` (paths stored as given) or `day-folders` (see above). */
export type RepoLayout = 'flat' | 'day-folders';

/** A file name starting with a compact timestamp: its day (YYYYMMDD). */
const TIMESTAMPED = /^(\d{8})T\d{6}/;
const DAY = /^\d{8}$/;

/**
 * Where a repo path is stored in git: a timestamped file inside a folder goes into that folder's
 * `YYYYMMDD/` subfolder; anything else (top-level files, names without a timestamp) as is.
 */
export function storedPath(layout: RepoLayout, p: string): string {
  if (layout === 'flat') return p;
  const slash = p.lastIndexOf('/');
  if (slash < 0) return p;
  const name = p.slice(slash + 1);
  const m = TIMESTAMPED.exec(name);
  return m ? `${p.slice(0, slash)}/${m[1]}/${name}` : p;
}

/**
 * The repo path of a path stored in git: the inverse of {@link storedPath}. A file whose name
 * starts with day D, stored in `D/` under at least one more folder, loses that folder.
 */
export function repoPath(layout: RepoLayout, stored: string): string {
  if (layout === 'flat') return stored;
  const segs = stored.split('/');
  if (segs.length < 3) return stored;
  const [day, name] = segs.slice(-2) as [string, string];
  if (!DAY.test(day) || !name.startsWith(`${day}T`) || !TIMESTAMPED.test(name)) return stored;
  return [...segs.slice(0, -2), name].join('/');
}
