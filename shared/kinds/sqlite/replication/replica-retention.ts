import type { SignalOptions } from '../../../storage/storage-driver.js';
import { generationTime } from './replica-layout.js';
import type { ReplicaStore } from './replica-store.js';

/**
 * Removes the generations of a replica that no point at or after `cutoff` needs, and keeps every
 * point from `cutoff` on restorable: a point is restored from the newest generation whose record
 * was written by then, so every generation created at or after `cutoff` stays, and so does the
 * newest one created before it (its snapshot and segments reach into the window). Older ones go:
 * the record first, so a generation stops being chosen before any of its objects disappear. A
 * generation folder without a record (a replicator died while snapshotting) goes when its id is
 * older than `cutoff` and a complete generation is newer.
 *
 * Generations are the unit: a generation's segments before `cutoff` stay with it, since its one
 * snapshot needs all of them to reach the window.
 *
 * Resolves with the ids of the generations removed, oldest first.
 */
export async function applyReplicaRetention(store: ReplicaStore, cutoff: Date, options?: SignalOptions): Promise<string[]> {
  const complete = await store.generations(options);
  const created = new Map<string, Date>();
  for (const generation of complete) created.set(generation, new Date((await store.readGeneration(generation, options)).createdAt));
  const beforeCutoff = complete.filter((generation) => created.get(generation)! < cutoff);
  const keep = new Set(complete.filter((generation) => !beforeCutoff.includes(generation)));
  const coveringStart = beforeCutoff.at(-1);
  if (coveringStart) keep.add(coveringStart);
  const newestComplete = complete.at(-1);

  const removed: string[] = [];
  for (const { generation } of await store.generationFolders(options)) {
    if (keep.has(generation)) continue;
    const incomplete = !created.has(generation);
    // An incomplete folder newer than every complete generation may be a snapshot in progress.
    if (incomplete && (!newestComplete || generation > newestComplete || generationTime(generation) >= cutoff)) continue;
    await store.removeGeneration(generation, options);
    removed.push(generation);
  }
  return removed;
}

