/**
 * Model configuration (`models/<name>.json`): schema, loading, and integrity check of the weights.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { VigilError } from '../lib/errors.js';
import { LABEL_SETS } from './labels.js';

/** Lower-case hex sha256. */
const Sha256Schema = z.string().regex(/^[0-9a-f]{64}$/, 'must be a lower-case hex sha256 (64 characters)');

/** Schema of a model config json, as stored next to the model file. */
export const ModelConfigSchema = z.object({
  /** Short model name, e.g. `yolov8n`. */
  name: z.string().min(1),
  /** Model file, relative to the json's folder (or absolute). */
  file: z.string().min(1),
  /** Pinned sha256 of the model file. */
  sha256: Sha256Schema,
  /** Square input side in pixels (YOLO: multiple of 32). */
  inputSize: z.number().int().min(32).max(4096).multipleOf(32),
  /** Output decoder. Only YOLOv8-style heads ([1, 4 + classes, anchors], no objectness). */
  decoder: z.literal('yolov8'),
  /** A built-in label set name or an explicit list, in class-id order. */
  labels: z.union([z.enum(['coco80']), z.array(z.string().min(1)).min(1)]),
  /** Licence of the weights (informational, shown to users). */
  licence: z.string().min(1),
  /** Minimum class score to keep a detection, in (0, 1]. */
  scoreThreshold: z.number().gt(0).max(1),
  /** IoU above which a lower-scored box of the same class is suppressed, in (0, 1]. */
  iouThreshold: z.number().gt(0).max(1),
  /** Maximum detections returned per image. */
  maxDetections: z.number().int().min(1).max(10000),
});

/** A model config json, as validated. */
export type ModelConfig = z.infer<typeof ModelConfigSchema>;

/** A loaded model config with its paths resolved and its labels expanded. */
export type ResolvedModelConfig = ModelConfig & {
  /** Absolute path of the json the config came from. */
  readonly configPath: string;
  /** Absolute path of the model file (`file` resolved against the json's folder). */
  readonly filePath: string;
  /** Class names indexed by class id. */
  readonly classNames: readonly string[];
};

/** Code of a Node fs error, if any. */
function errnoCode(err: unknown): string | undefined {
  return err && typeof err === 'object' && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

/**
 * Validates an already-parsed config object. `source` names the file in error messages and
 * `file` is resolved against its folder.
 *
 * @throws VigilError E_CONFIG naming the file and the offending field.
 */
export function parseModelConfig(raw: unknown, source: string): ResolvedModelConfig {
  const parsed = ModelConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue && issue.path.length > 0 ? issue.path.join('.') : '(root)';
    throw new VigilError('E_CONFIG', `invalid model config ${source}: field "${field}": ${issue?.message ?? 'invalid'}`, {
      file: source,
      field,
      issues: parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
    });
  }
  const config = parsed.data;
  const configPath = path.resolve(source);
  const classNames = typeof config.labels === 'string' ? [...LABEL_SETS[config.labels]] : [...config.labels];
  return {
    ...config,
    configPath,
    filePath: path.resolve(path.dirname(configPath), config.file),
    classNames,
  };
}

/**
 * Reads and validates a model config json.
 *
 * @param configPath path of the json (e.g. `models/yolov8n.json`).
 * @throws VigilError E_NOT_FOUND when the json does not exist, E_CONFIG when it is not valid JSON
 *   or does not match {@link ModelConfigSchema} (the message names the file and the field).
 */
export async function loadModelConfig(configPath: string): Promise<ResolvedModelConfig> {
  const abs = path.resolve(configPath);
  let text: string;
  try {
    text = await readFile(abs, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') {
      throw new VigilError('E_NOT_FOUND', `model config ${abs} not found`, { file: abs });
    }
    throw new VigilError('E_CONFIG', `cannot read model config ${abs}: ${(err as Error).message}`, { file: abs });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new VigilError('E_CONFIG', `invalid model config ${abs}: not valid JSON (${(err as Error).message})`, {
      file: abs,
    });
  }
  return parseModelConfig(raw, abs);
}

/** sha256 (hex) of a file, streamed. Rejects with the fs error. */
export async function sha256OfFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** fs failure reading the model file -> E_NOT_FOUND (with the setup hint) or E_MODEL. */
function modelReadError(err: unknown, config: Pick<ResolvedModelConfig, 'filePath' | 'name'>): VigilError {
  if (errnoCode(err) === 'ENOENT') {
    return new VigilError('E_NOT_FOUND', `model file ${config.filePath} not found; run \`npm run setup\` to fetch it`, {
      file: config.filePath,
      model: config.name,
    });
  }
  return new VigilError('E_MODEL', `cannot read model file ${config.filePath}: ${(err as Error).message}`, {
    file: config.filePath,
  });
}

/** Throws E_HASH_MISMATCH unless `actual` equals the pinned hash. */
function checkHash(actual: string, config: Pick<ResolvedModelConfig, 'filePath' | 'sha256'>): string {
  if (actual !== config.sha256) {
    throw new VigilError(
      'E_HASH_MISMATCH',
      `model file ${config.filePath} has sha256 ${actual} but the config pins ${config.sha256}; ` +
        'run `npm run setup` to re-fetch it',
      { file: config.filePath, expected: config.sha256, actual },
    );
  }
  return actual;
}

/**
 * Hashes the model file and checks it against the pinned `sha256`.
 *
 * @returns the (verified) sha256.
 * @throws VigilError E_NOT_FOUND (with a hint to run `npm run setup`) when the file is missing,
 *   E_HASH_MISMATCH naming the expected and actual hashes when the content differs.
 */
export async function verifyModelFile(
  config: Pick<ResolvedModelConfig, 'filePath' | 'sha256' | 'name'>,
): Promise<string> {
  let actual: string;
  try {
    actual = await sha256OfFile(config.filePath);
  } catch (err) {
    throw modelReadError(err, config);
  }
  return checkHash(actual, config);
}

/**
 * Reads the model file into memory and verifies its sha256 on those very bytes, so what gets
 * loaded is exactly what was verified (no window for the file to change in between).
 *
 * @throws VigilError as {@link verifyModelFile}.
 */
export async function readVerifiedModel(
  config: Pick<ResolvedModelConfig, 'filePath' | 'sha256' | 'name'>,
): Promise<Uint8Array> {
  let bytes: Buffer;
  try {
    bytes = await readFile(config.filePath);
  } catch (err) {
    throw modelReadError(err, config);
  }
  checkHash(createHash('sha256').update(bytes).digest('hex'), config);
  return bytes;
}
