/**
 * `vigil device add|list|revoke`: manage the cameras allowed to send frames.
 */
import type { Command } from 'commander';
import { DeviceRegistry, type Device } from '../../ingest/devices.js';
import { assertTimeZone } from '../../ingest/frameTag.js';
import { printJson, printTable } from '../output.js';
import { checkedOption, config } from './common.js';

/** A device as the CLI shows it: never its key hash. */
export type PublicDevice = Omit<Device, 'keyHash'>;

/** Drops the key hash from a device record. */
export function publicDevice(d: Device): PublicDevice {
  const { keyHash: _hash, ...rest } = d;
  return rest;
}

const KEY_WARNING = 'this key is shown only once and is not stored (only its hash is); save it now';

function registry(): DeviceRegistry {
  return new DeviceRegistry(config().VIGIL_DATA);
}

/** Registers `vigil device …`. */
export function registerDevice(program: Command): void {
  const device = program.command('device').description('register, list and revoke cameras (device keys)');

  device
    .command('add')
    .description('register a camera and print its key (shown once)')
    .argument('<user>', 'user id (a-z, 0-9, _)')
    .argument('<device>', 'device id (a-z, 0-9, _)')
    .option('--site <site>', 'site id the camera belongs to', 'default')
    .option('--tz <zone>', 'IANA time zone of the camera, e.g. Europe/Paris', checkedOption(assertTimeZone), 'UTC')
    .option('--json', 'print machine-readable JSON')
    .action(async (user: string, dev: string, opts: { site: string; tz: string; json?: boolean }) => {
      const { device: d, key } = await registry().add({ user, device: dev, site: opts.site, tz: opts.tz });
      if (opts.json) {
        printJson({ device: publicDevice(d), key, warning: KEY_WARNING });
        return;
      }
      process.stdout.write(`registered ${d.user}/${d.device} (site ${d.site}, time zone ${d.tz}, key id ${d.keyId})\n`);
      process.stdout.write(`WARNING: ${KEY_WARNING}:\n`);
      process.stdout.write(`${key}\n`);
    });

  device
    .command('list')
    .description('list registered cameras (revoked ones included)')
    .option('--json', 'print machine-readable JSON')
    .action(async (opts: { json?: boolean }) => {
      const devices = (await registry().list()).map(publicDevice);
      if (opts.json) {
        printJson(devices);
        return;
      }
      printTable(
        ['USER', 'DEVICE', 'SITE', 'TZ', 'KEY ID', 'CREATED', 'REVOKED'],
        devices.map((d) => [d.user, d.device, d.site, d.tz, d.keyId, d.createdAt, d.revokedAt]),
        { empty: 'no devices registered (add one with: vigil device add <user> <device>)' },
      );
    });

  device
    .command('revoke')
    .description("revoke a camera's key (it can then be added again with a new key)")
    .argument('<user>', 'user id')
    .argument('<device>', 'device id')
    .option('--json', 'print machine-readable JSON')
    .action(async (user: string, dev: string, opts: { json?: boolean }) => {
      const d = publicDevice(await registry().revoke(user, dev));
      if (opts.json) {
        printJson(d);
        return;
      }
      process.stdout.write(`revoked ${d.user}/${d.device} (key id ${d.keyId}) at ${d.revokedAt}\n`);
    });
}
