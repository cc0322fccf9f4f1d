import { z } from 'zod';

/**
 * `generation.json`, written after the generation's snapshot is stored: a generation without it
 * is incomplete (its replicator died while snapshotting) and is never restored from.
 */
export const generationRecordSchema = z.object({
  v: z.literal(1),
  generation: z.string(),
  /** The replica name (`replicas/<name>/`). */
  database: z.string(),
  /** The live database's path on the replicating host, for people reading the record. */
  path: z.string(),
  createdAt: z.string(),
  /** Why the generation began: `start`, or the break in the WAL chain that forced it. */
  reason: z.string(),
  pageSize: z.number().int().positive(),
  snapshot: z.object({
    key: z.string(),
    index: z.number().int().nonnegative(),
    /** WAL offset the snapshot corresponds to; 0 when the WAL was empty. */
    offset: z.number().int().nonnegative(),
    size: z.number().int().nonnegative(),
    sha256: z.string(),
    /** The WAL chain at the snapshot (absent when the WAL was empty), which the first segment continues. */
    salt1: z.number().int().optional(),
    salt2: z.number().int().optional(),
    checkpointSequence: z.number().int().optional(),
    checksum: z.tuple([z.number().int(), z.number().int()]).optional(),
  }),
});

export type GenerationRecord = z.infer<typeof generationRecordSchema>;
