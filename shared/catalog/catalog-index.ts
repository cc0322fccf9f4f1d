import { IntegrityError, NotFoundError } from '../errors.js';
import { mapOrdered } from '../fsutil/map-ordered.js';
import type { SignalOptions } from '../storage/storage-driver.js';
import { compactLineage, type CompactResult } from './compact-lineage.js';
import { INDEX_MARKER_KEY, INDEX_PREFIX, lineagePrefix, newIndexObjectKey, pendingKey, type IndexObject, type Tombstone } from './index-layout.js';
import { listIndexFolders, putIndexObject, readIndexObjects, writeIndexObject, type IndexFolder } from './index-store.js';
import { addSnapshot, liveSnapshots, mergeIndexObjects, type LineageState } from './lineage-state.js';
import { rebuildIndex, writeIndexMarker, type RebuildResult } from './rebuild-index.js';
import type { OnDamagedRecord, RecordStore } from './record-store.js';
import { matchesFilter, type SnapshotFilter } from './snapshot-filter.js';
import type { SnapshotRecord } from './snapshot-record.js';
import { summarize, type SnapshotSummary } from './snapshot-summary.js';

export interface CatalogIndexOptions {
  /** A lineage is compacted when an append leaves more index objects than this. Default 16 (kopia's). */
  compactAt?: number;
  /**
   * How long a tombstone is kept after its removal, and how long a pending commit without a
   * record is left alone: longer than any commit or removal takes. Default 1 hour.
   */
  graceSeconds?: number;
}

const DEFAULTS: Required<CatalogIndexOptions> = { compactAt: 16, graceSeconds: 3600 };

/** Times a lineage is listed again when a concurrent compaction deleted an object mid-read. */
const READ_ATTEMPTS = 5;

/**
 * The catalog index of a repository: per lineage, append-only, immutable, uniquely named index
 * objects holding snapshot summaries and tombstones, compacted when there are many (the protocol
 * is in docs/storage.md, "Catalog index"). `ls --source X` and `latest` read one lineage's few
 * objects instead of every record. The records stay the truth:
 *
 * - a commit writes a pending marker, the record, then its index entry, then clears the marker;
 *   a crash in between leaves the marker, through which readers find the record (healing);
 * - a removal appends a tombstone before deleting the record;
 * - compaction drops entries whose record is gone and restores those whose removal died;
 * - a repository without the index marker (older than the index) is indexed from its records on
 *   first use, and `rebuild` does that on demand.
 */
export class CatalogIndex {
  private readonly options: Required<CatalogIndexOptions>;
  /** Set once the marker was seen: the index then covers every record. */
  private built = false;
  private building: Promise<void> | undefined;

  constructor(
    private readonly store: RecordStore,
    options: CatalogIndexOptions = {},
  ) {
    this.options = { ...DEFAULTS, ...options };
    if (!Number.isInteger(this.options.compactAt) || this.options.compactAt < 2) throw new RangeError(`compactAt must be an integer of 2 or more, got ${this.options.compactAt}`);
  }

  private get graceMs(): number {
    return this.options.graceSeconds * 1000;
  }

  /**
   * Before a record is written: marks its commit as pending, so a crash after the record is
   * healed. The marker holds the index object `committed` will need (readers go by the marker's
   * name only), so that on storage that can rename, the commit's index entry is the marker renamed.
   */
  async committing(record: SnapshotRecord, options?: SignalOptions): Promise<void> {
    await putIndexObject(this.store.driver, pendingKey(record.source.name, record.id), commitObject(record), options);
  }

  /**
   * After a record is written: its index entry, then the pending marker cleared. Where the
   * storage renames (a filesystem), both are one step: the marker becomes an index object, which
   * saves a put (temp file, fsync, rename, folder fsync) and a delete per commit; the rename
   * itself needs no fsync (see below). Elsewhere, and
   * when a compaction settled the marker meanwhile, a new object is appended and the marker deleted.
   */
  async committed(record: SnapshotRecord, options?: SignalOptions): Promise<void> {
    const lineage = record.source.name;
    const marker = pendingKey(lineage, record.id);
    if (this.store.driver.rename) {
      try {
        // Not made durable here (no folder fsync): until the rename is on disk, a crash leaves
        // the marker in place instead, through which every reader finds the record, and the
        // next compaction settles it. The commit was durable once the record was.
        await this.store.driver.rename(marker, newIndexObjectKey(lineage), { ...options, durable: false });
        await this.compactIfLong(lineage, options);
        return;
      } catch (err) {
        if (!(err instanceof NotFoundError)) throw err;
      }
    }
    await this.append(lineage, [summarize(record)], [], options);
    await this.store.driver.delete(marker, options);
  }

  /** After a record put failed and left no record: removes the pending marker `committing` wrote. */
  async abandoned(record: SnapshotRecord, options?: SignalOptions): Promise<void> {
    await this.store.driver.delete(pendingKey(record.source.name, record.id), options);
  }

  /**
   * Before records are deleted: appends tombstones for these commits, one object per lineage, so
   * they stop being listed before any of their data goes.
   */
  async forget(snapshots: readonly SnapshotSummary[], options?: SignalOptions): Promise<void> {
    const at = new Date().toISOString();
    const byLineage = new Map<string, Tombstone[]>();
    for (const { id, completedAt, source } of snapshots) {
      byLineage.set(source.name, [...(byLineage.get(source.name) ?? []), { id, completedAt, at }]);
    }
    for (const [lineage, removed] of byLineage) await this.append(lineage, [], removed, options);
  }

  /**
   * Writes one new index object for `lineage`, then compacts the lineage when it has more than
   * `compactAt` objects. A failed compaction is not the caller's failure: the object is written,
   * the index only longer, and the next append tries again.
   */
  async append(lineage: string, snapshots: SnapshotSummary[], removed: Tombstone[], options?: SignalOptions): Promise<void> {
    await writeIndexObject(this.store.driver, { v: 1, format: 'snapworker-catalog-index', lineage, snapshots, removed }, options);
    await this.compactIfLong(lineage, options);
  }

  /** Compacts `lineage` when it holds more than `compactAt` objects; a failure is not the caller's (see `append`). */
  private async compactIfLong(lineage: string, options?: SignalOptions): Promise<void> {
    try {
      const folder = (await listIndexFolders(this.store.driver, lineagePrefix(lineage), options)).get(lineagePrefix(lineage));
      if (folder && folder.objects.length > this.options.compactAt) await compactLineage(this.store, folder, { ...options, graceMs: this.graceMs });
    } catch (err) {
      if (options?.signal?.aborted) throw err;
    }
  }

  /**
   * Summaries of the snapshots matching `filter`, oldest first. With `filter.source` one lineage
   * is read (one listing, its objects, and a record per pending commit); without, every lineage.
   * @throws IntegrityError when an index object is damaged (naming it and `catalog rebuild`).
   */
  async snapshots(filter: SnapshotFilter = {}, options?: SignalOptions): Promise<SnapshotSummary[]> {
    await this.ensureBuilt(options);
    const prefix = filter.source !== undefined ? lineagePrefix(filter.source) : INDEX_PREFIX;
    const folders = await listIndexFolders(this.store.driver, prefix, options);
    const found: SnapshotSummary[] = [];
    for await (const state of mapOrdered(folders.values(), 4, (folder) => this.readLineage(folder, options))) {
      for (const summary of liveSnapshots(state)) if (matchesFilter(summary, filter)) found.push(summary);
    }
    return found.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /**
   * Compacts one lineage, or every lineage, whatever the number of objects (`catalog rebuild`
   * does more; this is for maintenance and tests).
   */
  async compact(lineage?: string, options?: SignalOptions): Promise<CompactResult[]> {
    const folders = await listIndexFolders(this.store.driver, lineage === undefined ? INDEX_PREFIX : lineagePrefix(lineage), options);
    const results: CompactResult[] = [];
    for (const folder of folders.values()) {
      const result = await compactLineage(this.store, folder, { ...options, graceMs: this.graceMs });
      if (result) results.push(result);
    }
    return results;
  }

  /** Rebuilds the index from the records (`snapworker catalog rebuild`); see `rebuildIndex`. */
  async rebuild(options?: SignalOptions & { onDamaged?: OnDamagedRecord }): Promise<RebuildResult> {
    const result = await rebuildIndex(this.store, { ...options, graceMs: this.graceMs });
    this.built = true;
    return result;
  }

  /** Marks a new, empty repository's index as complete (`init`). */
  async markBuilt(options?: SignalOptions): Promise<void> {
    await writeIndexMarker(this.store, options);
    this.built = true;
  }

  /**
   * Builds the index from the records once when the repository has none yet (made before the
   * index existed). Concurrent callers in this process share the build; another process building
   * at the same time writes the same entries, which merging reads as once.
   */
  private async ensureBuilt(options?: SignalOptions): Promise<void> {
    if (this.built) return;
    try {
      await this.store.driver.head(INDEX_MARKER_KEY, options);
      this.built = true;
      return;
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
    }
    this.building ??= rebuildIndex(this.store, { ...options, graceMs: this.graceMs, markOnlyWhenFound: true, onDamaged: () => {} })
      .then((result) => {
        this.built = result.snapshots > 0;
      })
      .finally(() => {
        this.building = undefined;
      });
    await this.building;
  }

  /**
   * The merged state of one lineage folder, with pending commits whose record exists added
   * (read only: the next compaction writes them into the index).
   */
  private async readLineage(folder: IndexFolder, options?: SignalOptions): Promise<LineageState> {
    let current = folder;
    for (let attempt = 1; ; attempt++) {
      try {
        const state = mergeIndexObjects(await readIndexObjects(this.store.driver, current.objects.map((o) => o.key), options));
        for (const { id } of current.pending) {
          if (state.snapshots.has(id)) continue;
          const record = await this.store.getRecord(id, options).catch((err: unknown) => {
            if (err instanceof NotFoundError || err instanceof IntegrityError) return undefined; // still committing, or failed
            throw err;
          });
          if (record) addSnapshot(state, summarize(record));
        }
        return state;
      } catch (err) {
        // An object listed a moment ago was merged and deleted by a compaction: list again.
        if (!(err instanceof NotFoundError) || attempt >= READ_ATTEMPTS) throw err;
        current = (await listIndexFolders(this.store.driver, current.folder, options)).get(current.folder) ?? { folder: current.folder, objects: [], pending: [] };
      }
    }
  }
}

/** The index object of one commit: the record's summary, no tombstones. */
function commitObject(record: SnapshotRecord): IndexObject {
  return { v: 1, format: 'snapworker-catalog-index', lineage: record.source.name, snapshots: [summarize(record)], removed: [] };
}
