/**
 * Reports over the warehouse: the Daily Threat Report per user, threat counts per user over a
 * date range (admin bar chart), every record of one frame, and table / CSV formatters.
 *
 * Every report reads through `scopedQuery`: each table is a relation over exactly the live files
 * whose days overlap the days asked for (from the manifest, no glob), so DuckDB never opens the
 * other files, whatever the size of the warehouse. Inside a compacted file (sorted, see
 * `SORT_KEYS`) the filters on `day`, `user_id`, `frame_id` and `alert_id` skip row groups by their
 * min/max statistics.
 */
import { z } from 'zod';
import { VigilError } from '../lib/errors.js';
import { IdSchema, Sha256Schema } from '../lib/schemas.js';
import { sqlString, type JsonRow, type JsonValue } from './duck.js';
import { scopedQuery, type Warehouse } from './open.js';
import { addDays, dateToDays, zoneDayStart } from './time.js';

const CountSchema = z.int().min(0);
const ClassCountSchema = z.object({ class: z.string(), count: CountSchema });
const DeviceCountSchema = z.object({ deviceId: z.string(), count: CountSchema });

/** The Daily Threat Report of one user. */
export const DailyUserReportSchema = z.object({
  userId: z.string(),
  /** Frames the validate stage saw, by status. */
  frames: z.object({ processed: CountSchema, standardized: CountSchema, invalid: CountSchema, cameraFaults: CountSchema }),
  /** Invalid frames: counts per reason, and the frames themselves (at most `invalidLimit`, oldest first). */
  invalid: z.object({
    byReason: z.array(z.object({ reason: z.string(), count: CountSchema })),
    frames: z.array(z.object({ frameId: z.string(), tag: z.string(), deviceId: z.string(), capturedAt: z.string(), reason: z.string(), cameraFault: z.boolean() })),
    truncated: z.boolean(),
  }),
  /** Frames showing a broken or covered camera, per device. */
  cameraFaults: z.array(z.object({ deviceId: z.string(), count: CountSchema, firstAt: z.string(), lastAt: z.string() })),
  /** Objects detected. */
  detections: z.object({ objects: CountSchema, byClass: z.array(ClassCountSchema) }),
  /**
   * Threats (one per object-rule match): total, distinct frames (by tag: identical bytes from two cameras are two frames), per class, per device, and per
   * hour (24 entries, local hour in the report's `tz`, else the device's local hour).
   */
  threats: z.object({
    total: CountSchema,
    frames: CountSchema,
    byClass: z.array(ClassCountSchema),
    byDevice: z.array(DeviceCountSchema),
    byHour: z.array(z.object({ hour: z.int().min(0).max(23), count: CountSchema })),
  }),
  /** Safe frames (aggregated `non_matches` whose UTC hour starts in the window) and their objects. */
  safe: z.object({ frames: CountSchema, objects: CountSchema }),
  /**
   * Alerts created in the window: `total` of the live ones = delivered + failed + unknown (sent,
   * no answer, not retried) + suppressed + outbox; `recorded` apart: what reprocessing under other
   * rules recorded (never sent).
   */
  alerts: z.object({ total: CountSchema, delivered: CountSchema, failed: CountSchema, unknown: CountSchema, suppressed: CountSchema, outbox: CountSchema, recorded: CountSchema }),
  /**
   * Delivery attempts of the day's alerts, by outcome: `delivered`
   * counts providers that accepted one; `outbox`, those kept in the outbox (no credentials:
   * nothing sent); `unknown`, requests sent without an answer and not retried.
   */
  deliveries: z.object({ attempts: CountSchema, delivered: CountSchema, outbox: CountSchema, retries: CountSchema, failed: CountSchema, unknown: CountSchema, suppressed: CountSchema }),
});
export type DailyUserReport = z.infer<typeof DailyUserReportSchema>;

/** The Daily Threat Report. */
export const DailyReportSchema = z.object({
  date: z.string(),
  /** Zone the day and hours are taken in; null = the UTC day, hours in each device's zone. */
  tz: z.string().nullable(),
  /** The window as UTC instants, `[from, to)`. */
  from: z.string(),
  to: z.string(),
  /** One entry per user with records that day (exactly the asked user when `user` is given), by user id. */
  users: z.array(DailyUserReportSchema),
});
export type DailyReport = z.infer<typeof DailyReportSchema>;

/** Options of {@link dailyReport}. */
export interface DailyReportOptions {
  /** The day, `YYYY-MM-DD`: the UTC day, or the day in `tz` when given. */
  date: string;
  /** Only this user. */
  user?: string;
  /** IANA zone: the day and the hours are taken in it. */
  tz?: string;
  /** At most this many invalid frames listed per user (default 100). */
  invalidLimit?: number;
}

/** One user's totals in {@link usersReport}. */
export const UserTotalsSchema = z.object({
  userId: z.string(),
  frames: CountSchema,
  invalid: CountSchema,
  cameraFaults: CountSchema,
  threats: CountSchema,
  threatFrames: CountSchema,
  alerts: CountSchema,
  delivered: CountSchema,
});
export type UserTotals = z.infer<typeof UserTotalsSchema>;

/** Result of {@link usersReport}: per user, most threats first. */
export const UsersReportSchema = z.object({ from: z.string(), to: z.string(), users: z.array(UserTotalsSchema) });
export type UsersReport = z.infer<typeof UsersReportSchema>;

/** Every record of one frame, per table. */
export interface FrameRecords {
  frameId: string;
  frames: JsonRow[];
  invalidFrames: JsonRow[];
  detections: JsonRow[];
  threats: JsonRow[];
  /** The `non_matches` aggregate(s) that counted this frame's copies without threats (the same bytes can come from several cameras or times). */
  nonMatches: JsonRow[];
  alerts: JsonRow[];
  deliveries: JsonRow[];
  /** Rule-set versions its threats were decided with. */
  ruleVersions: JsonRow[];
}

function checkDate(name: string, date: unknown): string {
  if (typeof date !== 'string') throw new VigilError('E_BAD_INPUT', `${name} must be a date (YYYY-MM-DD)`);
  dateToDays(date);
  return date;
}

function checkUser(user: unknown): string {
  const r = IdSchema.safeParse(user);
  if (!r.success) throw new VigilError('E_BAD_INPUT', `user ${JSON.stringify(user)} is invalid: ${r.error.issues[0]?.message ?? ''}`);
  return r.data;
}

function checkTz(tz: unknown): string {
  if (typeof tz !== 'string' || tz === '' || !/^[A-Za-z0-9_+\-/]{1,64}$/.test(tz)) throw new VigilError('E_BAD_INPUT', `unknown time zone ${JSON.stringify(tz)}`);
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
  } catch {
    throw new VigilError('E_BAD_INPUT', `unknown time zone ${JSON.stringify(tz)}`);
  }
  return tz;
}

const num = (v: JsonValue | undefined): number => (typeof v === 'number' ? v : v === null || v === undefined ? 0 : Number(v));
const str = (v: JsonValue | undefined): string => (v === null || v === undefined ? '' : String(v));
const inList = (values: readonly string[]): string => values.map(sqlString).join(', ');

/** UTC days `[first..last]`. */
function dayRange(first: string, last: string): string[] {
  const out: string[] = [];
  for (let d = first; d <= last; d = addDays(d, 1)) out.push(d);
  return out;
}

/**
 * The Daily Threat Report, per user: frames processed, invalid frames with their reasons, camera
 * faults, objects detected, threats by class / device / hour, safe frames, alerts by status and
 * their delivery attempts.
 *
 * Without `tz` the day is the UTC day `date` (exactly one `day` partition) and threats are
 * bucketed by each device's local hour; with `tz` the day is `date` in that zone (its UTC
 * instants span at most two `day` partitions, both pruned to) and hours are local to `tz`.
 * Frames, detections and threats are selected by capture time, alerts by creation time.
 *
 * @throws VigilError E_BAD_INPUT for a bad date, user or zone; E_STORAGE when a query fails.
 */
export async function dailyReport(wh: Warehouse, opts: DailyReportOptions): Promise<DailyReport> {
  const date = checkDate('date', opts?.date);
  const user = opts.user === undefined ? undefined : checkUser(opts.user);
  const tz = opts.tz === undefined ? undefined : checkTz(opts.tz);
  const invalidLimit = opts.invalidLimit ?? 100;
  if (!Number.isInteger(invalidLimit) || invalidLimit < 0) throw new VigilError('E_BAD_INPUT', 'invalidLimit must be a non-negative integer');

  let from = `${date}T00:00:00.000Z`;
  let to = `${addDays(date, 1)}T00:00:00.000Z`;
  if (tz !== undefined) {
    // Where the day begins and ends in `tz` (DuckDB's timezone() takes the later of a midnight
    // that happens twice, which moved that day's first hour to the day before).
    from = zoneDayStart(date, tz);
    to = zoneDayStart(addDays(date, 1), tz);
  }
  const days = dayRange(from.slice(0, 10), new Date(Date.parse(to) - 1).toISOString().slice(0, 10));
  /** Partition pruning (`day`, `user`) plus the exact window on `col`. */
  const where = (col: string): string =>
    [
      `day IN (${inList(days)})`,
      `"${col}" >= TIMESTAMPTZ ${sqlString(from)}`,
      `"${col}" < TIMESTAMPTZ ${sqlString(to)}`,
      ...(user === undefined ? [] : [`"user" = ${sqlString(user)}`, `user_id = ${sqlString(user)}`]),
    ].join(' AND ');
  const hourExpr = tz === undefined ? 'local_hour' : `hour(timezone(${sqlString(tz)}, captured_at))`;
  const span = { from: days[0] ?? date, to: days[days.length - 1] ?? date };

  const frames = await scopedQuery(wh, (src) =>
    `SELECT user_id, count(*) AS processed,
            count(*) FILTER (WHERE status = 'standardized') AS standardized,
            count(*) FILTER (WHERE status = 'invalid') AS invalid,
            count(*) FILTER (WHERE camera_fault) AS faults
       FROM ${src('frames', span)} WHERE ${where('captured_at')} GROUP BY user_id`,
  );
  const reasons = await scopedQuery(wh, (src) =>
    `SELECT user_id, reason, count(*) AS n FROM ${src('frames', span)} WHERE ${where('captured_at')} AND status = 'invalid'
      GROUP BY ALL ORDER BY user_id, n DESC, reason`,
  );
  const invalidFrames = await scopedQuery(wh, (src) =>
    `SELECT user_id, frame_id, tag, device_id, captured_at, reason, camera_fault,
            row_number() OVER (PARTITION BY user_id ORDER BY captured_at, frame_id) AS rn
       FROM ${src('frames', span)} WHERE ${where('captured_at')} AND status = 'invalid'
    QUALIFY rn <= ${invalidLimit + 1} ORDER BY user_id, rn`,
  );
  const faults = await scopedQuery(wh, (src) =>
    `SELECT user_id, device_id, count(*) AS n, min(captured_at) AS first_at, max(captured_at) AS last_at
       FROM ${src('frames', span)} WHERE ${where('captured_at')} AND camera_fault GROUP BY ALL ORDER BY user_id, device_id`,
  );
  const detections = await scopedQuery(wh, (src) =>
    `SELECT user_id, class, count(*) AS n FROM ${src('detections', span)} WHERE ${where('captured_at')}
      GROUP BY GROUPING SETS ((user_id), (user_id, class)) ORDER BY user_id, n DESC, class`,
  );
  const threats = await scopedQuery(wh, (src) =>
    `SELECT user_id, class, device_id, ${hourExpr} AS h, grouping(class, device_id, ${hourExpr}) AS g,
            count(*) AS n, count(DISTINCT tag) AS f
       FROM ${src('threats', span)} WHERE ${where('captured_at')}
      GROUP BY GROUPING SETS ((user_id), (user_id, class), (user_id, device_id), (user_id, ${hourExpr}))
      ORDER BY user_id, n DESC, class, device_id, h`,
  );
  const safe = await scopedQuery(wh, (src) =>
    `SELECT user_id, sum(frames) AS frames, sum(objects) AS objects FROM ${src('non_matches', span)} WHERE ${where('hour')} GROUP BY user_id`,
  );
  const alerts = await scopedQuery(wh, (src) =>
    `SELECT user_id, count(*) FILTER (WHERE status <> 'recorded') AS total,
            count(*) FILTER (WHERE status = 'delivered') AS delivered, count(*) FILTER (WHERE status = 'failed') AS failed,
            count(*) FILTER (WHERE status = 'unknown') AS unknown,
            count(*) FILTER (WHERE status = 'suppressed') AS suppressed, count(*) FILTER (WHERE status = 'outbox') AS outbox,
            count(*) FILTER (WHERE status = 'recorded') AS recorded
       FROM ${src('alerts', span)} WHERE ${where('created_at')} GROUP BY user_id`,
  );
  const deliveries = await scopedQuery(wh, (src) =>
    `SELECT a.user_id, count(*) AS attempts,
            count(*) FILTER (WHERE d.outcome = 'delivered' AND d.channel <> 'outbox') AS delivered, count(*) FILTER (WHERE d.channel = 'outbox') AS outbox,
            count(*) FILTER (WHERE d.outcome = 'retry') AS retries,
            count(*) FILTER (WHERE d.outcome = 'failed') AS failed, count(*) FILTER (WHERE d.outcome = 'unknown') AS unknown,
            count(*) FILTER (WHERE d.outcome = 'suppressed') AS suppressed
       FROM ${src('deliveries', { from: span.from })} d JOIN (SELECT DISTINCT alert_id, user_id FROM ${src('alerts', span)} WHERE ${where('created_at')}) a USING (alert_id)
      WHERE d.day >= ${sqlString(days[0] ?? date)} GROUP BY a.user_id`,
  );

  const ids = new Set<string>(user === undefined ? [] : [user]);
  if (user === undefined) for (const r of [...frames, ...detections, ...threats, ...safe, ...alerts]) ids.add(str(r.user_id));
  const of = (rows: JsonRow[], id: string): JsonRow[] => rows.filter((r) => r.user_id === id);
  const users = [...ids].sort().map((id): DailyUserReport => {
    const fr = of(frames, id)[0] ?? {};
    const inv = of(invalidFrames, id);
    const det = of(detections, id);
    const thr = of(threats, id);
    const thrTotal = thr.find((r) => num(r.g) === 7);
    const byHour = Array.from({ length: 24 }, (_, hour) => ({ hour, count: 0 }));
    for (const r of thr) if (num(r.g) === 6 && r.h !== null) byHour[num(r.h)]!.count = num(r.n);
    const al = of(alerts, id)[0] ?? {};
    const dl = of(deliveries, id)[0] ?? {};
    const sf = of(safe, id)[0] ?? {};
    return {
      userId: id,
      frames: { processed: num(fr.processed), standardized: num(fr.standardized), invalid: num(fr.invalid), cameraFaults: num(fr.faults) },
      invalid: {
        byReason: of(reasons, id).map((r) => ({ reason: str(r.reason), count: num(r.n) })),
        frames: inv.slice(0, invalidLimit).map((r) => ({
          frameId: str(r.frame_id), tag: str(r.tag), deviceId: str(r.device_id), capturedAt: str(r.captured_at), reason: str(r.reason), cameraFault: r.camera_fault === true,
        })),
        truncated: inv.length > invalidLimit,
      },
      cameraFaults: of(faults, id).map((r) => ({ deviceId: str(r.device_id), count: num(r.n), firstAt: str(r.first_at), lastAt: str(r.last_at) })),
      detections: {
        objects: num(det.find((r) => r.class === null)?.n),
        byClass: det.filter((r) => r.class !== null).map((r) => ({ class: str(r.class), count: num(r.n) })),
      },
      threats: {
        total: num(thrTotal?.n),
        frames: num(thrTotal?.f),
        byClass: thr.filter((r) => num(r.g) === 3).map((r) => ({ class: str(r.class), count: num(r.n) })),
        byDevice: thr.filter((r) => num(r.g) === 5).map((r) => ({ deviceId: str(r.device_id), count: num(r.n) })),
        byHour,
      },
      safe: { frames: num(sf.frames), objects: num(sf.objects) },
      alerts: {
        total: num(al.total), delivered: num(al.delivered), failed: num(al.failed), unknown: num(al.unknown), suppressed: num(al.suppressed), outbox: num(al.outbox),
        recorded: num(al.recorded),
      },
      deliveries: {
        attempts: num(dl.attempts), delivered: num(dl.delivered), outbox: num(dl.outbox), retries: num(dl.retries), failed: num(dl.failed), unknown: num(dl.unknown),
        suppressed: num(dl.suppressed),
      },
    };
  });
  return { date, tz: tz ?? null, from, to, users };
}

/**
 * Flattens a daily report into `{user_id, section, key, value}` rows, for `--format table|csv`.
 */
export function dailyReportRows(report: DailyReport): JsonRow[] {
  const rows: JsonRow[] = [];
  const add = (user_id: string, section: string, key: string, value: JsonValue): void => void rows.push({ user_id, section, key, value });
  for (const u of report.users) {
    for (const [k, v] of Object.entries(u.frames)) add(u.userId, 'frames', k, v);
    for (const r of u.invalid.byReason) add(u.userId, 'invalid_by_reason', r.reason, r.count);
    for (const f of u.invalid.frames) add(u.userId, 'invalid_frame', f.frameId, `${f.deviceId} ${f.capturedAt} ${f.reason}`);
    for (const f of u.cameraFaults) add(u.userId, 'camera_faults', f.deviceId, f.count);
    add(u.userId, 'detections', 'objects', u.detections.objects);
    for (const c of u.detections.byClass) add(u.userId, 'detections_by_class', c.class, c.count);
    add(u.userId, 'threats', 'total', u.threats.total);
    add(u.userId, 'threats', 'frames', u.threats.frames);
    for (const c of u.threats.byClass) add(u.userId, 'threats_by_class', c.class, c.count);
    for (const d of u.threats.byDevice) add(u.userId, 'threats_by_device', d.deviceId, d.count);
    for (const h of u.threats.byHour) if (h.count > 0) add(u.userId, 'threats_by_hour', String(h.hour).padStart(2, '0'), h.count);
    for (const [k, v] of Object.entries(u.safe)) add(u.userId, 'safe', k, v);
    for (const [k, v] of Object.entries(u.alerts)) add(u.userId, 'alerts', k, v);
    for (const [k, v] of Object.entries(u.deliveries)) add(u.userId, 'deliveries', k, v);
  }
  return rows;
}

/** Options of {@link usersReport}. */
export interface UsersReportOptions {
  /** First UTC day, `YYYY-MM-DD` (inclusive). */
  from: string;
  /** Last UTC day, `YYYY-MM-DD` (inclusive). */
  to: string;
}

/**
 * Per user, between two UTC days inclusive: frames, invalid frames, camera faults, threats (matches
 * and distinct frames), alerts and alerts delivered. The numbers behind the admin bar chart.
 * Only the files holding days of the range are read. Users with no record in the range are absent.
 * @throws VigilError E_BAD_INPUT for bad dates or `from` after `to`.
 */
export async function usersReport(wh: Warehouse, opts: UsersReportOptions): Promise<UsersReport> {
  const from = checkDate('from', opts?.from);
  const to = checkDate('to', opts.to);
  if (from > to) throw new VigilError('E_BAD_INPUT', `from ${from} is after to ${to}`);
  const range = `day BETWEEN ${sqlString(from)} AND ${sqlString(to)}`;
  const span = { from, to };
  const frames = await scopedQuery(wh, (src) =>
    `SELECT user_id, count(*) AS n, count(*) FILTER (WHERE status = 'invalid') AS invalid, count(*) FILTER (WHERE camera_fault) AS faults
       FROM ${src('frames', span)} WHERE ${range} GROUP BY user_id`,
  );
  const threats = await scopedQuery(wh, (src) => `SELECT user_id, count(*) AS n, count(DISTINCT tag) AS f FROM ${src('threats', span)} WHERE ${range} GROUP BY user_id`);
  const alerts = await scopedQuery(wh, (src) =>
    `SELECT user_id, count(*) AS n, count(*) FILTER (WHERE status = 'delivered') AS delivered FROM ${src('alerts', span)} WHERE ${range} GROUP BY user_id`,
  );
  const ids = new Set<string>([...frames, ...threats, ...alerts].map((r) => str(r.user_id)));
  const pick = (rows: JsonRow[], id: string): JsonRow => rows.find((r) => r.user_id === id) ?? {};
  const users = [...ids].map((id): UserTotals => {
    const f = pick(frames, id);
    const t = pick(threats, id);
    const a = pick(alerts, id);
    return {
      userId: id,
      frames: num(f.n),
      invalid: num(f.invalid),
      cameraFaults: num(f.faults),
      threats: num(t.n),
      threatFrames: num(t.f),
      alerts: num(a.n),
      delivered: num(a.delivered),
    };
  });
  users.sort((x, y) => y.threats - x.threats || (x.userId < y.userId ? -1 : 1));
  return { from, to, users };
}

/**
 * Every record of one frame in every table: its `frames` row(s), detections, threats, the
 * `non_matches` aggregate that counted it when it was safe, its alerts and their delivery
 * attempts, and the rule-set versions of its threats. The frame's own rows give its `day` and
 * `user`, which prune the other tables.
 * @throws VigilError E_BAD_INPUT for a malformed id; E_NOT_FOUND when no table has it.
 */
export async function findFrameRecords(wh: Warehouse, frameId: string): Promise<FrameRecords> {
  const r = Sha256Schema.safeParse(frameId);
  if (!r.success) throw new VigilError('E_BAD_INPUT', `frame id must be a sha256 (64 lowercase hex), got ${JSON.stringify(frameId)}`);
  const id = sqlString(r.data);
  const frames = await scopedQuery(wh, (src) => `SELECT * FROM ${src('frames')} WHERE frame_id = ${id} ORDER BY captured_at, batch_id`);
  const days = [...new Set(frames.map((f) => str(f.day)))].sort();
  const users = [...new Set(frames.map((f) => str(f.user)))].sort();
  const span = days.length === 0 ? undefined : { from: days[0]!, to: days[days.length - 1]! };
  const onwards = days.length === 0 ? undefined : { from: days[0]! };
  const prune = days.length === 0 ? '' : ` AND day IN (${inList(days)}) AND "user" IN (${inList(users)})`;
  const after = days.length === 0 ? '' : ` AND day >= ${sqlString(days[0]!)} AND "user" IN (${inList(users)})`;

  const detections = await scopedQuery(wh, (src) =>
    `SELECT * FROM ${src('detections', span)} WHERE frame_id = ${id}${prune} ORDER BY batch_id, score DESC, class, box_x, box_y, box_w, box_h`);
  const threats = await scopedQuery(wh, (src) =>
    `SELECT * FROM ${src('threats', span)} WHERE frame_id = ${id}${prune} ORDER BY batch_id, rule_id, class, score DESC, captured_at`);
  const alerts = await scopedQuery(wh, (src) => `SELECT * FROM ${src('alerts', onwards)} WHERE frame_id = ${id}${after} ORDER BY created_at, alert_id`);
  const alertIds = [...new Set(alerts.map((a) => str(a.alert_id)))];
  const firstAlertDay = alerts.map((a) => str(a.day)).sort()[0];
  const deliveries =
    alertIds.length === 0
      ? []
      : await scopedQuery(wh, (src) =>
          `SELECT * FROM ${src('deliveries', { from: firstAlertDay ?? '0000-01-01' })} WHERE alert_id IN (${inList(alertIds)}) AND day >= ${sqlString(firstAlertDay ?? '0000-01-01')} ORDER BY alert_id, channel, attempt, "at", status_code`,
        );
  // The aggregates that counted this frame's safe copies: several cameras (or one, at several
  // times) can send the same bytes, and a copy with threats is not counted among non-matches.
  const nonMatches =
    !frames.some((f) => f.status === 'standardized')
      ? []
      : await scopedQuery(wh, (src) =>
          `SELECT n.* FROM ${src('non_matches', span)} n
             JOIN (SELECT DISTINCT f.user_id, f.device_id, date_trunc('hour', f.captured_at) AS h, f.batch_id FROM ${src('frames', span)} f
                    WHERE f.frame_id = ${id} AND f.day IN (${inList(days)}) AND f."user" IN (${inList(users)}) AND f.status = 'standardized'
                      AND NOT EXISTS (SELECT 1 FROM ${src('threats', span)} t
                                       WHERE t.frame_id = ${id} AND t.day IN (${inList(days)}) AND t.user_id = f.user_id AND t.device_id = f.device_id
                                         AND t.captured_at = f.captured_at AND t.batch_id = f.batch_id)) c
               ON n.user_id = c.user_id AND n.device_id = c.device_id AND n.hour = c.h AND n.batch_id = c.batch_id
            WHERE n.day IN (${inList(days)}) AND n."user" IN (${inList(users)})
            ORDER BY n.hour, n.user_id, n.device_id, n.batch_id`,
        );
  const commits = [...new Set(threats.map((t) => str(t.rules_commit)))];
  const ruleVersions =
    commits.length === 0 ? [] : await scopedQuery(wh, (src) => `SELECT * FROM ${src('rule_versions')} WHERE rules_commit IN (${inList(commits)}) ORDER BY "at", rules_commit`);

  const out: FrameRecords = {
    frameId: r.data,
    frames,
    invalidFrames: frames.filter((f) => f.status === 'invalid'),
    detections,
    threats,
    nonMatches,
    alerts,
    deliveries,
    ruleVersions,
  };
  if (frames.length + detections.length + threats.length + alerts.length === 0) {
    throw new VigilError('E_NOT_FOUND', `no record of frame ${r.data} in the warehouse`, { frameId: r.data });
  }
  return out;
}

function cellText(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (Array.isArray(v)) return v.map((x) => (x !== null && typeof x === 'object' ? JSON.stringify(x) : String(x))).join(',');
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

function columnsOf(rows: readonly Record<string, unknown>[], columns?: readonly string[]): string[] {
  if (columns !== undefined) return [...columns];
  const seen = new Set<string>();
  for (const r of rows) for (const k of Object.keys(r)) seen.add(k);
  return [...seen];
}

/**
 * Rows as an aligned text table: a header, then one line per row; numbers right-aligned, null as
 * `-`, lists comma-joined. `columns` fixes the columns (default: every key, in first-seen order).
 * No rows -> `(no rows)`.
 */
export function formatTable(rows: readonly Record<string, unknown>[], columns?: readonly string[]): string {
  const cols = columnsOf(rows, columns);
  if (rows.length === 0 || cols.length === 0) return '(no rows)\n';
  const text = rows.map((r) => cols.map((c) => (r[c] === null || r[c] === undefined ? '-' : cellText(r[c]).replace(/[\r\n\t]+/g, ' '))));
  const numeric = cols.map((c) => rows.every((r) => r[c] === null || r[c] === undefined || typeof r[c] === 'number'));
  const widths = cols.map((c, i) => Math.max(c.length, ...text.map((t) => t[i]!.length)));
  const line = (cells: string[], header: boolean): string =>
    cells
      .map((cell, i) => (numeric[i] && !header ? cell.padStart(widths[i]!) : i === cells.length - 1 ? cell : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(cols, true), line(widths.map((w) => '-'.repeat(w)), true), ...text.map((t) => line(t, false))].join('\n') + '\n';
}

/**
 * Rows as CSV (RFC 4180: header line, `,` separators, CRLF line ends, fields quoted when they
 * contain `,` `"` CR or LF). Null is an empty field, lists are comma-joined, objects JSON. Text
 * starting with `=`, `+`, `-`, `@`, tab or CR is prefixed with `'` so spreadsheets never evaluate
 * it as a formula (numbers are left alone).
 */
export function toCsv(rows: readonly Record<string, unknown>[], columns?: readonly string[]): string {
  const cols = columnsOf(rows, columns);
  const field = (v: unknown, isHeader = false): string => {
    let s = cellText(v);
    if (!isHeader && typeof v !== 'number' && /^[=+\-@\t\r]/.test(s)) s = `'${s}`;
    return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  const lines = [cols.map((c) => field(c, true)).join(','), ...rows.map((r) => cols.map((c) => field(r[c])).join(','))];
  return lines.join('\r\n') + '\r\n';
}
