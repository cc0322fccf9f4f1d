import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { InvalidInputError, NotFoundError, SnapworkerError } from '../../../errors.js';
import type { BlobCipher } from '../../../crypto/blob-cipher.js';
import type { Repository } from '../../../catalog/repository.js';
import type { BlobStorage } from '../../../catalog/blob-storage.js';
import type { SignalOptions } from '../../../storage/storage-driver.js';
import { BLOB_ENTRY_BYTES, writeBlobEntry, type BlobEntry, type BlobType } from './blob-entry.js';
import { BlobIndex, type BlobLocation } from './blob-index.js';
import { encodeIndex, type PackRecord } from './index-format.js';
import { listIndexIds, readIndexObjects, readIndexState, supersedesRecord } from './index-state.js';
import { encodePackTail, MAX_PACK_BYTES } from './pack-format.js';
import { decodeBlob, encodeBlob } from './blob-codec.js';
import { readExactly } from '../../../storage/read-all.js';
import { indexKey, isHexId, packKey } from './store-layout.js';
import { mapOrderedAsync } from './map-ordered-async.js';

/** Options of `openBlobStore`. */
export interface BlobStoreOptions {
  /** Names and seals blobs (`PlainCipher` for an unencrypted repository). */
  cipher: BlobCipher;
  /** A pack is finished and uploaded once its blobs reach this many bytes (default 16 MiB). */
  packSize?: number;
  /**
   * Packs uploading at once; `save` waits while this many are in flight (default 1: memory holds
   * the open pack and one uploading, 2 × `packSize`. Filling a pack, about 50 MiB of source tree
   * through zstd, took five times as long as writing it to a file repository in a profile of a
   * snapshot, so the next pack fills while one uploads and a second upload in flight waits anyway).
   */
  uploads?: number;
  /** zstd level for blobs (default 3). */
  compressionLevel?: number;
  /**
   * An index object is written once this many uploaded packs wait for one (default 64), so a
   * long session does not leave hours of packs unindexed (garbage collection would take them
   * for debris after its grace window).
   */
  indexEvery?: number;
  /** Aborts reads of the index at open, and every upload of this session. */
  signal?: AbortSignal;
}

/** What `save` did. */
export interface SaveResult {
  /** The blob's id (`cipher.blobId(plaintext)`). */
  id: string;
  /** False when the repository or this session had the blob already (deduplicated). */
  stored: boolean;
  /** Bytes added to a pack (compressed and sealed); 0 when deduplicated. */
  storedBytes: number;
}

/** Counters of one store session, for progress. Bytes are plaintext unless named stored. */
export interface BlobStoreStats {
  savedBlobs: number;
  savedBytes: number;
  /** Blobs and bytes found already stored. */
  dedupedBlobs: number;
  dedupedBytes: number;
  /** Bytes written to packs (compressed, sealed). */
  storedBytes: number;
  /** Packs uploaded and index objects written by this session. */
  packs: number;
  indexObjects: number;
}

const DEFAULTS = { packSize: 16 * 1024 * 1024, uploads: 1, compressionLevel: 3, indexEvery: 64 };

/** A pack being filled or uploaded: its stored blobs, in order, and their entries. */
interface OpenPack {
  blobs: Buffer[];
  entries: BlobEntry[];
  bytes: number;
}

/** A blob of this session not yet in the index: in an open or uploading pack. */
interface PendingBlob {
  pack: OpenPack;
  slot: number;
}

/** One ranged read in `loadMany`: consecutive wanted blobs of one pack. */
interface ReadBatch {
  ids: string[];
  locations: BlobLocation[];
}

/** `loadMany` groups blobs of one pack into one GET when the gap between them is at most this. */
const READ_GAP_BYTES = 256 * 1024;
/** ... and the GET stays under this. */
const READ_SPAN_BYTES = 16 * 1024 * 1024;

/**
 * Opens the chunked store of `repository`: reads every index object (index-state.ts) into the
 * compact in-memory index. One store is one writer session; many sessions, in many processes,
 * may write to one repository at once (packs and index objects are immutable and uniquely named).
 * @throws IntegrityError for a damaged index object; storage errors pass through.
 */
export async function openBlobStore(repository: Repository, options: BlobStoreOptions): Promise<BlobStore> {
  const store = new BlobStore(repository.blobStorage(), options);
  await store.loadIndex();
  return store;
}

/**
 * Blobs of one repository (docs/chunked-format.md, "Storage"): `save` deduplicates, compresses
 * (zstd), seals and packs them; `flush` uploads packs, then the index object naming them. Get
 * one from `openBlobStore`.
 */
export class BlobStore {
  private readonly options: Required<Omit<BlobStoreOptions, 'signal'>> & { signal?: AbortSignal };
  private readonly index = new BlobIndex();
  private readonly packIds: string[] = [];
  private readonly packNumbers = new Map<string, number>();
  private readonly pending = new Map<string, PendingBlob>();
  private open: OpenPack = newPack();
  private readonly uploading = new Set<Promise<void>>();
  /** Uploaded packs not yet named by an index object of this session. */
  private unindexed: PackRecord[] = [];
  private indexWriting: Promise<void> = Promise.resolve();
  private failure: unknown;
  /** Index objects this session has read (at open, and at flushes looking for tombstones). */
  private readonly seenIndexObjects = new Set<string>();
  /** Packs (numbers) holding blobs this session deduplicated against: it relies on them. */
  private readonly relied = new Set<number>();
  private closed = false;
  readonly stats: BlobStoreStats = { savedBlobs: 0, savedBytes: 0, dedupedBlobs: 0, dedupedBytes: 0, storedBytes: 0, packs: 0, indexObjects: 0 };

  /** Use `openBlobStore`. @throws InvalidInputError for bad options. */
  constructor(
    private readonly storage: BlobStorage,
    options: BlobStoreOptions,
  ) {
    this.options = { ...DEFAULTS, ...options };
    const { packSize, uploads, indexEvery, compressionLevel } = this.options;
    if (!Number.isSafeInteger(packSize) || packSize < 1 || packSize > MAX_PACK_BYTES / 2) throw new InvalidInputError(`blob store: packSize must be from 1 byte to 2 GiB, got ${packSize}`);
    if (!Number.isSafeInteger(uploads) || uploads < 1) throw new InvalidInputError(`blob store: uploads must be a positive integer, got ${uploads}`);
    if (!Number.isSafeInteger(indexEvery) || indexEvery < 1) throw new InvalidInputError(`blob store: indexEvery must be a positive integer, got ${indexEvery}`);
    if (!Number.isInteger(compressionLevel) || compressionLevel < -7 || compressionLevel > 19) throw new InvalidInputError(`blob store: compressionLevel must be from -7 to 19, got ${compressionLevel}`);
  }

  /** Reads the repository's index (see `openBlobStore`). */
  async loadIndex(): Promise<void> {
    const state = await readIndexState(this.storage, this.options.cipher, { signal: this.options.signal });
    for (const id of [...state.current, ...state.superseded]) this.seenIndexObjects.add(id);
    for (const pack of state.packs.values()) {
      // Entries are not checked one by one here: a bad one fails its ranged read or type check
      // when loaded, and checkStore names it.
      if (pack.state === 'listed') this.index.addEntries(pack.entries, this.packNumber(pack.packId));
    }
  }

  /** Blobs this store knows: indexed in the repository, or saved by this session. */
  get blobCount(): number {
    return this.index.size + this.pending.size;
  }

  /** Bytes the in-memory index's sorted table takes, for the bytes-per-blob figure. */
  indexTableBytes(): number {
    return this.index.tableBytes();
  }

  /**
   * Stores a blob unless the repository (as read at open) or this session has it. Compresses
   * with zstd, seals with the cipher (additional data: the id), and appends it to the open pack;
   * a full pack starts uploading, and this waits while `uploads` packs are in flight.
   * @throws the error of an earlier upload of this session (the session is then failed: open a new one).
   */
  async save(type: BlobType, plaintext: Buffer, options: SignalOptions = {}): Promise<SaveResult> {
    this.usable();
    if (type !== 'data' && type !== 'tree') throw new InvalidInputError(`blob store: unknown blob type ${JSON.stringify(type)}`);
    if (plaintext.length > 0xffff_ffff) throw new InvalidInputError('blob store: a blob must be under 4 GiB');
    const id = this.options.cipher.blobId(plaintext);
    this.stats.savedBlobs++;
    this.stats.savedBytes += plaintext.length;
    const indexed = this.pending.has(id) ? undefined : this.index.get(id);
    if (indexed) this.relied.add(indexed.pack);
    if (indexed || this.pending.has(id)) {
      this.stats.dedupedBlobs++;
      this.stats.dedupedBytes += plaintext.length;
      return { id, stored: false, storedBytes: 0 };
    }
    const stored = encodeBlob(this.options.cipher, id, plaintext, this.options.compressionLevel);
    await this.append({ type, id, rawLength: plaintext.length }, stored, options);
    return { id, stored: true, storedBytes: stored.length };
  }

  /**
   * Appends a blob already compressed and sealed (its stored bytes, as read from another pack),
   * without deduplicating: garbage collection's repacking, which copies blobs out of packs it
   * then deletes. Waits like `save`.
   */
  async copyStored(blob: { type: BlobType; id: string; rawLength: number }, stored: Buffer, options: SignalOptions = {}): Promise<void> {
    this.usable();
    await this.append(blob, stored, options);
  }

  private async append({ type, id, rawLength }: { type: BlobType; id: string; rawLength: number }, stored: Buffer, options: SignalOptions): Promise<void> {
    const pack = this.open;
    const entry: BlobEntry = { type, id, offset: pack.bytes, length: stored.length, rawLength };
    this.pending.set(id, { pack, slot: pack.blobs.length });
    pack.blobs.push(stored);
    pack.entries.push(entry);
    pack.bytes += stored.length;
    this.stats.storedBytes += stored.length;
    if (pack.bytes >= this.options.packSize) {
      this.startUpload();
      while (this.uploading.size >= this.options.uploads) {
        options.signal?.throwIfAborted();
        await Promise.race(this.uploading);
      }
      this.usable();
    }
  }

  /** True when the blob is stored (indexed, or saved by this session). */
  has(id: string): boolean {
    return this.pending.has(id) || this.index.has(id);
  }

  /** The blob's plaintext length, or undefined when the store does not have it. */
  size(id: string): number | undefined {
    const waiting = this.pending.get(id);
    if (waiting) return waiting.pack.entries[waiting.slot]!.rawLength;
    return this.index.get(id)?.rawLength;
  }

  /**
   * A blob's plaintext: one ranged read of its pack (or this session's memory when its pack is
   * not uploaded yet), opened, decompressed, and checked against its id.
   * @throws NotFoundError when the store does not have the blob (or its pack is gone).
   * @throws IntegrityError when the bytes do not open, decompress, or hash to the id.
   */
  async load(id: string, options: SignalOptions = {}): Promise<Buffer> {
    const waiting = this.pending.get(id);
    if (waiting) return this.decode(id, waiting.pack.blobs[waiting.slot]!, waiting.pack.entries[waiting.slot]!.rawLength);
    const location = this.index.get(id);
    if (!location) throw new NotFoundError(`blob store: no blob ${id}`);
    const [data] = await this.readBatch({ ids: [id], locations: [location] }, options);
    return data!;
  }

  /**
   * Many blobs' plaintexts in the order of `ids`, read `concurrency` ranged GETs ahead (default
   * 4); consecutive ids whose blobs lie close together in one pack are read by one GET (restic's
   * restorer). Each blob is decoded and checked only when its turn comes, so memory holds about
   * `concurrency` × 16 MiB of stored bytes and one decoded blob at a time.
   * @throws as `load`, when the blob's turn comes.
   */
  async *loadMany(ids: Iterable<string> | AsyncIterable<string>, options: SignalOptions & { concurrency?: number } = {}): AsyncIterable<{ id: string; data: Buffer }> {
    const concurrency = options.concurrency ?? 4;
    if (!Number.isSafeInteger(concurrency) || concurrency < 1) throw new InvalidInputError(`blob store: concurrency must be a positive integer, got ${concurrency}`);
    const read = async (batch: ReadBatch | { id: string; pending: PendingBlob }): Promise<{ batch: ReadBatch; start: number; bytes: Buffer } | { id: string; pending: PendingBlob }> =>
      'pending' in batch ? batch : { batch, ...(await this.readRange(batch, options)) };
    for await (const done of mapOrderedAsync(this.batches(ids), concurrency, read)) {
      if ('pending' in done) {
        const { pack, slot } = done.pending;
        yield { id: done.id, data: this.decode(done.id, pack.blobs[slot]!, pack.entries[slot]!.rawLength) };
        continue;
      }
      const { batch, start, bytes } = done;
      for (let i = 0; i < batch.ids.length; i++) {
        const { offset, length, rawLength } = batch.locations[i]!;
        yield { id: batch.ids[i]!, data: this.decode(batch.ids[i]!, bytes.subarray(offset - start, offset - start + length), rawLength) };
      }
    }
  }

  /**
   * Finishes the open pack, waits for every upload, then writes one index object naming this
   * session's packs not yet indexed (packs before index). Once it resolves, every blob saved
   * before the call is durable and indexed. Do not save while a flush runs.
   *
   * It also keeps what this session deduplicated against: when garbage collection marked such a
   * pack for deletion since the session opened, the index object revives it (docs/chunked-format.md,
   * "Garbage collection"), or, too close to its deletion time, the flush fails.
   * @throws the first upload or index write error of this session.
   * @throws SnapworkerError (retryable: snapshot again) when a pack this session relies on is
   *   past the middle of its grace window or gone.
   */
  async flush(options: SignalOptions = {}): Promise<void> {
    this.usable();
    if (this.open.blobs.length > 0) this.startUpload();
    while (this.uploading.size > 0) {
      options.signal?.throwIfAborted();
      await Promise.allSettled([...this.uploading]);
    }
    this.usable();
    await this.writeIndex(await this.revivals(options));
    this.usable();
  }

  /**
   * Listings that revive the packs this session relies on and a collection marked deleted since
   * we last looked (read from the index objects written since).
   */
  private async revivals(options: SignalOptions, attempt = 1): Promise<PackRecord[]> {
    if (this.relied.size === 0) return [];
    const fresh = (await listIndexIds(this.storage, options)).filter((id) => !this.seenIndexObjects.has(id));
    const latest = new Map<string, PackRecord>();
    try {
      for await (const { id, contents } of readIndexObjects(this.storage, this.options.cipher, fresh, options)) {
        this.seenIndexObjects.add(id);
        for (const pack of contents.packs) {
          const number = this.packNumbers.get(pack.packId);
          if (number !== undefined && this.relied.has(number) && supersedesRecord(pack, latest.get(pack.packId))) latest.set(pack.packId, pack);
        }
      }
    } catch (err) {
      if (!(err instanceof NotFoundError) || attempt >= 3) throw err;
      // A compaction removed an object we listed; its successor holds the same records.
      return this.revivals(options, attempt + 1);
    }
    const now = Date.now();
    const revived: PackRecord[] = [];
    for (const pack of latest.values()) {
      if (pack.state !== 'deleted') continue;
      if (now >= pack.at + (pack.deleteAfter - pack.at) / 2) {
        throw new SnapworkerError(`blob store: pack ${pack.packId}, which this snapshot deduplicated against, is being garbage collected; snapshot again`);
      }
      revived.push({ ...pack, state: 'listed', at: now, deleteAfter: 0 });
    }
    return revived;
  }

  /**
   * Ends the session: waits for uploads in flight, writes nothing more. Blobs saved since the
   * last `flush` are abandoned (packs already uploaded stay as unreferenced debris that garbage
   * collection removes). Calling it twice is harmless.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([...this.uploading]);
    await this.indexWriting.catch(() => {});
  }

  private usable(): void {
    if (this.closed) throw new InvalidInputError('blob store: used after close');
    if (this.failure) throw this.failure;
  }

  /** Turns the open pack into an upload; a failure fails the session. */
  private startUpload(): void {
    const pack = this.open;
    this.open = newPack();
    const upload = this.uploadPack(pack).then(
      () => {
        this.uploading.delete(upload);
      },
      (err: unknown) => {
        this.uploading.delete(upload);
        this.failure ??= err;
      },
    );
    this.uploading.add(upload);
  }

  private async uploadPack(pack: OpenPack): Promise<void> {
    const tail = encodePackTail(pack.entries, this.options.cipher);
    const body = [...pack.blobs, tail];
    const hash = createHash('sha256');
    for (const part of body) hash.update(part);
    const packId = hash.digest('hex');
    const size = pack.bytes + tail.length;
    await this.storage.put(packKey(packId), Readable.from(body), { size, signal: this.options.signal });
    this.addPack(packId, pack.entries);
    for (const entry of pack.entries) if (this.pending.get(entry.id)?.pack === pack) this.pending.delete(entry.id);
    const entries = Buffer.alloc(pack.entries.length * BLOB_ENTRY_BYTES);
    pack.entries.forEach((entry, i) => writeBlobEntry(entries, i * BLOB_ENTRY_BYTES, entry));
    this.unindexed.push({ packId, state: 'listed', at: Date.now(), deleteAfter: 0, size, entries });
    this.stats.packs++;
    if (this.unindexed.length >= this.options.indexEvery) await this.writeIndex();
  }

  /**
   * Writes one index object for the packs waiting for one (and `revived` listings); index writes
   * run one at a time.
   */
  private writeIndex(revived: PackRecord[] = []): Promise<void> {
    const next = this.indexWriting.then(async () => {
      if (this.unindexed.length === 0 && revived.length === 0) return;
      const packs = this.unindexed;
      this.unindexed = [];
      try {
        const stored = encodeIndex({ supersedes: [], packs: [...packs, ...revived] }, this.options.cipher);
        const id = createHash('sha256').update(stored).digest('hex');
        await this.storage.put(indexKey(id), Readable.from([stored]), { size: stored.length, signal: this.options.signal });
        this.stats.indexObjects++;
        this.seenIndexObjects.add(id);
      } catch (err) {
        this.unindexed = [...packs, ...this.unindexed];
        throw err;
      }
    });
    this.indexWriting = next.catch(() => {});
    return next;
  }

  private addPack(packId: string, entries: readonly BlobEntry[]): void {
    const pack = this.packNumber(packId);
    for (const { id, type, offset, length, rawLength } of entries) this.index.add(id, { pack, type, offset, length, rawLength });
  }

  /** The number standing for `packId` in the in-memory index. */
  private packNumber(packId: string): number {
    let pack = this.packNumbers.get(packId);
    if (pack === undefined) {
      pack = this.packIds.length;
      this.packIds.push(packId);
      this.packNumbers.set(packId, pack);
    }
    return pack;
  }

  /** Groups the wanted ids into ranged reads (see `loadMany`). */
  private async *batches(ids: Iterable<string> | AsyncIterable<string>): AsyncGenerator<ReadBatch | { id: string; pending: PendingBlob }> {
    let batch: ReadBatch | undefined;
    for await (const id of ids as AsyncIterable<string>) {
      const waiting = this.pending.get(id);
      const location = waiting ? undefined : this.index.get(id);
      if (!waiting && !location) {
        if (batch) yield batch;
        batch = undefined;
        throw new NotFoundError(`blob store: no blob ${typeof id === 'string' && isHexId(id) ? id : JSON.stringify(id)}`);
      }
      if (batch && location) {
        const first = batch.locations[0]!;
        const last = batch.locations[batch.locations.length - 1]!;
        const end = last.offset + last.length;
        if (location.pack === first.pack && location.offset >= end && location.offset - end <= READ_GAP_BYTES && location.offset + location.length - first.offset <= READ_SPAN_BYTES) {
          batch.ids.push(id);
          batch.locations.push(location);
          continue;
        }
      }
      if (batch) yield batch;
      batch = undefined;
      if (waiting) yield { id, pending: waiting };
      else batch = { ids: [id], locations: [location!] };
    }
    if (batch) yield batch;
  }

  /** One ranged GET covering the batch's blobs, each cut out and decoded. */
  private async readBatch(batch: ReadBatch, options: SignalOptions): Promise<Buffer[]> {
    const { start, bytes } = await this.readRange(batch, options);
    return batch.locations.map((location, i) => this.decode(batch.ids[i]!, bytes.subarray(location.offset - start, location.offset - start + location.length), location.rawLength));
  }

  /** The stored bytes of one ranged GET covering the batch's blobs, and the pack offset they start at. */
  private async readRange(batch: ReadBatch, options: SignalOptions): Promise<{ start: number; bytes: Buffer }> {
    const first = batch.locations[0]!;
    const last = batch.locations[batch.locations.length - 1]!;
    const start = first.offset;
    const end = last.offset + last.length;
    const packId = this.packIds[first.pack]!;
    const what = `pack ${packId} bytes ${start}-${end - 1}`;
    try {
      const bytes = end > start ? await readExactly(await this.storage.get(packKey(packId), { range: { start, end: end - 1 }, signal: options.signal }), end - start, what) : Buffer.alloc(0);
      return { start, bytes };
    } catch (err) {
      if (err instanceof NotFoundError) throw new NotFoundError(`blob store: pack ${packId} is missing (blob ${batch.ids[0]})`, { cause: err });
      throw err;
    }
  }

  /** Opens, decompresses and checks a stored blob. @throws IntegrityError. */
  private decode(id: string, stored: Buffer, rawLength: number): Buffer {
    return decodeBlob(this.options.cipher, id, stored, rawLength);
  }
}

function newPack(): OpenPack {
  return { blobs: [], entries: [], bytes: 0 };
}
