import { InvalidInputError } from '../errors.js';
import type { StorageDriver } from '../storage/storage-driver.js';

/** Where SQLite replicas live in a repository (layout in `shared/kinds/sqlite/replication/replica-layout.ts`). */
export const REPLICAS = 'replicas/';

/**
 * The objects of a repository's SQLite replicas: what `ReplicaStore` needs, and nothing more
 * (no head, presign, upload tokens or sweeping). Every key starts with `replicas/`. Same
 * contracts as `StorageDriver`: `put` is atomic, `get` throws `NotFoundError` when absent,
 * `list` is in no guaranteed order, deleting a missing object is not an error.
 */
export type ReplicaStorage = Pick<StorageDriver, 'put' | 'get' | 'list' | 'delete'>;

/**
 * A view of `driver` confined to `replicas/`, so the replica store cannot reach snapshots,
 * records or `config.json` by a key built wrong.
 * @throws InvalidInputError (from every method) for a key outside `replicas/`.
 */
export function replicaStorageOn(driver: StorageDriver): ReplicaStorage {
  const inside = (key: string): string => {
    if (!key.startsWith(REPLICAS)) throw new InvalidInputError(`replica storage: key "${key}" is outside ${REPLICAS}`);
    return key;
  };
  return {
    put: async (key, body, options) => driver.put(inside(key), body, options),
    get: async (key, options) => driver.get(inside(key), options),
    list: (prefix, options) => driver.list(inside(prefix), options),
    delete: async (key, options) => driver.delete(inside(key), options),
  };
}
