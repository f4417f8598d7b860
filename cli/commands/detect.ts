/**
 * `vigil detect <image>...`: run the object detector alone on image files (no server, no repos).
 */
import { promises as fsp } from 'node:fs';
import type { Command } from 'commander';
import { isVigilError } from '../../lib/errors.js';
import type { DetectionResult } from '../../detector/index.js';
import { fail, fileErrorMessage, printJson, printTable } from '../output.js';
import { config, intOption } from './common.js';

/** Result of one image: the detection, or the error that stopped it. */
export type DetectOutcome = ({ file: string; ok: true } & DetectionResult) | { file: string; ok: false; error: { code: string; message: string } };

/** Registers `vigil detect`. */
export function registerDetect(program: Command): void {
  program
    .command('detect')
    .description('detect objects in image files with the model alone (no server needed)')
    .argument('<image...>', 'image files (JPEG, PNG, WebP, ...)')
    .option('--model <config>', 'model config JSON (default: VIGIL_MODEL, models/yolov8n.json)')
    .option('--threads <n>', 'onnxruntime intra-op threads (default: VIGIL_THREADS or the number of CPUs)', intOption(1, 1024))
    .option('--json', 'print machine-readable JSON (an array, one entry per image)')
    .action(async (images: string[], opts: { model?: string; threads?: number; json?: boolean }) => {
      const cfg = config();
      const { Detector } = await import('../../detector/index.js');
      const detector = await Detector.load(opts.model ?? cfg.VIGIL_MODEL, { threads: opts.threads ?? cfg.VIGIL_THREADS });
      const outcomes: DetectOutcome[] = [];
      try {
        for (const file of images) {
          let outcome: DetectOutcome;
          try {
            const bytes = await fsp.readFile(file);
            outcome = { file, ok: true, ...(await detector.detect(bytes)) };
          } catch (err) {
            const code = isVigilError(err) ? err.code : ((err as NodeJS.ErrnoException).code ?? 'E_UNKNOWN');
            outcome = { file, ok: false, error: { code, message: fileErrorMessage(err) } };
            fail(`${file}: ${outcome.error.message}`);
          }
          outcomes.push(outcome);
          if (!opts.json && outcome.ok) printOutcome(outcome);
        }
      } finally {
        await detector.release();
      }
      if (opts.json) printJson(outcomes);
    });
}

function printOutcome(r: Extract<DetectOutcome, { ok: true }>): void {
  const t = r.timingsMs;
  process.stdout.write(
    `${r.file}: ${r.image.width}x${r.image.height}, ${r.objects.length} object${r.objects.length === 1 ? '' : 's'} ` +
      `(${r.model.name}, ${(t.preprocess + t.inference + t.postprocess).toFixed(1)} ms)\n`,
  );
  printTable(
    ['CLASS', 'SCORE', 'X', 'Y', 'WIDTH', 'HEIGHT'],
    r.objects.map((o) => [o.class, o.score.toFixed(4), o.box.x, o.box.y, o.box.width, o.box.height]),
    { indent: '  ', empty: '(nothing detected)' },
  );
}
