import { Readable } from 'node:stream';
import { createHash } from 'node:crypto';
import { InvalidInputError } from '../../../errors.js';
import type { BlobCipher } from '../../../crypto/blob-cipher.js';
import type { Repository } from '../../../catalog/repository.js';
import type { BlobStorage } from '../../../catalog/blob-storage.js';
import type { ObjectInfo } from '../../../storage/storage-driver.js';
import { BLOB_ENTRY_BYTES, type BlobEntry } from './blob-entry.js';
import { decodeBlob } from './blob-codec.js';
import { BlobIndex } from './blob-index.js';
import { BlobStore } from './blob-store.js';
import { encodeIndex, packEntries, type PackRecord } from './index-format.js';
import { readIndexState, type IndexState } from './index-state.js';
import { readExactly } from '../../../storage/read-all.js';
import { INDEX_PREFIX, indexKey, packIdOfKey, packKey, PACKS_PREFIX } from './store-layout.js';

/** Options of `collectGarbage`. */
export interface CollectGarbageOptions {
  /** The repository's cipher (reads index objects, checks repacked blobs). */
  cipher: BlobCipher;
  /**
   * True for every blob a snapshot of the repository references (the caller's mark phase over
   * every snapshot's trees, done before this call). Called once per indexed blob.
   */
  live: (id: string) => boolean;
  /**
   * The grace window's start: only packs listed and written before it are marked, only
   * tombstones whose window (now − olderThan, from their marking) has passed are swept, and
   * only unindexed packs (debris) and temp files of dead puts older than it are deleted. The window must exceed the longest
   * snapshot (open to record) and the longest time a writer holds an uploaded pack unindexed;
   * docs/chunked-format.md, "Garbage collection".
   */
  olderThan: Date;
  /** Report what would be done; change nothing. */
  dryRun?: boolean;
  /** A pack whose live blobs take less than this fraction of its bytes is repacked (default 0.5). */
  repackBelow?: number;
  /** Size of the packs repacking writes (default the store's, 16 MiB). */
  packSize?: number;
  /** Index objects hold at most this many blobs each (default 200,000: about 9 MB). */
  blobsPerIndexObject?: number;
  signal?: AbortSignal;
}

/** What a collection did (or, dry, would do). Pack ids, counts, bytes of pack objects. */
export interface GarbageReport {
  /** Packs without a live blob, now marked deleted (tombstones). */
  marked: string[];
  /** Marked packs a snapshot turned out to need, listed again. */
  revived: string[];
  /** Mostly-empty packs whose live blobs were copied into new packs, then marked. */
  repacked: string[];
  blobsRepacked: number;
  /** Packs deleted: marked ones past their window, and unindexed debris. */
  deleted: string[];
  /** Of `deleted`, the unindexed debris (a crashed or failed writer's packs). */
  debris: string[];
  bytesDeleted: number;
  indexObjectsBefore: number;
  indexObjectsAfter: number;
}

/**
 * Collects the chunked store's garbage with two-phase deletion (after kopia's content GC):
 * marks packs with no live blob, repacks mostly-empty ones, sweeps packs marked a grace window
 * ago and still unneeded, deletes old unindexed packs, and compacts every index object into a
 * few. The protocol, and why a snapshot in flight never loses a blob it deduplicated against, is
 * in docs/chunked-format.md, "Garbage collection". One collection at a time per repository.
 * @throws InvalidInputError for `olderThan` in the future or bad options; storage and integrity
 *   errors pass through (nothing is deleted before the new index objects are written).
 */
export async function collectGarbage(repository: Repository, options: CollectGarbageOptions): Promise<GarbageReport> {
  const { cipher, live, dryRun = false, repackBelow = 0.5, blobsPerIndexObject = 200_000, signal } = options;
  const now = Date.now();
  const olderThan = options.olderThan.getTime();
  if (!(olderThan <= now)) throw new InvalidInputError(`garbage collection: olderThan (${options.olderThan.toISOString()}) must not be in the future`);
  if (!(repackBelow >= 0 && repackBelow <= 1)) throw new InvalidInputError(`garbage collection: repackBelow must be from 0 to 1, got ${repackBelow}`);
  if (!Number.isSafeInteger(blobsPerIndexObject) || blobsPerIndexObject < 1) throw new InvalidInputError('garbage collection: blobsPerIndexObject must be a positive integer');
  const window = now - olderThan;
  const storage = repository.blobStorage();
  const state = await readIndexState(storage, cipher, { signal });
  const objects = await listPacks(storage, signal);
  const report: GarbageReport = { marked: [], revived: [], repacked: [], blobsRepacked: 0, deleted: [], debris: [], bytesDeleted: 0, indexObjectsBefore: state.current.length + state.superseded.length, indexObjectsAfter: 0 };

  const next = new Map<string, PackRecord>();
  const sweep: PackRecord[] = [];
  const repack: { pack: PackRecord; live: BlobEntry[] }[] = [];
  const tombstone = (pack: PackRecord): PackRecord => ({ ...pack, state: 'deleted', at: now, deleteAfter: now + window });
  // Blobs readable from listed packs: a marked pack needs reviving only for a live blob not among them.
  const listed = new BlobIndex();
  for (const pack of state.packs.values()) {
    if (pack.state === 'listed') listed.addEntries(pack.entries, 0);
  }
  for (const pack of state.packs.values()) {
    const entries = packEntries(pack, 'index');
    const liveEntries = entries.filter((entry) => live(entry.id));
    if (pack.state === 'deleted') {
      if (liveEntries.some((entry) => !listed.has(entry.id))) {
        next.set(pack.packId, { ...pack, state: 'listed', at: now, deleteAfter: 0 });
        report.revived.push(pack.packId);
      } else if (now >= pack.deleteAfter) {
        sweep.push(pack);
      } else {
        next.set(pack.packId, pack);
      }
      continue;
    }
    const written = objects.get(pack.packId)?.modifiedAt.getTime() ?? 0;
    const old = pack.at < olderThan && written < olderThan;
    if (old && liveEntries.length === 0) {
      next.set(pack.packId, tombstone(pack));
      report.marked.push(pack.packId);
      continue;
    }
    next.set(pack.packId, pack);
    const liveBytes = liveEntries.reduce((sum, entry) => sum + entry.length, 0);
    if (old && liveBytes < repackBelow * pack.size) repack.push({ pack, live: liveEntries });
  }
  const debris = [...objects.values()].filter((object) => !state.packs.has(packIdOfKey(object.key)!) && object.modifiedAt.getTime() < olderThan);

  if (dryRun) {
    report.repacked = repack.map(({ pack }) => pack.packId);
    report.blobsRepacked = repack.reduce((sum, { live: entries }) => sum + entries.length, 0);
    report.deleted = [...sweep.map((pack) => pack.packId), ...debris.map((object) => packIdOfKey(object.key)!)];
    report.debris = debris.map((object) => packIdOfKey(object.key)!);
    report.bytesDeleted = sweep.reduce((sum, pack) => sum + pack.size, 0) + debris.reduce((sum, object) => sum + object.size, 0);
    report.indexObjectsAfter = report.indexObjectsBefore;
    return report;
  }

  if (repack.length > 0) {
    report.blobsRepacked = await repackLive(storage, cipher, repack, options);
    for (const { pack } of repack) {
      next.set(pack.packId, tombstone(pack));
      report.repacked.push(pack.packId);
    }
  }

  // Tombstones take their time (and so their window) from now, just before they are written: a
  // slow run must not eat into the window writers have to revive what they rely on.
  const markedAt = Date.now();
  for (const packId of [...report.marked, ...report.repacked]) {
    next.set(packId, { ...next.get(packId)!, at: markedAt, deleteAfter: markedAt + window });
  }
  const changed = report.marked.length + report.revived.length + report.repacked.length + sweep.length > 0;
  if (changed || state.current.length > 1 || state.superseded.length > 0) {
    const old = [...state.current, ...state.superseded];
    const written = await writeCompacted(storage, cipher, [...next.values()], old, blobsPerIndexObject, signal);
    for (const id of old) if (!written.has(id)) await storage.delete(indexKey(id), { signal });
  }

  // A writer may have revived a swept pack, or indexed a "debris" pack, while we ran: the index
  // as it is now has the last word.
  const fresh = await readIndexState(storage, cipher, { signal });
  for (const pack of sweep) {
    if (fresh.packs.get(pack.packId)?.state === 'listed') continue;
    await storage.delete(packKey(pack.packId), { signal });
    report.deleted.push(pack.packId);
    report.bytesDeleted += objects.get(pack.packId)?.size ?? 0;
  }
  for (const object of debris) {
    const packId = packIdOfKey(object.key)!;
    if (fresh.packs.has(packId)) continue;
    await storage.delete(object.key, { signal });
    report.deleted.push(packId);
    report.debris.push(packId);
    report.bytesDeleted += object.size;
  }
  // Temp files of puts whose process died (the filesystem driver's), and empty pack folders.
  await storage.sweepLeftovers?.(PACKS_PREFIX, options.olderThan, { signal });
  await storage.sweepLeftovers?.(INDEX_PREFIX, options.olderThan, { signal });
  report.indexObjectsAfter = fresh.current.length + fresh.superseded.length;
  return report;
}

/** Every pack object, by pack id (other keys under `packs/` are not ours and left alone). */
export async function listPacks(storage: BlobStorage, signal?: AbortSignal): Promise<Map<string, ObjectInfo>> {
  const objects = new Map<string, ObjectInfo>();
  for await (const object of storage.list(PACKS_PREFIX, { signal })) {
    const packId = packIdOfKey(object.key);
    if (packId) objects.set(packId, object);
  }
  return objects;
}

/**
 * Copies the live blobs of `packs` into new packs (their stored bytes as they are, each checked
 * first) and indexes them. Resolves with the number of blobs copied.
 */
async function repackLive(storage: BlobStorage, cipher: BlobCipher, packs: { pack: PackRecord; live: BlobEntry[] }[], options: CollectGarbageOptions): Promise<number> {
  const writer = new BlobStore(storage, { cipher, ...(options.packSize ? { packSize: options.packSize } : {}), signal: options.signal });
  const copied = new Set<string>();
  try {
    for (const { pack, live } of packs) {
      if (live.length === 0) continue;
      const start = live[0]!.offset;
      const end = live[live.length - 1]!.offset + live[live.length - 1]!.length;
      const bytes = await readExactly(await storage.get(packKey(pack.packId), { range: { start, end: end - 1 }, signal: options.signal }), end - start, `pack ${pack.packId}`);
      for (const entry of live) {
        if (copied.has(entry.id)) continue;
        const stored = bytes.subarray(entry.offset - start, entry.offset - start + entry.length);
        decodeBlob(cipher, entry.id, stored, entry.rawLength);
        await writer.copyStored(entry, Buffer.from(stored), { signal: options.signal });
        copied.add(entry.id);
      }
    }
    await writer.flush({ signal: options.signal });
  } finally {
    await writer.close();
  }
  return copied.size;
}

/**
 * Writes `records` as index objects of at most `perObject` blobs; the last one names every
 * object of `old` in its `supersedes`, so until it exists readers still use the old ones (both
 * together only repeat records). Resolves with the ids of the objects it wrote, never in
 * `supersedes` (an unchanged group hashes to the id it had).
 */
async function writeCompacted(storage: BlobStorage, cipher: BlobCipher, records: PackRecord[], old: string[], perObject: number, signal?: AbortSignal): Promise<Set<string>> {
  const groups: PackRecord[][] = [[]];
  let blobs = 0;
  for (const record of records) {
    const count = record.entries.length / BLOB_ENTRY_BYTES;
    if (blobs > 0 && blobs + count > perObject) {
      groups.push([]);
      blobs = 0;
    }
    groups[groups.length - 1]!.push(record);
    blobs += count;
  }
  const written = new Set<string>();
  const put = async (stored: Buffer): Promise<void> => {
    const id = createHash('sha256').update(stored).digest('hex');
    await storage.put(indexKey(id), Readable.from([stored]), { size: stored.length, signal });
    written.add(id);
  };
  for (const packs of groups.slice(0, -1)) await put(encodeIndex({ supersedes: [], packs }, cipher));
  await put(encodeIndex({ supersedes: old.filter((id) => !written.has(id)), packs: groups[groups.length - 1]! }, cipher));
  return written;
}

export type { IndexState };
