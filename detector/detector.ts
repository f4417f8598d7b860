/**
 * The object detector: one verified ONNX model, one onnxruntime session, serialised calls.
 */
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import * as ort from 'onnxruntime-node';
import { z } from 'zod';
import { VigilError } from '../lib/errors.js';
import { decodeYolov8 } from './decode.js';
import { letterbox } from './letterbox.js';
import { loadModelConfig, readVerifiedModel, type ResolvedModelConfig } from './modelConfig.js';
import type { DetectionResult } from './schema.js';

/** Options of {@link Detector.load}. */
export const DetectorOptionsSchema = z.object({
  /** onnxruntime intra-op threads (default `os.availableParallelism()`). */
  threads: z.number().int().min(1).max(1024).optional(),
  /**
   * Let onnxruntime's intra-op threads spin-wait between parallel sections (default false). Spinning
   * saves microseconds on an idle machine but burns whole cores that the rest of the pipeline
   * (image decoding, git, Temporal) needs: on 2 cores with validation running next to inference,
   * measured inference took about twice as long with spinning on.
   */
  spin: z.boolean().optional(),
});

/** Options of {@link Detector.load}. */
export type DetectorOptions = z.infer<typeof DetectorOptionsSchema>;

/** Identity of the loaded model. */
export interface DetectorModelInfo {
  readonly name: string;
  /** Verified sha256 of the weights. */
  readonly sha256: string;
  readonly inputSize: number;
}

/** Rounds a duration to 0.01 ms. */
function ms(v: number): number {
  return Math.round(v * 100) / 100;
}

/** One-line message of an unknown error. */
function messageOf(err: unknown): string {
  const m = err instanceof Error ? err.message : String(err);
  return m.split('\n')[0] ?? m;
}

/** Static dims of a tensor input/output, or undefined when the metadata does not tell. */
function tensorShape(meta: ort.InferenceSession.ValueMetadata | undefined): ReadonlyArray<number | string> | undefined {
  return meta && meta.isTensor ? meta.shape : undefined;
}

/**
 * Checks the session's input `[1, 3, S, S]` and output `[1, 4 + classes, N]` against the config
 * where the model declares static dims.
 */
function checkModelShapes(session: ort.InferenceSession, config: ResolvedModelConfig): void {
  const input = tensorShape(session.inputMetadata[0]);
  const output = tensorShape(session.outputMetadata[0]);
  const S = config.inputSize;
  const expectIn = [1, 3, S, S];
  const expectOut = [1, 4 + config.classNames.length];
  const bad = (shape: ReadonlyArray<number | string> | undefined, expect: number[]) =>
    shape !== undefined && expect.some((d, i) => typeof shape[i] === 'number' && shape[i] !== d);
  if (bad(input, expectIn)) {
    throw new VigilError(
      'E_MODEL',
      `model ${config.name} input shape [${input?.join(', ')}] does not match inputSize ${S} in ${config.configPath}`,
      { input: input ? [...input] : undefined, inputSize: S },
    );
  }
  if (bad(output, expectOut)) {
    throw new VigilError(
      'E_MODEL',
      `model ${config.name} output shape [${output?.join(', ')}] does not match ${config.classNames.length} labels ` +
        `(expected [1, ${4 + config.classNames.length}, N]) in ${config.configPath}`,
      { output: output ? [...output] : undefined, labels: config.classNames.length },
    );
  }
}

/**
 * Object detector over one ONNX model (YOLOv8 decoder).
 *
 * Calls to {@link Detector.detect} on one instance run one at a time (a promise chain), so the
 * session's intra-op threads are never oversubscribed; use several instances (with fewer threads
 * each) for parallelism.
 */
export class Detector {
  readonly #session: ort.InferenceSession;
  readonly #config: ResolvedModelConfig;
  readonly #sha256: string;
  readonly #inputName: string;
  readonly #outputName: string;
  #queue: Promise<unknown> = Promise.resolve();
  #released = false;

  private constructor(session: ort.InferenceSession, config: ResolvedModelConfig, sha256: string) {
    this.#session = session;
    this.#config = config;
    this.#sha256 = sha256;
    const inputName = session.inputNames[0];
    const outputName = session.outputNames[0];
    if (inputName === undefined || outputName === undefined) {
      throw new VigilError('E_MODEL', `model ${config.name} has no input or no output`);
    }
    this.#inputName = inputName;
    this.#outputName = outputName;
  }

  /**
   * Loads a model config json, verifies the model file's sha256, and opens an onnxruntime CPU
   * session (`intraOpNumThreads` = `opts.threads` or `os.availableParallelism()`,
   * `interOpNumThreads` = 1, graph optimisation `all`, no spin-waiting unless `opts.spin`).
   *
   * @throws VigilError E_NOT_FOUND (config or model file missing; hint: `npm run setup`),
   *   E_CONFIG (invalid config or options), E_HASH_MISMATCH, E_MODEL (session creation failed or
   *   the model's shapes do not match the config).
   */
  static async load(configPath: string, opts: DetectorOptions = {}): Promise<Detector> {
    const parsedOpts = DetectorOptionsSchema.safeParse(opts);
    if (!parsedOpts.success) {
      const issue = parsedOpts.error.issues[0];
      throw new VigilError('E_CONFIG', `invalid detector options: ${issue?.path.join('.')}: ${issue?.message}`);
    }
    const config = await loadModelConfig(configPath);
    const bytes = await readVerifiedModel(config);
    const threads = parsedOpts.data.threads ?? os.availableParallelism();
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(bytes, {
        executionProviders: ['cpu'],
        intraOpNumThreads: threads,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        graphOptimizationLevel: 'all',
        logSeverityLevel: 3,
        extra: { session: { intra_op: { allow_spinning: parsedOpts.data.spin ? '1' : '0' } } },
      });
    } catch (err) {
      throw new VigilError('E_MODEL', `cannot load model ${config.filePath}: ${messageOf(err)}`, {
        file: config.filePath,
      });
    }
    try {
      checkModelShapes(session, config);
      return new Detector(session, config, config.sha256);
    } catch (err) {
      await session.release();
      throw err;
    }
  }

  /** Name, verified sha256 and input size of the loaded model. */
  get model(): DetectorModelInfo {
    return { name: this.#config.name, sha256: this.#sha256, inputSize: this.#config.inputSize };
  }

  /**
   * Detects objects in one encoded image (JPEG, PNG, WebP, ...). Boxes are in original-image
   * pixels (after EXIF orientation). Decoding and letterboxing start at once; inference runs one
   * image at a time. So a caller that asks for the next image before awaiting this one overlaps
   * that image's decoding with this one's inference (the detect stage does).
   *
   * @throws VigilError E_BAD_INPUT (empty, undecodable or truncated image), E_TOO_LARGE,
   *   E_MODEL (inference failed or the detector was released).
   */
  detect(bytes: Buffer): Promise<DetectionResult> {
    if (this.#released) {
      return Promise.reject(new VigilError('E_MODEL', `detector for ${this.#config.name} has been released`));
    }
    const t0 = performance.now();
    const prepared = letterbox(bytes, this.#config.inputSize).then((lb) => ({ lb, preprocessMs: performance.now() - t0 }));
    prepared.catch(() => undefined); // the failure is reported through `run`
    const run = this.#queue.then(async () => this.#inferNow(await prepared));
    this.#queue = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /**
   * Releases the onnxruntime session once the detections already queued have finished; later
   * `detect` calls reject with E_MODEL. Idempotent.
   */
  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    await this.#queue;
    await this.#session.release();
  }

  async #inferNow({ lb, preprocessMs }: { lb: Awaited<ReturnType<typeof letterbox>>; preprocessMs: number }): Promise<DetectionResult> {
    const S = this.#config.inputSize;
    const t1 = performance.now();

    let data: ArrayLike<number>;
    let dims: readonly number[];
    try {
      const input = new ort.Tensor('float32', lb.data, [1, 3, S, S]);
      const outputs = await this.#session.run({ [this.#inputName]: input });
      const out = outputs[this.#outputName];
      if (!out || out.type !== 'float32') {
        throw new Error(`output ${this.#outputName} missing or not float32`);
      }
      data = out.data as Float32Array;
      dims = out.dims;
    } catch (err) {
      throw new VigilError('E_MODEL', `inference failed on model ${this.#config.name}: ${messageOf(err)}`);
    }
    const t2 = performance.now();

    const objects = decodeYolov8(data, dims, lb, this.#config);
    const t3 = performance.now();

    return {
      model: { name: this.#config.name, sha256: this.#sha256 },
      image: { width: lb.width, height: lb.height },
      objects,
      timingsMs: { preprocess: ms(preprocessMs), inference: ms(t2 - t1), postprocess: ms(t3 - t2) },
    };
  }
}
