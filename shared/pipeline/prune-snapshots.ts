import type { Repository, SnapshotFilter } from '../catalog/repository.js';
import type { SnapshotRecord } from '../catalog/snapshot-record.js';

/** What to keep. Snapshots are grouped by source name; a snapshot kept by any rule stays. */
export interface RetentionPolicy {
  /** Keep the newest N snapshots of each source. */
  keepLast?: number;
  /** Keep every snapshot younger than this many seconds. */
  keepWithinSeconds?: number;
  /**
   * Incomplete snapshots (objects without a record) older than this are removed; younger ones
   * may still be in flight. Default one hour.
   */
  incompleteGraceSeconds?: number;
}

export interface PruneRequest {
  repository: Repository;
  policy: RetentionPolicy;
  filter: SnapshotFilter;
  dryRun: boolean;
  signal: AbortSignal;
  now?: Date;
}

export interface PruneResult {
  dryRun: boolean;
  kept: string[];
  removed: string[];
  removedIncomplete: string[];
}

/**
 * Applies a retention policy and removes incomplete snapshots. Without any keep rule nothing
 * complete is removed: an empty policy must never mean "delete everything".
 */
export async function pruneSnapshots(request: PruneRequest): Promise<PruneResult> {
  const { repository, policy, signal, dryRun } = request;
  const now = request.now ?? new Date();
  const records = await repository.list(request.filter, { signal });
  const keep = new Set<string>();
  const hasRule = policy.keepLast !== undefined || policy.keepWithinSeconds !== undefined;
  for (const group of groupBySource(records).values()) {
    if (!hasRule) group.forEach((r) => keep.add(r.id));
    if (policy.keepLast !== undefined && policy.keepLast > 0) group.slice(-policy.keepLast).forEach((r) => keep.add(r.id));
    if (policy.keepWithinSeconds !== undefined) {
      const cutoff = now.getTime() - policy.keepWithinSeconds * 1000;
      group.filter((r) => Date.parse(r.createdAt) >= cutoff).forEach((r) => keep.add(r.id));
    }
  }
  const removed = records.filter((r) => !keep.has(r.id)).map((r) => r.id);

  const graceMs = (policy.incompleteGraceSeconds ?? 3600) * 1000;
  const { incomplete } = await repository.scan({ signal });
  const removedIncomplete = incomplete.filter((s) => now.getTime() - s.newestModifiedAt.getTime() > graceMs).map((s) => s.id);

  if (!dryRun) {
    for (const id of [...removed, ...removedIncomplete]) await repository.delete(id, { signal });
    // Folders without any object are invisible to the scan above; a dry run does not list them.
    removedIncomplete.push(...(await repository.sweepSnapshotLeftovers(new Date(now.getTime() - graceMs), { signal })));
  }
  return { dryRun, kept: records.filter((r) => keep.has(r.id)).map((r) => r.id), removed, removedIncomplete };
}

function groupBySource(records: SnapshotRecord[]): Map<string, SnapshotRecord[]> {
  const groups = new Map<string, SnapshotRecord[]>();
  for (const record of records) {
    const group = groups.get(record.source.name) ?? [];
    group.push(record);
    groups.set(record.source.name, group);
  }
  return groups;
}
