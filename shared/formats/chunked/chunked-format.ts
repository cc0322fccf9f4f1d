import type { Repository } from '../../catalog/repository.js';
import type { SnapshotRecord } from '../../catalog/snapshot-record.js';
import { IntegrityError, InvalidInputError, NotFoundError } from '../../errors.js';
import { EntryVanishedError } from '../../snapshot/entry.js';
import { EntryTracker } from '../archive/safe-path.js';
import type {
  CheckFormatOptions,
  CollectedGarbage,
  CollectGarbageOptions,
  FindParentRequest,
  ListedEntry,
  OpenSnapshotRequest,
  SnapshotFormat,
  SnapshotParent,
  SnapshotReader,
  WriteSnapshotRequest,
  WrittenSnapshot,
} from '../snapshot-format.js';
import { ChunkedSnapshotReader } from './chunked-reader.js';
import { saveFile } from './file-saver.js';
import { ParentTree } from './parent-tree.js';
import { LiveBlobSet, markLiveBlobs } from './live-blobs.js';
import { checkStore } from './store/check-store.js';
import { openChunkedStore } from './open-store.js';
import { collectGarbage } from './store/garbage-collection.js';
import { packKey } from './store/store-layout.js';
import type { BlobStore } from './store/blob-store.js';
import { TreeBuilder } from './tree-builder.js';
import { headerOf } from './tree-node.js';
import { walkTree } from './tree-walk.js';

export const CHUNKED_FORMAT = 'chunked';

/**
 * The chunked format (docs/chunked-format.md): files cut into content-defined chunks, stored once
 * per repository as blobs in shared packs (shared/formats/chunked/store/), directories as tree
 * objects, and the record pointing at the root tree (`tree`). Incremental: with a parent
 * snapshot, unchanged files are not read. Deleting a snapshot removes its record only; prune's
 * garbage collection removes blobs no record reaches.
 */
export const chunkedFormat: SnapshotFormat = {
  name: CHUNKED_FORMAT,

  async write(request: WriteSnapshotRequest): Promise<WrittenSnapshot> {
    const { repository, signal, progress } = request;
    const parent = request.parent instanceof ChunkedParent ? request.parent.tree : undefined;
    const chunked = await openChunkedStore(repository, signal);
    const { store } = chunked;
    try {
      let storedBytes = 0;
      const saveTree = async (bytes: Buffer) => {
        const saved = await store.save('tree', bytes, { signal });
        storedBytes += saved.storedBytes;
        return saved.id;
      };
      const tree = new TreeBuilder(saveTree);
      const tracker = new EntryTracker();
      const stats = { entries: 0, files: 0, rawBytes: 0, reusedFiles: 0 };
      for await (const entry of request.entries) {
        signal.throwIfAborted();
        tracker.add(entry);
        if (entry.type === 'directory') await tree.addDirectory(entry);
        else if (entry.type !== 'file') await tree.addLeaf(entry, undefined);
        else {
          let content = await parent?.reusable(entry);
          if (content) {
            stats.reusedFiles += 1;
            if (!entry.progressCounted) progress.addBytes(entry.size);
            progress.addStored(0, entry.size); // unchanged since the parent: not read, nothing stored
          } else {
            const body = entry.bytes !== undefined && !entry.sparse ? entry.bytes : await openBody(entry);
            if (body === undefined) {
              tracker.forget(entry.path); // gone before it was read: left out, as the archive writer does
              continue;
            }
            const onBytes = entry.progressCounted ? () => {} : (n: number) => progress.addBytes(n);
            const { savedBytes, dedupedBytes } = store.stats;
            const saved = await saveFile(chunked, entry, body, { signal, onBytes });
            content = saved.content;
            storedBytes += saved.storedBytes;
            const deduped = store.stats.dedupedBytes - dedupedBytes;
            progress.addStored(store.stats.savedBytes - savedBytes - deduped, deduped);
          }
          await tree.addLeaf(entry, content);
          stats.files += 1;
          stats.rawBytes += entry.size;
        }
        stats.entries += 1;
        progress.addEntries(1);
      }
      const root = await tree.finish();
      // Packs, then the index naming them: only then may a record point at the root.
      await store.flush({ signal });
      return {
        fields: { tree: root, ...(request.parent ? { parent: request.parent.snapshotId } : {}), ...(chunked.cipher.keyId ? { keyId: chunked.cipher.keyId } : {}) },
        stats: { entries: stats.entries, files: stats.files, rawBytes: stats.rawBytes, storedBytes },
      };
    } finally {
      await store.close();
    }
  },

  async findParent(request: FindParentRequest): Promise<SnapshotParent | undefined> {
    const { repository, signal } = request;
    let record: SnapshotRecord | undefined;
    if (request.parent !== undefined) {
      record = await repository.resolve(request.parent, {}, { signal });
      if (record.format !== CHUNKED_FORMAT) throw new InvalidInputError(`parent snapshot ${record.id} is stored in format ${record.format ?? 'archive'}, not chunked`);
      if (record.source.name !== request.source.name || record.source.kind !== request.source.kind) {
        throw new InvalidInputError(`parent snapshot ${record.id} is of ${record.source.kind} source ${record.source.name}, not of ${request.source.kind} source ${request.source.name}`);
      }
    } else {
      const lineage = await repository.index.snapshots({ source: request.source.name }, { signal });
      for (let i = lineage.length - 1; i >= 0 && !record; i--) {
        const candidate = lineage[i]!;
        if (candidate.format !== CHUNKED_FORMAT || candidate.source.kind !== request.source.kind) continue;
        record = await repository.getRecord(candidate.id, { signal }).catch((err: unknown) => {
          if (err instanceof NotFoundError || err instanceof IntegrityError) return undefined; // gone or damaged: an older one does
          throw err;
        });
      }
      if (!record) return undefined;
    }
    const { store } = await openChunkedStore(repository, signal);
    return new ChunkedParent(store, new ParentTree(store, record.id, rootOf(record), signal));
  },

  async open(request: OpenSnapshotRequest): Promise<SnapshotReader> {
    const { repository, record, signal, progress } = request;
    const root = rootOf(record);
    const { store } = await openChunkedStore(repository, signal);
    return new ChunkedSnapshotReader(store, record, root, { signal, progress, select: request.select });
  },

  async listEntries(request: OpenSnapshotRequest): Promise<AsyncIterable<ListedEntry>> {
    const { repository, record, signal } = request;
    const root = rootOf(record);
    const { store } = await openChunkedStore(repository, signal);
    return (async function* () {
      try {
        const tracker = new EntryTracker();
        for await (const { path, node } of walkTree(store, root, { signal, where: `snapshot ${record.id}` })) {
          const header = headerOf(path, node);
          tracker.add(header);
          if (request.select && !request.select(path)) continue;
          yield node.sha256 !== undefined ? { ...header, sha256: node.sha256 } : header;
        }
      } finally {
        await store.close();
      }
    })();
  },

  requiredKeys() {
    // Blobs live in shared packs found through the index; the store's collection never removes
    // a pack younger than its grace window, which covers a snapshot between its flush and its record.
    return [];
  },

  async delete(repository: Repository, record: SnapshotRecord, options) {
    // The record (and the snapshot's folder, which holds nothing else); blobs stay for garbage collection.
    await repository.delete(record.id, options);
  },

  async collectGarbage(repository: Repository, options: CollectGarbageOptions): Promise<CollectedGarbage | undefined> {
    const signal = options.signal ?? new AbortController().signal;
    const records = options.live.filter((record) => record.format === CHUNKED_FORMAT);
    // A repository never initialised for this format has no store to collect.
    if (!(await repository.configuration({ signal }))?.chunked) return undefined;
    const { store, cipher } = await openChunkedStore(repository, signal);
    let live;
    try {
      live = await markLiveBlobs(store, records, signal);
    } finally {
      await store.close();
    }
    const report = await collectGarbage(repository, { cipher, live: (id) => live.has(id), olderThan: options.olderThan, dryRun: options.dryRun, signal });
    return {
      removed: report.deleted.map(packKey),
      summary: {
        packsDeleted: report.deleted.length,
        debrisDeleted: report.debris.length,
        bytesFreed: report.bytesDeleted,
        packsRepacked: report.repacked.length,
        blobsRepacked: report.blobsRepacked,
        packsMarked: report.marked.length,
        packsRevived: report.revived.length,
        indexObjectsBefore: report.indexObjectsBefore,
        indexObjectsAfter: report.indexObjectsAfter,
      },
    };
  },

  async check(repository: Repository, options: CheckFormatOptions): Promise<string[]> {
    const { signal = new AbortController().signal, progress } = options;
    if (!(await repository.configuration({ signal }))?.chunked) return [];
    const { store, cipher } = await openChunkedStore(repository, signal);
    const problems: string[] = [];
    try {
      // Every blob a snapshot needs is indexed: trees loaded (and checked), chunks looked up.
      // A subtree met before (shared, or unchanged since the last snapshot) is not walked again.
      const seenTrees = new LiveBlobSet();
      for (const record of options.records.filter((r) => r.format === CHUNKED_FORMAT)) {
        try {
          const walk = walkTree(store, rootOf(record), {
            signal,
            where: `snapshot ${record.id}`,
            descend: (_path, node) => {
              if (seenTrees.has(node.tree!)) return false;
              seenTrees.add(node.tree!);
              return true;
            },
          });
          for await (const { path, node } of walk) {
            progress?.addEntries(1);
            for (const chunk of node.chunks ?? []) if (!store.has(chunk)) problems.push(`snapshot ${record.id}: ${path}: chunk ${chunk} is in no index`);
          }
        } catch (err) {
          if (!(err instanceof IntegrityError || err instanceof NotFoundError)) throw err;
          problems.push(err.message);
        }
      }
    } finally {
      await store.close();
    }
    // Then the store itself: indexed packs present with their sizes, headers agreeing with the index.
    const report = await checkStore(repository, { cipher, signal });
    return [...problems, ...report.problems];
  },
};

/** The parent an incremental chunked snapshot reuses files from; owns the store its trees are read through. */
class ChunkedParent implements SnapshotParent {
  constructor(
    private readonly store: BlobStore,
    readonly tree: ParentTree,
  ) {}

  get snapshotId(): string {
    return this.tree.snapshotId;
  }

  isUnchanged: SnapshotParent['isUnchanged'] = (entry) => this.tree.isUnchanged(entry);

  close(): Promise<void> {
    return this.store.close();
  }
}

/** The record's root tree id. @throws IntegrityError when a chunked record has none. */
function rootOf(record: SnapshotRecord): string {
  if (record.tree === undefined) throw new IntegrityError(`snapshot ${record.id}: chunked record without a root tree`);
  return record.tree;
}

/** A file's stream, or undefined when the source found it gone (it reported that itself). */
async function openBody(entry: WriteSnapshotRequest['entries'] extends AsyncIterable<infer E> ? E : never) {
  if (!entry.open) throw new InvalidInputError(`chunked: entry ${entry.path}: a file without open()`);
  try {
    return await entry.open();
  } catch (err) {
    if (err instanceof EntryVanishedError) return undefined;
    throw err;
  }
}
