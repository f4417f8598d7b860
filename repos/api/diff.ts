import { listFiles } from './read.js';
import type { RepoStore } from '../store.js';

/** What changed between two refs of repos. */
export interface DiffResult {
  added: string[];
  removed: string[];
  modified: string[];
}

/** Compares the file trees of `a` and `b` (repo@ref each; they may be different repos). */
export async function diff(store: RepoStore, a: { repo: string; ref: string }, b: { repo: string; ref: string }): Promise<DiffResult> {
  const [fa, fb] = await Promise.all([listFiles(store, a.repo, a.ref), listFiles(store, b.repo, b.ref)]);
  const ma = new Map(fa.map((f) => [f.path, f.oid]));
  const mb = new Map(fb.map((f) => [f.path, f.oid]));
  return {
    added: fb.filter((f) => !ma.has(f.path)).map((f) => f.path),
    removed: fa.filter((f) => !mb.has(f.path)).map((f) => f.path),
    modified: fb.filter((f) => ma.has(f.path) && ma.get(f.path) !== f.oid).map((f) => f.path),
  };
}
