import { NotFoundError } from '../../../errors.js';
import type { BlobCipher } from '../../../crypto/blob-cipher.js';
import type { BlobStorage } from '../../../catalog/blob-storage.js';
import type { SignalOptions } from '../../../storage/storage-driver.js';
import { decodeIndex, type IndexContents, type PackRecord } from './index-format.js';
import { readBounded } from '../../../storage/read-all.js';
import { INDEX_PREFIX, indexIdOfKey, indexKey } from './store-layout.js';
import { mapOrderedAsync } from './map-ordered-async.js';

/** Index objects are refused past this size (ours stay far below: ~45 bytes per blob). */
const MAX_INDEX_OBJECT_BYTES = 512 * 1024 * 1024;
/** A listing raced by a compaction (an object deleted between list and get) is retried this often. */
const ATTEMPTS = 3;

/** The repository's index as all its index objects together say. */
export interface IndexState {
  /** Ids of the index objects read and in force. */
  current: string[];
  /** Ids of index objects still stored but superseded by a compaction (ignored; GC deletes them). */
  superseded: string[];
  /** Every pack's latest record (greatest `at`; on a tie `listed` wins), by pack id. */
  packs: Map<string, PackRecord>;
}

/**
 * Reads every index object under `index/` (8 at a time) and resolves them: objects another one
 * supersedes are ignored, and each pack keeps its latest record.
 * @throws IntegrityError for an index object that does not open or parse.
 */
export async function readIndexState(storage: BlobStorage, cipher: BlobCipher, options: SignalOptions = {}): Promise<IndexState> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await readOnce(storage, cipher, options);
    } catch (err) {
      // A compaction deleted an object between our listing and our read: list again.
      if (!(err instanceof NotFoundError) || attempt >= ATTEMPTS) throw err;
    }
  }
}

/** Ids of every index object under `index/`, sorted. */
export async function listIndexIds(storage: BlobStorage, options: SignalOptions = {}): Promise<string[]> {
  const ids: string[] = [];
  for await (const object of storage.list(INDEX_PREFIX, options)) {
    const id = indexIdOfKey(object.key);
    if (id) ids.push(id);
  }
  return ids.sort();
}

/**
 * Reads and decodes the index objects `ids`, 8 at a time, in order.
 * @throws NotFoundError for one deleted meanwhile; IntegrityError for a damaged one.
 */
export function readIndexObjects(storage: BlobStorage, cipher: BlobCipher, ids: readonly string[], options: SignalOptions = {}): AsyncGenerator<{ id: string; contents: IndexContents }> {
  const read = async (id: string) => {
    const stored = await readBounded(await storage.get(indexKey(id), options), MAX_INDEX_OBJECT_BYTES, `index object ${id}`);
    return { id, contents: decodeIndex(stored, cipher, `index object ${id}`) };
  };
  return mapOrderedAsync(ids, 8, read);
}

/** True when `record` wins over `known` for the same pack (later; on a tie, listed). */
export function supersedesRecord(record: PackRecord, known: PackRecord | undefined): boolean {
  return !known || record.at > known.at || (record.at === known.at && record.state === 'listed');
}

async function readOnce(storage: BlobStorage, cipher: BlobCipher, options: SignalOptions): Promise<IndexState> {
  const ids = await listIndexIds(storage, options);
  const objects = new Map<string, IndexContents>();
  for await (const { id, contents } of readIndexObjects(storage, cipher, ids, options)) objects.set(id, contents);
  const supersededIds = new Set<string>();
  for (const contents of objects.values()) for (const id of contents.supersedes) supersededIds.add(id);
  const packs = new Map<string, PackRecord>();
  const current: string[] = [];
  for (const [id, contents] of objects) {
    if (supersededIds.has(id)) continue;
    current.push(id);
    for (const pack of contents.packs) if (supersedesRecord(pack, packs.get(pack.packId))) packs.set(pack.packId, pack);
  }
  return { current, superseded: ids.filter((id) => supersededIds.has(id)), packs };
}
