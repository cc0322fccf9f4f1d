/** Format name written into every manifest; readers refuse anything else. */
export const ARCHIVE_FORMAT = 'snapworker-archive';
export const ARCHIVE_FORMAT_VERSION = 1;

export type Compression = 'zstd' | 'gzip' | 'none';

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

/** `manifest.json`, the first entry of every archive. */
export interface Manifest {
  format: typeof ARCHIVE_FORMAT;
  version: typeof ARCHIVE_FORMAT_VERSION;
  snapshotId: string;
  createdAt: string;
  source: SourceDescriptor;
  labels: Record<string, string>;
  compression: Compression;
  tool: { name: 'snapworker'; version: string };
  /** Key id of the seal when `SHA256SUMS.seal` follows the sums. */
  sealKeyId?: string;
}
