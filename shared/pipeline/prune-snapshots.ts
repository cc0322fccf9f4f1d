import type { GarbageCollectionResult } from '../../jobs/results.js';
import type { Repository, SnapshotFilter } from '../catalog/repository.js';
import { allFormats } from '../formats/registry.js';
import { applyRetentionPolicy } from '../retention/apply-policy.js';
import { groupSnapshots, type GroupKey } from '../retention/group-snapshots.js';
import { describePolicy, type RetentionPolicy } from '../retention/retention-policy.js';

export interface PruneRequest {
  repository: Repository;
  policy: RetentionPolicy;
  /** Default `['source']`: each lineage on its own. */
  groupBy?: readonly GroupKey[];
  filter: SnapshotFilter;
  /**
   * Incomplete snapshots (objects without a record) whose newest object is older than this are
   * removed; younger ones may still be in flight. Default one hour.
   */
  incompleteGraceSeconds?: number;
  dryRun: boolean;
  signal: AbortSignal;
  now?: Date;
}

/** One line of `prune --dry-run`, like `restic forget --dry-run`. */
export interface PruneDecision {
  id: string;
  createdAt: string;
  /** The group the policy was applied in, e.g. `source=app`. */
  group: string;
  action: 'keep' | 'remove';
  /** Why it is kept ("last snapshot", "daily snapshot", "within 7d", …); empty when removed. */
  reasons: string[];
}

export interface PruneResult {
  dryRun: boolean;
  /** The policy in words, e.g. "keep 7 daily, 4 weekly snapshots". */
  policy: string;
  kept: string[];
  removed: string[];
  removedIncomplete: string[];
  /**
   * Objects no kept snapshot references any more, removed by formats whose snapshots share objects
   * (the chunked format's packs; the archive format keeps each snapshot in its folder). Absent when there were none.
   */
  removedObjects?: string[];
  /** What that garbage collection did (or, dry, would do); absent when no format has shared objects here. */
  garbage?: GarbageCollectionResult;
  /** Every complete snapshot considered, oldest first, with its verdict. */
  snapshots: PruneDecision[];
}

/**
 * Applies a retention policy per group (internal/data/snapshot_policy.go semantics, see
 * `applyRetentionPolicy`) and removes incomplete snapshots. A policy without any keep rule
 * removes nothing complete: an empty policy must never mean "delete everything".
 *
 * A snapshot committed while prune runs is safe: only records listed at the start are judged,
 * and an incomplete snapshot is removed only when its record is still missing just before.
 *
 * @throws InvalidInputError for a bad time zone, duration or label selector (before removing anything).
 */
export async function pruneSnapshots(request: PruneRequest): Promise<PruneResult> {
  const { repository, policy, signal, dryRun } = request;
  const now = request.now ?? new Date();
  // From the catalog index: one lineage's objects when the filter names a source.
  const records = await repository.index.snapshots(request.filter, { signal });
  const decisions: PruneDecision[] = [];
  for (const [group, members] of groupSnapshots(records, request.groupBy ?? ['source'])) {
    const candidates = members.map((record) => ({ id: record.id, time: new Date(record.createdAt), labels: record.labels, record }));
    for (const { snapshot, keep, reasons } of applyRetentionPolicy(candidates, policy, now)) {
      decisions.push({ id: snapshot.id, createdAt: snapshot.record.createdAt, group, action: keep ? 'keep' : 'remove', reasons });
    }
  }
  decisions.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const removed = decisions.filter((d) => d.action === 'remove').map((d) => d.id);
  const removedIds = new Set(removed);

  const graceMs = (request.incompleteGraceSeconds ?? 3600) * 1000;
  const { incomplete } = await repository.scan({ signal });
  const stale = incomplete.filter((s) => now.getTime() - s.newestModifiedAt.getTime() > graceMs).map((s) => s.id);

  const removedIncomplete: string[] = [];
  const byId = new Map(records.map((record) => [record.id, record]));
  if (dryRun) removedIncomplete.push(...stale);
  else {
    // Every format keeps a snapshot's own objects under its folder, which this removes (index
    // tombstones first, batched per lineage); objects formats share are collected below.
    await repository.deleteSnapshots(records.filter((record) => removedIds.has(record.id)), { signal });
    for (const id of stale) {
      // A snapshot that committed since the scan is complete now, not debris.
      if (await repository.hasRecord(id, { signal })) continue;
      await repository.delete(id, { signal });
      removedIncomplete.push(id);
    }
    // Folders without any object are invisible to the scan above; a dry run does not list them.
    removedIncomplete.push(...(await repository.sweepSnapshotLeftovers(new Date(now.getTime() - graceMs), { signal })));
  }
  const { removed: removedObjects, summary: garbage } = await collectGarbage(request, now, graceMs);
  return {
    dryRun,
    policy: describePolicy(policy),
    kept: decisions.filter((d) => d.action === 'keep').map((d) => d.id),
    removed,
    removedIncomplete,
    ...(removedObjects.length > 0 ? { removedObjects } : {}),
    ...(garbage ? { garbage } : {}),
    snapshots: decisions,
  };
}

/**
 * Lets each format whose snapshots share objects drop what no snapshot references. Every record
 * of the repository counts as live, not only the filtered ones: a prune of one lineage must not
 * take objects another lineage still uses.
 */
async function collectGarbage(request: PruneRequest, now: Date, graceMs: number): Promise<{ removed: string[]; summary?: GarbageCollectionResult }> {
  const collectors = allFormats().filter((format) => format.collectGarbage);
  if (collectors.length === 0) return { removed: [] };
  const { repository, signal, dryRun } = request;
  const live = await repository.list({}, { signal });
  const removed: string[] = [];
  let summary: GarbageCollectionResult | undefined;
  for (const format of collectors) {
    const collected = await format.collectGarbage!(repository, { live, olderThan: new Date(now.getTime() - graceMs), dryRun, signal });
    if (!collected) continue;
    removed.push(...collected.removed);
    summary = summary ? addCounts(summary, collected.summary) : collected.summary;
  }
  return { removed, ...(summary ? { summary } : {}) };
}

/** Two formats' counts added up (one format collects today; the seam allows more). */
function addCounts(a: GarbageCollectionResult, b: GarbageCollectionResult): GarbageCollectionResult {
  const sum = { ...a };
  for (const key of Object.keys(b) as (keyof GarbageCollectionResult)[]) sum[key] += b[key];
  return sum;
}
