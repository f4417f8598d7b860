import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { VigilError } from '../lib/errors.js';
import { assertId } from '../lib/ids.js';
import { IdSchema } from '../lib/schemas.js';
import { withLock } from '../repos/lock.js';
import { assertTimeZone } from './frameTag.js';

/** A registered camera. The key itself is never stored, only its SHA-256. */
export const DeviceSchema = z.object({
  user: IdSchema,
  device: IdSchema,
  site: IdSchema,
  tz: z.string(),
  keyId: z.string().regex(/^[0-9a-f]{12}$/),
  keyHash: z.string().regex(/^[0-9a-f]{64}$/),
  createdAt: z.string(),
  revokedAt: z.string().nullable(),
});
export type Device = z.infer<typeof DeviceSchema>;

const RegistrySchema = z.object({ version: z.literal(1), devices: z.array(DeviceSchema) });

const KEY_PATTERN = /^vk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;

function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/**
 * The device registry: a JSON file under the data folder, changed only under a lock and by atomic
 * rename, re-read when it changes on disk (so the CLI and a running server can share it).
 */
export class DeviceRegistry {
  private cache: { mtimeMs: number; devices: Device[] } | null = null;
  readonly file: string;

  constructor(dataDir: string) {
    this.file = path.join(dataDir, 'devices.json');
  }

  /** Every device, revoked ones included. */
  async list(): Promise<Device[]> {
    let st;
    try {
      st = await fsp.stat(this.file);
    } catch {
      return [];
    }
    if (this.cache?.mtimeMs === st.mtimeMs) return this.cache.devices;
    const parsed = RegistrySchema.safeParse(JSON.parse(await fsp.readFile(this.file, 'utf8')));
    if (!parsed.success) throw new VigilError('E_CORRUPT', `device registry ${this.file} is malformed: ${parsed.error.issues[0]?.message}`);
    this.cache = { mtimeMs: st.mtimeMs, devices: parsed.data.devices };
    return parsed.data.devices;
  }

  private async update(fn: (devices: Device[]) => Device[]): Promise<void> {
    await fsp.mkdir(path.dirname(this.file), { recursive: true });
    await withLock(`${this.file}.lock`, async () => {
      this.cache = null;
      const devices = fn([...(await this.list())]);
      const tmp = `${this.file}.${process.pid}.tmp`;
      await fsp.writeFile(tmp, JSON.stringify({ version: 1, devices }, null, 2) + '\n', { mode: 0o600 });
      await fsp.rename(tmp, this.file);
      this.cache = null;
    });
  }

  /**
   * Registers a device and returns its key (shown once; only its hash is kept).
   * @throws VigilError E_BAD_ID, E_BAD_INPUT, E_CONFLICT when the device is already registered and active.
   */
  async add(opts: { user: string; device: string; site?: string; tz?: string }): Promise<{ device: Device; key: string }> {
    const user = assertId('user', opts.user);
    const deviceId = assertId('device', opts.device);
    const site = assertId('site', opts.site ?? 'default');
    const tz = assertTimeZone(opts.tz ?? 'UTC');
    const keyId = randomBytes(6).toString('hex');
    const secret = randomBytes(32).toString('base64url');
    const device: Device = { user, device: deviceId, site, tz, keyId, keyHash: hashSecret(secret), createdAt: new Date().toISOString(), revokedAt: null };
    await this.update((devices) => {
      if (devices.some((d) => d.user === user && d.device === deviceId && !d.revokedAt)) {
        throw new VigilError('E_CONFLICT', `device ${user}/${deviceId} is already registered; revoke it first to issue a new key`);
      }
      return [...devices, device];
    });
    return { device, key: `vk_${keyId}_${secret}` };
  }

  /** Revokes a device's key. @throws VigilError E_NOT_FOUND */
  async revoke(user: string, deviceId: string): Promise<Device> {
    assertId('user', user);
    assertId('device', deviceId);
    let revoked: Device | undefined;
    await this.update((devices) =>
      devices.map((d) => {
        if (d.user === user && d.device === deviceId && !d.revokedAt) return (revoked = { ...d, revokedAt: new Date().toISOString() });
        return d;
      }),
    );
    if (!revoked) throw new VigilError('E_NOT_FOUND', `no active device ${user}/${deviceId}`);
    return revoked;
  }

  /**
   * The active device a key belongs to, or null (unknown, malformed or revoked key).
   * Compares hashes in constant time.
   */
  async authenticate(key: unknown): Promise<Device | null> {
    if (typeof key !== 'string') return null;
    const m = KEY_PATTERN.exec(key);
    if (!m) return null;
    const [, keyId, secret] = m;
    const d = (await this.list()).find((x) => x.keyId === keyId);
    if (!d || d.revokedAt) return null;
    const ok = timingSafeEqual(Buffer.from(d.keyHash, 'hex'), Buffer.from(hashSecret(secret!), 'hex'));
    return ok ? d : null;
  }
}
