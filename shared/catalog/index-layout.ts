import { createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';
import { isSnapshotId } from '../ids.js';
import { snapshotRecordSchema } from './snapshot-record.js';
import { snapshotSummarySchema } from './snapshot-summary.js';

/**
 * Where the catalog index lives in a repository (docs/storage.md, "Catalog index"):
 *
 *   index/catalog.json                          marker: the index covers every record
 *   index/<lineage>/<time>-<random>.json        index objects: immutable, uniquely named
 *   index/<lineage>/pending/<snapshot id>.json  a commit in flight: its record may exist
 *
 * `<lineage>` is 16 hex digits of the SHA-256 of the lineage name, so any name (any case, any
 * length) is one safe folder and `ls --source X` lists exactly one folder.
 */
export const INDEX_PREFIX = 'index/';
export const INDEX_MARKER_KEY = `${INDEX_PREFIX}catalog.json`;
const PENDING = 'pending/';

/** The folder of a lineage's index objects, with its trailing `/`. */
export function lineagePrefix(lineage: string): string {
  return `${INDEX_PREFIX}${createHash('sha256').update(lineage).digest('hex').slice(0, 16)}/`;
}

/** A fresh, unique index object key: time first so a listing reads oldest first. */
export function newIndexObjectKey(lineage: string, at = new Date()): string {
  return `${lineagePrefix(lineage)}${at.toISOString().replace(/[-:.]/g, '')}-${randomBytes(6).toString('hex')}.json`;
}

export function pendingKey(lineage: string, id: string): string {
  return `${lineagePrefix(lineage)}${PENDING}${id}.json`;
}

/** What a key under `index/` is: an index object or a pending commit of one lineage folder. */
export type IndexKey = { kind: 'object'; folder: string } | { kind: 'pending'; folder: string; id: string };

/** Classifies `key`; undefined for the marker and anything the index did not write. */
export function parseIndexKey(key: string): IndexKey | undefined {
  const match = /^(index\/[0-9a-f]{16}\/)(?:(\d{8}T\d{9}Z-[0-9a-f]{12})|pending\/([^/]+))\.json$/.exec(key);
  if (!match) return undefined;
  if (match[2]) return { kind: 'object', folder: match[1]! };
  return isSnapshotId(match[3]!) ? { kind: 'pending', folder: match[1]!, id: match[3]! } : undefined;
}

/**
 * A tombstone: the commit of snapshot `id` that completed at `completedAt` is removed. Naming the
 * commit, not only the id, means a later commit of the same id (a retried job) stays listed.
 */
export const tombstoneSchema = z.object({
  id: snapshotRecordSchema.shape.id,
  completedAt: z.string(),
  /** When it was removed (the remover's clock): tombstones are kept for a grace period after. */
  at: z.string(),
});
export type Tombstone = z.infer<typeof tombstoneSchema>;

/** One index object: summaries added and tombstones, all of one lineage. Never changed once written. */
export const indexObjectSchema = z.object({
  v: z.literal(1),
  format: z.literal('snapworker-catalog-index'),
  lineage: z.string(),
  snapshots: z.array(snapshotSummarySchema),
  removed: z.array(tombstoneSchema),
});
export type IndexObject = z.infer<typeof indexObjectSchema>;

/** `index/catalog.json`: written by `init` and by a rebuild. */
export interface IndexMarker {
  v: 1;
  format: 'snapworker-catalog';
  builtAt: string;
}
