import { IntegrityError, NotFoundError } from '../errors.js';
import { mapOrdered } from '../fsutil/map-ordered.js';
import type { SignalOptions } from '../storage/storage-driver.js';
import { lineagePrefix, type Tombstone } from './index-layout.js';
import { INDEX_READ_CONCURRENCY, readIndexObjects, writeIndexObject, type IndexFolder } from './index-store.js';
import { addSnapshot, commitKey, liveSnapshots, mergeIndexObjects, type LineageState } from './lineage-state.js';
import type { RecordStore } from './record-store.js';
import type { SnapshotRecord } from './snapshot-record.js';
import { summarize } from './snapshot-summary.js';

export interface CompactOptions extends SignalOptions {
  /**
   * Tombstones younger than this are carried over unchanged, and pending commits younger than
   * this without a record are left alone (their snapshot may still be committing).
   */
  graceMs: number;
  now?: Date;
}

/** What one compaction did, for `catalog rebuild --json`, tests and logs. */
export interface CompactResult {
  lineage: string | undefined;
  /** Index objects merged into one (and then deleted). */
  merged: number;
  /** Live snapshots in the merged object. */
  snapshots: number;
  /** Records found through a pending commit (a crash between record and index append). */
  healed: string[];
  /** Entries dropped because their record is gone (removed outside snapworker). */
  dropped: string[];
  /** Snapshots whose removal never finished (tombstone older than the grace, record still there). */
  restored: string[];
}

/**
 * Merges every index object of one lineage folder into one (kopia's manifest compaction): reads
 * them, folds in pending commits whose record exists, settles old tombstones, drops entries whose
 * record is gone, writes the merged object, and only then deletes what it merged. No lock: a
 * concurrent writer's new object is not in `folder` and so never deleted; two compactions of the
 * same objects write the same content twice, which merging reads as once.
 *
 * Resolves undefined when an object vanished while reading (another compaction got there first).
 */
export async function compactLineage(store: RecordStore, folder: IndexFolder, options: CompactOptions): Promise<CompactResult | undefined> {
  const { driver } = store;
  const now = (options.now ?? new Date()).getTime();
  let state: LineageState;
  try {
    state = mergeIndexObjects(await readIndexObjects(driver, folder.objects.map((o) => o.key), options));
  } catch (err) {
    if (err instanceof NotFoundError) return undefined;
    throw err;
  }
  const result: CompactResult = { lineage: state.lineage, merged: folder.objects.length, snapshots: 0, healed: [], dropped: [], restored: [] };

  const settledPending: string[] = [];
  for (const { id, info } of folder.pending) {
    if (!state.snapshots.has(id)) {
      const record = await recordOrUndefined(store, id, options);
      if (record) {
        state.lineage ??= record.source.name;
        if (addSnapshot(state, summarize(record))) result.healed.push(id);
      } else if (now - info.modifiedAt.getTime() <= options.graceMs) continue;
    }
    settledPending.push(info.key);
  }

  const keptTombstones: Tombstone[] = [];
  for (const tombstone of state.removed.values()) {
    if (now - Date.parse(tombstone.at) <= options.graceMs) {
      keptTombstones.push(tombstone);
      continue;
    }
    // Old enough that its removal should be over: a record of this very commit still there means
    // the remover died between tombstone and record delete. The record is the truth.
    const record = await recordOrUndefined(store, tombstone.id, options);
    if (record && commitKey(record) === commitKey(tombstone)) {
      state.removed.delete(commitKey(tombstone));
      if (addSnapshot(state, summarize(record))) result.restored.push(record.id);
    }
  }

  const healedOrRestored = new Set([...result.healed, ...result.restored]);
  const toCheck = [...state.snapshots.keys()].filter((id) => !healedOrRestored.has(id));
  for await (const { id, exists } of mapOrdered(toCheck, INDEX_READ_CONCURRENCY, async (id) => ({ id, exists: await store.hasRecord(id, options) }))) {
    if (!exists) {
      state.snapshots.delete(id);
      result.dropped.push(id);
    }
  }

  const snapshots = liveSnapshots(state);
  result.snapshots = snapshots.length;
  if (state.lineage !== undefined && (snapshots.length > 0 || keptTombstones.length > 0)) {
    if (lineagePrefix(state.lineage) !== folder.folder) throw new IntegrityError(`index folder ${folder.folder} holds lineage ${state.lineage}, which belongs elsewhere`);
    await writeIndexObject(driver, { v: 1, format: 'snapworker-catalog-index', lineage: state.lineage, snapshots, removed: keptTombstones }, options);
  }
  for (const object of folder.objects) await driver.delete(object.key, options);
  // Pending markers go last: until the merged object is written they are what finds their records.
  for (const key of settledPending) await driver.delete(key, options);
  return result;
}

async function recordOrUndefined(store: RecordStore, id: string, options: SignalOptions): Promise<SnapshotRecord | undefined> {
  try {
    return await store.getRecord(id, options);
  } catch (err) {
    // A damaged record is not indexed; `catalog rebuild` and `ls` of the records name it.
    if (err instanceof NotFoundError || err instanceof IntegrityError) return undefined;
    throw err;
  }
}
