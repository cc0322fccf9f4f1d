import { createHash, randomInt } from 'node:crypto';
import { InvalidInputError, IntegrityError, NotFoundError, withSubject } from '../../../errors.js';
import type { BlobCipher } from '../../../crypto/blob-cipher.js';
import type { Repository } from '../../../catalog/repository.js';
import type { BlobStorage } from '../../../catalog/blob-storage.js';
import type { BlobEntry } from './blob-entry.js';
import { decodeBlob } from './blob-codec.js';
import { listPacks } from './garbage-collection.js';
import { packEntries, type PackRecord } from './index-format.js';
import { readIndexState } from './index-state.js';
import { mapOrderedAsync } from './map-ordered-async.js';
import { decodePackHeader, PACK_TRAILER_BYTES, sealedHeaderLength } from './pack-format.js';
import { readExactly } from '../../../storage/read-all.js';
import { packKey } from './store-layout.js';

/** Options of `checkStore`. */
export interface CheckStoreOptions {
  cipher: BlobCipher;
  /** Fraction of the indexed packs (0..1, default 0) read whole: pack hash and every blob checked. */
  readDataSubset?: number;
  /** Packs checked at once (default 4). */
  concurrency?: number;
  signal?: AbortSignal;
}

/** What `checkStore` found. */
export interface CheckStoreReport {
  /** Indexed packs (listed) and their blobs. */
  packs: number;
  blobs: number;
  /** Packs read whole, and the blobs in them checked. */
  packsRead: number;
  blobsRead: number;
  /** Pack objects no index names (debris of failed writers until garbage collection). */
  unindexedPacks: number;
  /** One line per problem, naming the pack or blob; empty when the store is sound. */
  problems: string[];
}

/**
 * Checks the chunked store's structure (restic's `check`): every listed pack is present with
 * the size the index says, its header (read by two ranged GETs) lists the same blobs as the
 * index, and a random `readDataSubset` of the packs is read whole: the pack's SHA-256 is its id
 * and every blob opens, decompresses and hashes to its id. Problems are collected, not thrown.
 * @throws InvalidInputError for a subset outside 0..1; IntegrityError when an index object is
 *   damaged (nothing else can be checked then); storage errors pass through.
 */
export async function checkStore(repository: Repository, options: CheckStoreOptions): Promise<CheckStoreReport> {
  const { cipher, readDataSubset = 0, concurrency = 4, signal } = options;
  if (!(readDataSubset >= 0 && readDataSubset <= 1)) throw new InvalidInputError(`check: readDataSubset must be from 0 to 1, got ${readDataSubset}`);
  const storage = repository.blobStorage();
  const state = await readIndexState(storage, cipher, { signal });
  const objects = await listPacks(storage, signal);
  const listed = [...state.packs.values()].filter((pack) => pack.state === 'listed');
  const report: CheckStoreReport = { packs: listed.length, blobs: 0, packsRead: 0, blobsRead: 0, unindexedPacks: 0, problems: [] };
  for (const packId of objects.keys()) if (!state.packs.has(packId)) report.unindexedPacks++;
  const toRead = Math.ceil(readDataSubset * listed.length);
  const chosen = new Set(sample(listed.length, toRead));

  const checkOne = async ([i, pack]: [number, PackRecord]): Promise<string[]> => {
    let entries: BlobEntry[];
    try {
      entries = packEntries(pack, 'index');
    } catch (err) {
      return [(err as Error).message];
    }
    report.blobs += entries.length;
    const object = objects.get(pack.packId);
    if (!object) return [`pack ${pack.packId}: missing (the index lists ${entries.length} blobs in it)`];
    if (object.size !== pack.size) return [`pack ${pack.packId}: ${object.size} bytes, the index says ${pack.size}`];
    try {
      const header = await readHeader(storage, pack, cipher, signal);
      const problems = compareEntries(pack.packId, entries, header);
      if (chosen.has(i)) {
        report.packsRead++;
        problems.push(...(await readWhole(storage, pack, entries, cipher, signal)));
        report.blobsRead += entries.length;
      }
      return problems;
    } catch (err) {
      if (err instanceof IntegrityError || err instanceof NotFoundError) return [withSubject(`pack ${pack.packId}`, err.message)];
      throw err;
    }
  };
  for await (const problems of mapOrderedAsync(listed.entries(), concurrency, checkOne)) report.problems.push(...problems);
  return report;
}

/** The pack's header, read by two ranged GETs (the trailer, then the header). */
async function readHeader(storage: BlobStorage, pack: PackRecord, cipher: BlobCipher, signal?: AbortSignal): Promise<BlobEntry[]> {
  const key = packKey(pack.packId);
  const what = `pack ${pack.packId}`;
  const trailerStart = pack.size - PACK_TRAILER_BYTES;
  if (trailerStart < 0) throw new IntegrityError(`${what}: too small to be a pack`);
  // Explicit ranges only: s3rver answers suffix ranges (bytes=-N) wrongly.
  const trailer = await readExactly(await storage.get(key, { range: { start: trailerStart, end: pack.size - 1 }, signal }), PACK_TRAILER_BYTES, what);
  const headerLength = sealedHeaderLength(trailer, pack.size, what);
  const headerStart = trailerStart - headerLength;
  const sealed = await readExactly(await storage.get(key, { range: { start: headerStart, end: trailerStart - 1 }, signal }), headerLength, what);
  return decodePackHeader(sealed, headerStart, cipher, what);
}

/** Differences between the index's entries of a pack and its header's. */
function compareEntries(packId: string, indexed: BlobEntry[], header: BlobEntry[]): string[] {
  const key = (entry: BlobEntry) => `${entry.type} ${entry.id} ${entry.offset} ${entry.length} ${entry.rawLength}`;
  const inHeader = new Set(header.map(key));
  const problems = indexed.filter((entry) => !inHeader.has(key(entry))).map((entry) => `pack ${packId}: the index lists blob ${entry.id} at ${entry.offset}+${entry.length}, the pack's header does not`);
  if (header.length !== indexed.length && problems.length === 0) problems.push(`pack ${packId}: its header lists ${header.length} blobs, the index ${indexed.length}`);
  return problems;
}

/** Reads a pack whole: its hash must be its id, and every blob must check. */
async function readWhole(storage: BlobStorage, pack: PackRecord, entries: BlobEntry[], cipher: BlobCipher, signal?: AbortSignal): Promise<string[]> {
  const bytes = await readExactly(await storage.get(packKey(pack.packId), { signal }), pack.size, `pack ${pack.packId}`);
  const problems: string[] = [];
  if (createHash('sha256').update(bytes).digest('hex') !== pack.packId) problems.push(`pack ${pack.packId}: its content does not hash to its id`);
  for (const entry of entries) {
    try {
      decodeBlob(cipher, entry.id, bytes.subarray(entry.offset, entry.offset + entry.length), entry.rawLength);
    } catch (err) {
      problems.push(withSubject(`pack ${pack.packId}`, (err as Error).message));
    }
  }
  return problems;
}

/** `count` distinct numbers from 0 to `n` − 1 (Floyd's sampling). */
function sample(n: number, count: number): number[] {
  const chosen = new Set<number>();
  for (let j = n - count; j < n; j++) {
    const t = j > 0 ? randomInt(j + 1) : 0;
    chosen.add(chosen.has(t) ? j : t);
  }
  return [...chosen];
}
