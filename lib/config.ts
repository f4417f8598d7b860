import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { cronProblem } from './cron.js';
import { VigilError } from './errors.js';

/** The project folder (where package.json is). */
export const PROJECT_DIR = path.resolve(import.meta.dirname, '..');

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

/**
 * Runtime settings, from the environment, with embedded defaults so that `vigil start` works with
 * no configuration at all. Defined once here; every command reads it through loadConfig().
 */
export const ConfigSchema = z.object({
  /** Data folder: repos, objects, device registry, Temporal's SQLite file. */
  VIGIL_DATA: z.string().default('./data'),
  VIGIL_HOST: z.string().default('127.0.0.1'),
  VIGIL_PORT: int(0, 65535).default(8080),
  /** Largest accepted frame in bytes. */
  VIGIL_MAX_FRAME_BYTES: int(1, 100 * 1024 * 1024).default(15 * 1024 * 1024),
  /** A site's batch is cut at this many frames… */
  VIGIL_BATCH_MAX_FRAMES: int(1, 5000).default(32),
  /** …or when its oldest frame waited this long. */
  VIGIL_BATCH_MAX_WAIT_MS: int(10, 3_600_000).default(2000),
  /** Frames per child workflow in a big batch. */
  VIGIL_CHUNK_SIZE: int(1, 500).default(32),
  VIGIL_MODEL: z.string().default(path.join(PROJECT_DIR, 'models', 'yolov8n.json')),
  /** Rules folder (global.yaml, users/<user>.yaml), versioned into the `rules` repo at each batch. */
  VIGIL_RULES: z.string().default(path.join(PROJECT_DIR, 'rules')),
  /** No second alert for the same user, device and rule within this many ms (capture time). */
  VIGIL_ALERT_COOLDOWN_MS: int(0, 7 * 24 * 3_600_000).default(600_000),
  /** Delivery attempts per alert and channel before it is recorded as failed. */
  VIGIL_ALERT_MAX_ATTEMPTS: int(1, 50).default(6),
  /** Validation config JSON (optional; defaults are built in). */
  VIGIL_VALIDATE_CONFIG: z.string().optional(),
  /** onnxruntime intra-op threads. */
  VIGIL_THREADS: int(1, 256).default(os.availableParallelism()),
  /**
   * Activities one worker runs at once on the main task queue: the quick stages (threats, alerts,
   * records, rules), and validate and detect of batches begun before the lanes existed.
   */
  VIGIL_WORKER_ACTIVITIES: int(1, 64).default(4),
  /**
   * Validate activities one worker runs at once, on the validate lane's task queue (lib/taskQueues.ts).
   * Each decodes and re-encodes its chunk's frames with sharp, one frame at a time.
   */
  VIGIL_VALIDATE_ACTIVITIES: int(1, 64).default(2),
  /**
   * Detect activities one worker runs at once, on the detect lane's task queue. Inference itself is
   * limited by VIGIL_INFERENCE_SESSIONS; one more activity reads and commits while the others infer.
   * While this many run, the worker's validates wait for one to end (stages/pressure.ts).
   */
  VIGIL_DETECT_ACTIVITIES: int(1, 64).default(2),
  /**
   * Inference sessions per worker; VIGIL_THREADS is shared between them. 1: each image uses every
   * thread; more: several images are inferred at once, one thread each (more throughput).
   */
  VIGIL_INFERENCE_SESSIONS: int(1, 64).default(1),
  /**
   * How much lower (0-19) the inference threads run than the rest of their worker: 10 in a worker
   * process of `vigil start`, itself at VIGIL_WORKER_NICE (10), puts inference at 19 (the cap).
   * Inference runs in worker threads; at a lower priority it yields the cores to the API, git
   * writes and the light stages whenever they need them.
   */
  VIGIL_INFERENCE_NICE: int(0, 19).default(10),
  /**
   * Worker processes `vigil start` runs beside the API (0: none; workers then run elsewhere with
   * `vigil worker`). Each is a child process, started again when it dies: the activities' work
   * (sharp, git writes, DuckDB) then never holds up the event loop that serves the API.
   */
  VIGIL_WORKERS: int(0, 64).default(1),
  /**
   * Nice value (0-19) of the worker processes `vigil start` runs: under load the API, at normal
   * priority, gets the cores first and the pipeline takes what is left.
   */
  VIGIL_WORKER_NICE: int(0, 19).default(10),
  /**
   * Nightly reprocessing: a Temporal Schedule re-runs the frames of the last VIGIL_REPROCESS_DAYS days
   * through the DAG under the rules and model in force (new alerts recorded, not sent). Five-field
   * cron, in VIGIL_REPROCESS_TZ; `off` removes the schedule.
   */
  VIGIL_REPROCESS_CRON: z
    .string()
    .superRefine((v, ctx) => {
      const problem = v === 'off' ? null : cronProblem(v);
      if (problem) ctx.addIssue({ code: 'custom', message: `a five-field cron expression or "off" (${problem})` });
    })
    .default('30 3 * * *'),
  VIGIL_REPROCESS_TZ: z.string().refine((tz) => {
    try {
      new Intl.DateTimeFormat('en', { timeZone: tz });
      return true;
    } catch {
      return false;
    }
  }, 'an IANA time zone').default('UTC'),
  VIGIL_REPROCESS_DAYS: int(1, 366).default(1),
  /**
   * `vigil start` packs a repo in the background once it has this many loose objects (0: never for
   * loose objects; `vigil repo gc` still packs by hand) or VIGIL_AUTOPACK_PACKS packs (the frames
   * repo's group commits write one small pack each; 0: never for packs), checking every
   * VIGIL_AUTOPACK_INTERVAL_MS. Both 0: no background packing.
   */
  VIGIL_AUTOPACK_LOOSE: int(0, 100_000_000).default(5000),
  VIGIL_AUTOPACK_PACKS: int(0, 1_000_000).default(50),
  VIGIL_AUTOPACK_INTERVAL_MS: int(1000, 86_400_000).default(10_000),
  /**
   * On stop, how long a worker lets running activities finish and report before cancelling them
   * (a cancelled activity is redone after the restart).
   */
  VIGIL_SHUTDOWN_GRACE_MS: int(0, 600_000).default(30_000),
  /** Temporal frontend; unset = start the embedded dev server. */
  TEMPORAL_ADDRESS: z.string().optional(),
  TEMPORAL_NAMESPACE: z.string().default('default'),
  TEMPORAL_TASK_QUEUE: z.string().default('vigil'),
  /** mTLS for a Temporal cluster: client certificate and key files, optional CA and server name. */
  TEMPORAL_TLS_CERT: z.string().optional(),
  TEMPORAL_TLS_KEY: z.string().optional(),
  TEMPORAL_TLS_CA: z.string().optional(),
  TEMPORAL_TLS_SERVER_NAME: z.string().optional(),
  /** Embedded dev server ports. */
  VIGIL_TEMPORAL_PORT: int(1, 65535).default(7233),
  VIGIL_TEMPORAL_UI_PORT: int(1, 65535).default(8233),
});
export type Config = z.infer<typeof ConfigSchema>;

/**
 * Reads settings from the environment (or `env`).
 * @throws VigilError E_CONFIG naming the variable and the problem.
 */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const picked = Object.fromEntries(Object.keys(ConfigSchema.shape).map((k) => [k, env[k] === '' ? undefined : env[k]]));
  const r = ConfigSchema.safeParse(picked);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new VigilError('E_CONFIG', `environment variable ${String(i.path[0])}: ${i.message}`);
  }
  return { ...r.data, VIGIL_DATA: path.resolve(r.data.VIGIL_DATA) };
}
