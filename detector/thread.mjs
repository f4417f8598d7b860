// Entry point of a detector worker thread: the project runs TypeScript through tsx, whose loader
// a worker thread does not inherit from `register()` in the main thread, so it registers its own.
import { register } from 'tsx/esm/api';

register();
const { serveDetector } = await import('./threadMain.ts');
await serveDetector();
