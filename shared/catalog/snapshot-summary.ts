import { z } from 'zod';
import { snapshotRecordSchema, type SnapshotRecord } from './snapshot-record.js';

const record = snapshotRecordSchema.shape;

/**
 * What the catalog index keeps of a record: the fields `ls`, `latest`, `rm --all` and prune need,
 * a fraction of the record's size (no part list, no notices, no source details). Picked from the
 * record's schema, so every summary field has the record's own name and type and a record can be
 * passed wherever a summary is expected. `completedAt` also tells two commits of the same id apart
 * (a retried job writes the same id again after a withdrawn record).
 */
export const snapshotSummarySchema = z.object({
  id: record.id,
  format: record.format,
  source: record.source.pick({ kind: true, uri: true, name: true }),
  labels: record.labels,
  createdAt: record.createdAt,
  completedAt: record.completedAt,
  archive: record.archive.unwrap().pick({ key: true, compression: true, size: true }).optional(),
  stats: record.stats,
  incomplete: record.incomplete,
});

export type SnapshotSummary = z.infer<typeof snapshotSummarySchema>;

/** The summary of `record` (a fresh object, sharing nothing mutable with it). */
export function summarize(record: SnapshotRecord): SnapshotSummary {
  const { id, format, source, labels, createdAt, completedAt, archive, stats, incomplete } = record;
  return {
    id,
    ...(format ? { format } : {}),
    source: { kind: source.kind, uri: source.uri, name: source.name },
    labels: { ...labels },
    createdAt,
    completedAt,
    ...(archive ? { archive: { key: archive.key, compression: archive.compression, size: archive.size } } : {}),
    stats: { ...stats },
    ...(incomplete ? { incomplete } : {}),
  };
}
