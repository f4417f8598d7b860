import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { VigilError } from '../lib/errors.js';
import { assertId } from '../lib/ids.js';
import { ensurePrivateDir } from '../lib/privateDir.js';
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
 * How stale the in-memory registry may be with respect to a change made by another process (the
 * `vigil device revoke` CLI): the file is stat'ed at most this often. A change made through this
 * instance (add, revoke) is seen at once.
 */
export const REGISTRY_RECHECK_MS = 100;

/**
 * The device registry: a JSON file under the data folder, changed only under a lock and by atomic
 * rename. Kept in memory: the file is stat'ed at most every {@link REGISTRY_RECHECK_MS} (one stat
 * shared by every request arriving meanwhile) and re-read when its identity, size or modification
 * time changed, so the CLI and a running server can share it and a revoked key is refused within
 * that bound. Authenticating a request costs no file system call in between.
 */
export class DeviceRegistry {
  private cache: { sig: string; devices: Device[]; checkedAt: number } | null = null;
  /** The check in progress, shared by concurrent callers. */
  private checking: Promise<Device[]> | null = null;
  /** Bumped by invalidate(): a check begun before must not store what it read. */
  private generation = 0;
  readonly file: string;

  constructor(dataDir: string, private readonly recheckMs = REGISTRY_RECHECK_MS) {
    this.file = path.join(dataDir, 'devices.json');
  }

  /** Every device, revoked ones included. */
  async list(): Promise<Device[]> {
    const c = this.cache;
    if (c && performance.now() - c.checkedAt < this.recheckMs) return c.devices;
    if (this.checking) return this.checking;
    const checking = this.reload().finally(() => {
      if (this.checking === checking) this.checking = null;
    });
    this.checking = checking;
    return checking;
  }

  private async reload(): Promise<Device[]> {
    const checkedAt = performance.now();
    const generation = this.generation;
    let st;
    try {
      st = await fsp.stat(this.file, { bigint: true });
    } catch {
      // No registry yet (or unreadable): no device, until the file appears.
      if (generation === this.generation) this.cache = { sig: 'absent', devices: [], checkedAt };
      return [];
    }
    // Replaced by rename (a new inode) or changed in place: either way the signature differs.
    const sig = `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
    if (this.cache?.sig === sig) {
      const devices = this.cache.devices;
      if (generation === this.generation) this.cache = { sig, devices, checkedAt };
      return devices;
    }
    const parsed = RegistrySchema.safeParse(JSON.parse(await fsp.readFile(this.file, 'utf8')));
    if (!parsed.success) throw new VigilError('E_CORRUPT', `device registry ${this.file} is malformed: ${parsed.error.issues[0]?.message}`);
    if (generation === this.generation) this.cache = { sig, devices: parsed.data.devices, checkedAt };
    return parsed.data.devices;
  }

  private async update(fn: (devices: Device[]) => Device[]): Promise<void> {
    ensurePrivateDir(path.dirname(this.file));
    await withLock(`${this.file}.lock`, async () => {
      this.invalidate();
      const devices = fn([...(await this.list())]);
      const tmp = `${this.file}.${process.pid}.tmp`;
      await fsp.writeFile(tmp, JSON.stringify({ version: 1, devices }, null, 2) + '\n', { mode: 0o600 });
      await fsp.rename(tmp, this.file);
      this.invalidate();
    });
  }

  /** Forgets the cached registry: the next list() reads the file (and waits for no check begun before). */
  private invalidate(): void {
    this.generation++;
    this.cache = null;
    this.checking = null;
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
