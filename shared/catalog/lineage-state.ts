import type { Tombstone, IndexObject } from './index-layout.js';
import type { SnapshotSummary } from './snapshot-summary.js';

/**
 * What a lineage's index objects say together: the live snapshots and every tombstone seen.
 * Objects are merged in any order with the same result (kopia's manifests merge the same way),
 * which is what lets writers append without a lock.
 */
export interface LineageState {
  /** The lineage name, from the first object that names it. */
  lineage: string | undefined;
  /** Live snapshots by id: added, and not removed by a tombstone naming the same commit. */
  snapshots: Map<string, SnapshotSummary>;
  /** Every tombstone, by `commitKey`. */
  removed: Map<string, Tombstone>;
}

/** A commit of a snapshot: its id and when its record was written (a retry may reuse the id). */
export function commitKey(commit: { id: string; completedAt: string }): string {
  return `${commit.id} ${commit.completedAt}`;
}

export function emptyLineageState(): LineageState {
  return { lineage: undefined, snapshots: new Map(), removed: new Map() };
}

/** Merges index objects: tombstones first, so a removal wins whichever object holds it. */
export function mergeIndexObjects(objects: Iterable<IndexObject>): LineageState {
  const state = emptyLineageState();
  const all = [...objects];
  for (const object of all) {
    state.lineage ??= object.lineage;
    for (const tombstone of object.removed) state.removed.set(commitKey(tombstone), tombstone);
  }
  for (const object of all) for (const summary of object.snapshots) addSnapshot(state, summary);
  return state;
}

/**
 * Adds a summary unless its commit is removed; of two commits of one id, the later one counts.
 * Returns true when it was added.
 */
export function addSnapshot(state: LineageState, summary: SnapshotSummary): boolean {
  if (state.removed.has(commitKey(summary))) return false;
  const existing = state.snapshots.get(summary.id);
  if (existing && existing.completedAt >= summary.completedAt) return false;
  state.snapshots.set(summary.id, summary);
  return true;
}

/** The live snapshots, oldest first (ids sort by time). */
export function liveSnapshots(state: LineageState): SnapshotSummary[] {
  return [...state.snapshots.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
