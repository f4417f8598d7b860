/**
 * Helpers shared by the command modules: settings, the data store, option parsers.
 */
import { InvalidArgumentError } from 'commander';
import { loadConfig, type Config } from '../../lib/config.js';
import type { RepoStore } from '../../repos/index.js';

/** The runtime settings (environment). @throws VigilError E_CONFIG */
export function config(): Config {
  return loadConfig();
}

/** Opens the repo store of the data folder (VIGIL_DATA). Loads the repos module lazily. */
export async function openDataStore(): Promise<RepoStore> {
  const { openStore } = await import('../../repos/index.js');
  return openStore(config().VIGIL_DATA);
}

/** A commander option parser for an integer in [min, max]. */
export function intOption(min: number, max: number): (value: string) => number {
  return (value: string) => {
    if (!/^\d+$/.test(value)) throw new InvalidArgumentError(`expected an integer from ${min} to ${max}`);
    const n = Number(value);
    if (n < min || n > max) throw new InvalidArgumentError(`expected an integer from ${min} to ${max}`);
    return n;
  };
}

/** Wraps a validator that throws (e.g. a VigilError) into a commander option parser (usage error). */
export function checkedOption<T>(check: (value: string) => T): (value: string) => T {
  return (value: string) => {
    try {
      return check(value);
    } catch (err) {
      throw new InvalidArgumentError(err instanceof Error ? err.message : String(err));
    }
  };
}
