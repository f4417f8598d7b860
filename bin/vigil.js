#!/usr/bin/env node
// Vigil command line entry point: registers tsx (the project runs TypeScript without a build)
// and hands over to cli/main.ts.

// libuv's thread pool (default 4) carries file I/O, but also every sharp operation, every
// onnxruntime inference and DuckDB's queries, each holding a thread for its whole run: with 4,
// an fsync of the ingest API could wait behind an inference. It must be sized before first use.
process.env.UV_THREADPOOL_SIZE ??= '16';
const { register } = await import('tsx/esm/api');

register();
await import('../cli/main.ts');
