import type { Repository } from '../../catalog/repository.js';
import type { BlobCipher } from '../../crypto/blob-cipher.js';
import { chunkBuffer, chunkerParams, chunkStream, gearTableFor } from './store/chunker.js';
import { openBlobStore, type BlobStore } from './store/blob-store.js';
import { repositoryCipher } from '../../crypto/repository-cipher.js';
import { readChunkedStoreConfig } from './store/store-config.js';

/** A repository's blob store session, with the chunker its files are cut with. */
export interface ChunkedStore {
  store: BlobStore;
  /** Names and seals the repository's blobs. */
  cipher: BlobCipher;
  /** Cuts a file's bytes with the repository's chunker sizes and gear table. */
  chunk(source: AsyncIterable<Buffer>): AsyncIterable<Buffer>;
  /** Cuts bytes held whole in memory at the same places, as views into them (no copy). */
  chunkBuffer(bytes: Buffer): Iterable<Buffer>;
}

/**
 * Opens the blob store of a chunked repository (its index read into memory) with the cipher and
 * chunker settings its `config.json` fixes. Close `store` when done.
 * @throws InvalidInputError when the repository was not initialised for the chunked format, or
 *   is encrypted and cannot be unlocked with this worker's keys.
 */
export async function openChunkedStore(repository: Repository, signal: AbortSignal): Promise<ChunkedStore> {
  const config = await readChunkedStoreConfig(repository, { signal });
  // An encrypted repository's AEAD cipher, unlocked with this worker's keys; else the plain one.
  const cipher = await repositoryCipher(repository, signal);
  const params = chunkerParams({ ...config.chunker, gear: gearTableFor(cipher) });
  const store = await openBlobStore(repository, { cipher, signal });
  return { store, cipher, chunk: (source) => chunkStream(source, params), chunkBuffer: (bytes) => chunkBuffer(bytes, params) };
}
