import type { SnapshotRecord } from '../shared/catalog/snapshot-record.js';
import type { PruneResult } from '../shared/pipeline/prune-snapshots.js';

/** How a scheduled snapshot's lineage was pruned right after it (`error` when that failed). */
export interface ScheduledRetention {
  policy: string;
  kept: string[];
  removed: string[];
  removedIncomplete: string[];
  error?: string;
}

/**
 * What each job returns (BullMQ `returnvalue`, and the CLI's `--json` output). A snapshot run by a
 * schedule with a retention policy also reports its lineage's prune.
 */
export type SnapshotJobResult = SnapshotRecord & { retention?: ScheduledRetention };

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

export type PruneJobResult = PruneResult;

/**
 * A replicate job never completes: it runs until cancelled (`replicate stop`, then it fails with
 * "cancelled by request") or goes back to the queue for another worker. Its live status is the
 * job's progress (`ReplicationStatus`).
 */
export type ReplicateJobResult = never;

export interface JobResultByKind {
  snapshot: SnapshotJobResult;
  restore: RestoreJobResult;
  verify: VerifyJobResult;
  prune: PruneJobResult;
  replicate: ReplicateJobResult;
}
