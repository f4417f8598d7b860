// `npm install` runs this: builds (once, cached per user) the pinned Temporal CLI and fetches the
// pinned detector model. Both are cached, so later runs take well under a second.
import path from 'node:path';
import { ensureTemporal } from './temporal.mjs';
import { fetchModel } from './fetch-model.mjs';

const projectDir = path.resolve(import.meta.dirname, '..');
try {
  const bin = ensureTemporal();
  const model = await fetchModel({ projectDir, quiet: true });
  console.log(`vigil setup: Temporal CLI ${bin}`);
  console.log(`vigil setup: model ${model.path} (sha256 ${model.sha256.slice(0, 12)}…)`);
} catch (err) {
  console.error(`vigil setup: ${err.message}`);
  process.exit(1);
}
