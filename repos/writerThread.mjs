// Entry point of the loose-object writer thread (see looseWriter.ts): a worker thread does not
// inherit tsx's loader from the main thread, so it registers its own.
import { register } from 'tsx/esm/api';

register();
const { serveWriterThread } = await import('./writerThreadMain.ts');
serveWriterThread();
