/**
 * What each job returns (BullMQ `returnvalue`, and the CLI's `--json` output): plain JSON, stated
 * here so the published contract holds its own types. The worker's results are checked against
 * these by the compiler (`worker/job-runner.ts` returns them), so the two cannot drift apart
 * unnoticed; a field the worker adds appears here when it is documented.
 */

/** Kinds of entries a snapshot could not keep exactly (docs/directories.md, "Notices"). */
export type EntryNoticeKind = 'unsupported' | 'unreadable' | 'vanished' | 'changed' | 'unmatched';

/**
 * The record of a complete snapshot (`snapshots/<id>/snapshot.json`, docs/archive-format.md):
 * what a snapshot job returns, and what `ls --json` and `show` print.
 */
export interface SnapshotRecordResult {
  v: 1;
  /** Sorts by time; safe in paths, S3 keys and NATS subjects, e.g. `20261122T031500123Z-1a2b3c4d`. */
  id: string;
  formatVersion: 1;
  /** What was snapshotted: its kind (`dir`, `sqlite`, `nats`, ...), URI without secrets, lineage name, kind-specific details. */
  source: { kind: string; uri: string; name: string; details?: Record<string, unknown> };
  labels: Record<string, string>;
  /** ISO 8601 times. */
  createdAt: string;
  completedAt: string;
  /** The archive format: the stored archive. Absent for other formats. */
  archive?: {
    /** Storage key of the archive in the repository. */
    key: string;
    compression: 'zstd' | 'gzip' | 'none';
    /** Bytes stored. */
    size: number;
    /** Hex SHA-256 of the whole stored archive. */
    sha256: string;
    /** The same digest as `sha-256=<base64>`. */
    checksum: string;
    /** Multipart uploads: each part's size and hex SHA-256. */
    parts?: { partNumber: number; size: number; sha256: string }[];
  };
  /** The chunked format (docs/chunked-format.md): id of the snapshot's root tree blob. */
  tree?: string;
  /** The chunked format: the snapshot an incremental snapshot reused unchanged files from. */
  parent?: string;
  stats: { entries: number; files: number; rawBytes: number; storedBytes: number; durationSeconds: number };
  /** Id of the key `SHA256SUMS.seal` was made with, when sealed. */
  sealKeyId?: string;
  /** Id of the repository key the snapshot is encrypted under (docs/encryption.md), when encrypted. */
  keyId?: string;
  /** Entries the snapshot could not keep exactly: counts per kind, the first ones named. */
  notices?: {
    counts: Partial<Record<EntryNoticeKind, number>>;
    first: { kind: EntryNoticeKind; path: string; reason: string }[];
    truncated: boolean;
  };
  /** True when the snapshot left out data it should hold (an unreadable entry skipped); CLI exit 3. */
  incomplete?: boolean;
  tool: { name: string; version: string };
  /** The queued job that took it. */
  job?: { id: string; queue: string };
}

/** How a scheduled snapshot's lineage was pruned right after it (`error` when that failed). */
export interface ScheduledRetention {
  policy: string;
  kept: string[];
  removed: string[];
  removedIncomplete: string[];
  error?: string;
}

/** A snapshot job's result: its record; a snapshot run by a schedule with a retention policy also reports its lineage's prune. */
export type SnapshotJobResult = SnapshotRecordResult & { retention?: ScheduledRetention };

export interface RestoreJobResult {
  /** The snapshot restored; for a restore from a replica, the generation. */
  snapshotId: string;
  target: string;
  entries: number;
  bytes: number;
  /** Directory targets: extended attributes the target could not keep, counted, the first 100 named. */
  xattrsNotRestored?: { count: number; first: string[] };
  /** A restore from a replica: the position reached and when its last segment was read. */
  replica?: { generation: string; index: number; offset: number; segments: number; upTo: string };
}

export interface VerifyJobResult {
  snapshotId: string;
  ok: true;
  entries: number;
  files: number;
  rawBytes: number;
  storedBytes: number;
  sealed: boolean;
}

/** One complete snapshot a prune considered, with its verdict. */
export interface PruneDecisionResult {
  id: string;
  createdAt: string;
  /** The group the policy was applied in, e.g. `source=app`. */
  group: string;
  action: 'keep' | 'remove';
  /** Why it is kept ("last snapshot", "daily snapshot", "within 7d", …); empty when removed. */
  reasons: string[];
}

export interface PruneJobResult {
  dryRun: boolean;
  /** The policy in words, e.g. "keep 7 daily, 4 weekly snapshots". */
  policy: string;
  kept: string[];
  removed: string[];
  removedIncomplete: string[];
  /** Keys of objects shared between snapshots (chunked packs) that garbage collection removed; absent when none. */
  removedObjects?: string[];
  /** What garbage collection of shared objects did (or, dry, would do); absent when the repository has none (archive format). */
  garbage?: GarbageCollectionResult;
  /** Every complete snapshot considered, oldest first, with its verdict. */
  snapshots: PruneDecisionResult[];
}

/**
 * What a prune's garbage collection of shared objects did (docs/chunked-format.md, "Garbage
 * collection"): a dry run reports what it would do. Counts of pack objects; bytes of pack objects.
 */
export interface GarbageCollectionResult {
  /** Packs deleted: those marked by an earlier collection, past their grace window, and debris. */
  packsDeleted: number;
  /** Of `packsDeleted`, debris: packs no index names (a killed or failed writer's), older than the grace. */
  debrisDeleted: number;
  /** Bytes those deleted packs took. */
  bytesFreed: number;
  /** Mostly-empty packs whose live blobs were copied into new packs; deleted by a later collection. */
  packsRepacked: number;
  blobsRepacked: number;
  /** Packs no snapshot needs, marked now; a collection after the grace window deletes them. */
  packsMarked: number;
  /** Marked packs a snapshot turned out to need, listed again. */
  packsRevived: number;
  /** Index objects before and after compaction. */
  indexObjectsBefore: number;
  indexObjectsAfter: number;
}

/**
 * A replicate job runs until stopped: `replicate stop` (a cancel) ends it as a completed job with
 * this result, so a stop never counts as a failure in metrics or alerts; a worker's shutdown puts
 * it back in the queue for another worker; only a real failure fails it. Its live status is the
 * job's progress (`ReplicationStatus`).
 */
export interface ReplicateJobResult {
  v: 1;
  /** The replica name. */
  database: string;
  /** Why it ended: always `stopped by request` (the only way a replicator completes). */
  stopped: 'stopped by request';
  /** When it stopped (ISO 8601). */
  stoppedAt: string;
  /** The last shipped position: everything committed before `shippedAt` is in the replica. */
  generation?: string;
  index?: number;
  offset?: number;
  shippedAt?: string;
}

/** One snapshot a copy job copied. */
export interface CopiedSnapshotResult {
  id: string;
  /** `objects`: the stored objects byte for byte; `entries`: re-written by the target's format. */
  route: 'objects' | 'entries';
  /** The format of the copy in the target repository. */
  format: string;
  storedBytes: number;
}

export interface CopyJobResult {
  /** Repository names, as configured on the worker. */
  from: string;
  to: string;
  copied: CopiedSnapshotResult[];
  /** Snapshots the target already held (same id): left as they are. */
  skipped: string[];
}

/** One problem `check` found. */
export interface CheckProblemResult {
  /** The snapshot it concerns, when one. */
  snapshot?: string;
  /** The format whose shared objects it concerns (`chunked`), when no one snapshot. */
  format?: string;
  /** The whole line, naming its subject once: `snapshot X: …`, `chunked: pack P: …`. */
  message: string;
}

/** A check job's result; `ok` false (CLI exit 1) when it found any problem. */
export interface CheckJobResult {
  repository: string;
  ok: boolean;
  /** Complete snapshots checked for structure. */
  snapshots: number;
  /** Snapshot folders without a record (interrupted snapshots, removed by prune): not problems. */
  incomplete: number;
  /** The --read-data-subset asked for, when data was read. */
  readDataSubset?: string;
  /** Snapshots read whole and verified. */
  read: string[];
  readBytes: number;
  problemCount: number;
  /** The first 100 problems. */
  problems: CheckProblemResult[];
}

export interface JobResultByKind {
  snapshot: SnapshotJobResult;
  restore: RestoreJobResult;
  verify: VerifyJobResult;
  prune: PruneJobResult;
  replicate: ReplicateJobResult;
  copy: CopyJobResult;
  check: CheckJobResult;
}
