/**
 * A child process for the journal kill test: ingests distinct frames through a journaled
 * FrameIngestor, 4 in flight, as fast as it can, and prints `ACK <path> <frameId>` for every frame
 * the ingestor acknowledged (what the API would answer 202 for), until it is killed.
 * argv: <dataDir> <device JSON> <jpeg file>
 */
import { readFileSync } from 'node:fs';
import type { Device } from '../../ingest/devices.js';
import { FrameIngestor } from '../../ingest/frameIngestor.js';
import { openStore } from '../../repos/index.js';
import { uniqueJpeg } from '../../bench/lib/frames.js';

const [dataDir, deviceJson, jpegFile] = process.argv.slice(2);
const device = JSON.parse(deviceJson!) as Device;
const jpeg = readFileSync(jpegFile!);
const ingestor = new FrameIngestor(openStore(dataDir!), { maxBytes: 1 << 24, journal: true });
let next = 0;
const t0 = Date.UTC(2026, 10, 27, 0, 0, 0);
await Promise.all(
  Array.from({ length: 4 }, async () => {
    for (;;) {
      const i = next++;
      const a = await ingestor.accept(device, uniqueJpeg(jpeg, `kill-${i}`), new Date(t0 + i * 1000).toISOString());
      process.stdout.write(`ACK ${a.path} ${a.frameId}\n`);
    }
  }),
);
