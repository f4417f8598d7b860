import { z } from 'zod';

/**
 * Schemas shared by more than one module. Every persisted document is defined here once;
 * TypeScript types are inferred from the schemas.
 */

/** Lowercase hex SHA-256. */
export const Sha256Schema = z.string().regex(/^[0-9a-f]{64}$/, 'must be a lowercase hex sha256');

/** A git commit id (SHA-1 hex, as isomorphic-git writes them). */
export const CommitIdSchema = z.string().regex(/^[0-9a-f]{40}$/, 'must be a 40-hex git commit id');

/** Safe identifier (users, devices, sites). Mirrors lib/ids.ts. */
export const IdSchema = z.string().regex(/^[a-z0-9][a-z0-9_]{0,62}$/, 'use a-z, 0-9 and _ (1-63 chars)');

/** Repo name: the fixed stage repos plus any safe id. */
export const RepoNameSchema = z.string().regex(/^[a-z][a-z0-9_]{0,62}$/, 'invalid repo name');

/** A reference to one commit of one repo. */
export const RepoCommitSchema = z.object({ repo: RepoNameSchema, commit: CommitIdSchema });
export type RepoCommit = z.infer<typeof RepoCommitSchema>;

/**
 * Provenance recorded in every commit message (Pachyderm-style): which commits the output was
 * computed from, the batch (global commit) id, the stage and its version, and for detection the model.
 */
export const ProvenanceSchema = z.object({
  batchId: z.string().min(1).max(128),
  stage: z.string().min(1).max(64),
  stageVersion: z.string().min(1).max(64),
  inputs: z.array(RepoCommitSchema),
  model: z.object({ name: z.string(), sha256: Sha256Schema }).optional(),
  /** Free-form extra facts (counts, config hashes). */
  extra: z.record(z.string(), z.unknown()).optional(),
});
export type Provenance = z.infer<typeof ProvenanceSchema>;

/** Pointer from a repo document to bytes in the object store. */
export const ObjectRefSchema = z.object({ sha256: Sha256Schema, size: z.number().int().nonnegative(), mediaType: z.string() });
export type ObjectRef = z.infer<typeof ObjectRefSchema>;

/** A frame as committed to the `frames` repo at `<user>-<device>/<timestamp>.json`. */
export const FrameDocSchema = z.object({
  kind: z.literal('frame'),
  frameId: Sha256Schema,
  tag: z.string(),
  user: IdSchema,
  device: IdSchema,
  site: IdSchema,
  capturedAt: z.string(),
  timestamp: z.string().regex(/^\d{8}T\d{9}Z$/),
  tz: z.string(),
  receivedAt: z.string(),
  object: ObjectRefSchema,
});
export type FrameDoc = z.infer<typeof FrameDocSchema>;

/** A frame as passed between activities: its path in the frames repo and its hash (never its bytes). */
export const FrameRefSchema = z.object({ path: z.string(), frameId: Sha256Schema, site: IdSchema });
export type FrameRef = z.infer<typeof FrameRefSchema>;
