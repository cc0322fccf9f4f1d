/** What was snapshotted, without secrets: safe to store, log and publish. */
export interface SourceDescriptor {
  /** `dir`, `nats`, `sqlite`. */
  kind: string;
  /** The source URI with any credentials removed. */
  uri: string;
  /** Lineage name: snapshots of the same name form a lineage (defaults from the URI). */
  name: string;
  /** Per-kind facts worth keeping (stream state, database page counts, include patterns, ...). */
  details?: Record<string, unknown>;
}

/**
 * What every snapshot says about itself, whatever format stores it: the archive format writes
 * it (with its own fields) as `manifest.json`; a format's reader hands it back before any entry,
 * and a restore target's `begin` gets it. Fixed before the first entry is written, so record and
 * manifest agree.
 */
export interface SnapshotManifest {
  snapshotId: string;
  /** ISO 8601, when the snapshot started. */
  createdAt: string;
  source: SourceDescriptor;
  labels: Record<string, string>;
  tool: { name: 'snapworker'; version: string };
}
