import { z } from 'zod';
import { NOTICE_KINDS } from '../kinds/notices.js';

/**
 * `snapshots/<id>/snapshot.json`: the record of a complete snapshot. Written last, after the
 * snapshot's objects are stored and checked, so its presence is the commit marker. Read back from storage it
 * is untrusted input and parsed with `snapshotRecordSchema`.
 */
export const snapshotRecordSchema = z.object({
  v: z.literal(1),
  id: z.string().regex(/^\d{8}T\d{9}Z-[0-9a-f]{8}$/),
  formatVersion: z.literal(1),
  /**
   * The snapshot format that stored it (shared/formats/registry.ts), e.g. `archive`. Absent in
   * records written before formats had names: those are archives. Any string parses, so a format
   * this version does not know is refused with its name when the snapshot is read, not listed as damaged.
   */
  format: z.string().min(1).max(64).optional(),
  source: z.object({
    kind: z.string(),
    uri: z.string(),
    name: z.string(),
    details: z.record(z.string(), z.unknown()).optional(),
  }),
  labels: z.record(z.string(), z.string()),
  createdAt: z.string(),
  completedAt: z.string(),
  /** The archive format's stored archive; absent for other formats. */
  archive: z.object({
    key: z.string(),
    compression: z.enum(['zstd', 'gzip', 'none']),
    size: z.number().int().nonnegative(),
    /** Hex SHA-256 of the whole stored archive. */
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
    /** The same digest as `sha-256=<base64>` (the form HTTP digests and Consul use). */
    checksum: z.string(),
    parts: z
      .array(z.object({ partNumber: z.number().int(), size: z.number().int(), sha256: z.string() }))
      .optional(),
    /**
     * The entry index beside the archive (docs/archive-format.md): its key, size and SHA-256.
     * Absent in snapshots written before entry indexes (they are read whole).
     */
    index: z.object({ key: z.string(), size: z.number().int().nonnegative(), sha256: z.string().regex(/^[0-9a-f]{64}$/) }).optional(),
    /** zstd archives: where the seek table (the last skippable frame) starts, its size and SHA-256. */
    seekTable: z
      .object({ offset: z.number().int().nonnegative(), size: z.number().int().positive(), sha256: z.string().regex(/^[0-9a-f]{64}$/) })
      .optional(),
  }).optional(),
  /** The chunked format: id of the snapshot's root tree blob (docs/chunked-format.md). */
  tree: z.string().regex(/^[0-9a-f]{64}$/).optional(),
  /** The chunked format: the snapshot an incremental snapshot reused unchanged files from. */
  parent: z.string().regex(/^\d{8}T\d{9}Z-[0-9a-f]{8}$/).optional(),
  stats: z.object({
    entries: z.number().int(),
    files: z.number().int(),
    rawBytes: z.number().int(),
    storedBytes: z.number().int(),
    durationSeconds: z.number(),
  }),
  sealKeyId: z.string().optional(),
  /**
   * The repository key (`config.json` `encryption.keyId`) the snapshot is encrypted under
   * (docs/encryption.md); absent: stored in the clear.
   */
  keyId: z.string().regex(/^[0-9a-f]{16}$/).optional(),
  /**
   * Entries the snapshot could not keep exactly (shared/kinds/notices.ts): counts per kind, the
   * first ones named. Absent when there were none, and in records written before it existed.
   */
  notices: z
    .object({
      counts: z.partialRecord(z.enum(NOTICE_KINDS), z.number().int().nonnegative()),
      first: z.array(z.object({ kind: z.enum(NOTICE_KINDS), path: z.string(), reason: z.string() })),
      truncated: z.boolean(),
      /** In an encrypted repository: `first`, sealed under the data key (shared/crypto/sealed-notices.ts); `first` is then empty. */
      sealed: z.string().optional(),
    })
    .optional(),
  /** True when the snapshot left out data it should hold (an unreadable entry skipped); restic's exit code 3. */
  incomplete: z.boolean().optional(),
  tool: z.object({ name: z.string(), version: z.string() }),
  job: z.object({ id: z.string(), queue: z.string() }).optional(),
});

export type SnapshotRecord = z.infer<typeof snapshotRecordSchema>;

/** `sha-256=<base64>` from a hex digest. */
export function checksumHeader(sha256Hex: string): string {
  return `sha-256=${Buffer.from(sha256Hex, 'hex').toString('base64')}`;
}
