// Entry point of the writer thread (see writerThread.ts): a worker thread does not
// inherit tsx's loader from the main thread, so it registers its own.
import { register } from 'tsx/esm/api';

register();
const { serveWriterThread } = await import('./writerThreadMain.ts');
serveWriterThread();
