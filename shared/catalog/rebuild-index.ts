import { Readable } from 'node:stream';
import { IntegrityError, NotFoundError } from '../errors.js';
import type { SignalOptions } from '../storage/storage-driver.js';
import { INDEX_MARKER_KEY, INDEX_PREFIX, type IndexMarker, type Tombstone } from './index-layout.js';
import { listIndexFolders, readIndexObject, writeIndexObject } from './index-store.js';
import type { OnDamagedRecord, RecordStore } from './record-store.js';
import { summarize, type SnapshotSummary } from './snapshot-summary.js';

export interface RebuildOptions extends SignalOptions {
  /** Tombstones younger than this are carried into the new index (a removal may be under way). */
  graceMs: number;
  onDamaged?: OnDamagedRecord;
  /** Leave no marker when no record was found (an automatic first build of an empty repository). */
  markOnlyWhenFound?: boolean;
  now?: Date;
}

/** What a rebuild did (`snapworker catalog rebuild` prints it). */
export interface RebuildResult {
  lineages: number;
  snapshots: number;
  /** Index objects replaced (deleted after the new ones were written). */
  replaced: number;
  /** Records that are not valid records, left out of the index. */
  damaged: string[];
}

/**
 * Rebuilds the whole index from the records (the truth), restic's `repair index`: lists the
 * index objects there are, reads every record, writes one new object per lineage, then deletes
 * the objects listed at the start, and writes the marker. Objects appended after that listing
 * survive, so a snapshot committed during a rebuild is never lost; young tombstones are carried
 * over, so a snapshot removed during it does not come back. Pending commits stay for the next
 * compaction. Memory: the summaries of every snapshot (about 300 bytes each).
 */
export async function rebuildIndex(store: RecordStore, options: RebuildOptions): Promise<RebuildResult> {
  const { driver } = store;
  const now = (options.now ?? new Date()).getTime();
  const existing = [...(await listIndexFolders(driver, INDEX_PREFIX, options)).values()].flatMap((folder) => folder.objects.map((o) => o.key));

  const tombstones = new Map<string, Tombstone[]>();
  for (const key of existing) {
    let object;
    try {
      object = await readIndexObject(driver, key, options);
    } catch (err) {
      // A damaged or vanished object has nothing to carry over; the records are the truth.
      if (err instanceof IntegrityError || err instanceof NotFoundError) continue;
      throw err;
    }
    const young = object.removed.filter((t) => now - Date.parse(t.at) <= options.graceMs);
    if (young.length > 0) tombstones.set(object.lineage, [...(tombstones.get(object.lineage) ?? []), ...young]);
  }

  const damaged: string[] = [];
  const byLineage = new Map<string, SnapshotSummary[]>();
  const onDamaged: OnDamagedRecord = (id, err) => {
    damaged.push(id);
    options.onDamaged?.(id, err);
  };
  let snapshots = 0;
  for await (const record of store.records({ signal: options.signal, onDamaged })) {
    const list = byLineage.get(record.source.name);
    if (list) list.push(summarize(record));
    else byLineage.set(record.source.name, [summarize(record)]);
    snapshots++;
  }

  for (const lineage of new Set([...byLineage.keys(), ...tombstones.keys()])) {
    await writeIndexObject(
      driver,
      { v: 1, format: 'snapworker-catalog-index', lineage, snapshots: byLineage.get(lineage) ?? [], removed: tombstones.get(lineage) ?? [] },
      options,
    );
  }
  for (const key of existing) await driver.delete(key, options);
  if (snapshots > 0 || !options.markOnlyWhenFound) await writeIndexMarker(store, options);
  return { lineages: byLineage.size, snapshots, replaced: existing.length, damaged };
}

/** Marks the index as covering every record (written by `init` and by a rebuild). */
export async function writeIndexMarker(store: RecordStore, options?: SignalOptions): Promise<void> {
  const marker: IndexMarker = { v: 1, format: 'snapworker-catalog', builtAt: new Date().toISOString() };
  const body = Buffer.from(JSON.stringify(marker, null, 2) + '\n');
  await store.driver.put(INDEX_MARKER_KEY, Readable.from([body]), { ...options, size: body.length });
}
