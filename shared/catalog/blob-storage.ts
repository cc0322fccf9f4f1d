import { InvalidInputError } from '../errors.js';
import type { StorageDriver } from '../storage/storage-driver.js';

/** Where the chunked format's shared objects live (layout in docs/chunked-format.md, "Storage"). */
export const BLOB_PREFIXES = ['packs/', 'pack-index/'] as const;

/**
 * The objects shared by every snapshot of a chunked repository (packs and pack index objects): put
 * (atomic; multipart on S3 for big packs), ranged get, head, list, delete, and sweeping the temp
 * files of dead puts where the driver has them, refusing any key
 * outside `packs/` and `pack-index/`. Same contracts as `StorageDriver`.
 */
export type BlobStorage = Pick<StorageDriver, 'kind' | 'put' | 'get' | 'head' | 'list' | 'delete' | 'sweepLeftovers'>;

/**
 * A view of `driver` confined to `packs/` and `pack-index/`, so the blob store cannot reach snapshots,
 * records or `config.json` by a key built wrong.
 * @throws InvalidInputError (from every method) for a key outside those prefixes.
 */
export function blobStorageOn(driver: StorageDriver): BlobStorage {
  const inside = (key: string): string => {
    if (!BLOB_PREFIXES.some((prefix) => key.startsWith(prefix))) throw new InvalidInputError(`blob storage: key "${key}" is outside ${BLOB_PREFIXES.join(' and ')}`);
    return key;
  };
  return {
    kind: driver.kind,
    put: async (key, body, options) => driver.put(inside(key), body, options),
    get: async (key, options) => driver.get(inside(key), options),
    head: async (key, options) => driver.head(inside(key), options),
    list: (prefix, options) => driver.list(inside(prefix), options),
    delete: async (key, options) => driver.delete(inside(key), options),
    ...(driver.sweepLeftovers ? { sweepLeftovers: async (prefix: string, olderThan: Date, options?: { signal?: AbortSignal }) => driver.sweepLeftovers!(inside(prefix), olderThan, options) } : {}),
  };
}
