/** Versioned, content-addressed repos with provenance (Pachyderm-style), on isomorphic-git. */
export * from './store.js';
export * from './objectStore.js';
export * from './provenance.js';
export * from './lock.js';
export * from './journal.js';
export * from './api/resolve.js';
export * from './api/commit.js';
export * from './api/read.js';
export * from './api/readMany.js';
export * from './api/objects.js';
export * from './api/walkBlobs.js';
export * from './api/log.js';
export * from './api/diff.js';
export * from './api/inspect.js';
export * from './api/batch.js';
export * from './api/fsck.js';
export * from './api/gc.js';
