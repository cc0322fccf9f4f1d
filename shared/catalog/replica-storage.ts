import type { StorageDriver } from '../storage/storage-driver.js';
import { confinedStorage, type ConfinedStorage } from './confined-storage.js';

/** Where SQLite replicas live in a repository (layout in `shared/kinds/sqlite/replication/replica-layout.ts`). */
export const REPLICAS = 'replicas/';

/**
 * The objects of a repository's SQLite replicas: what `ReplicaStore` needs, and nothing more
 * (no head, presign, upload tokens or sweeping). Every key starts with `replicas/`. Same
 * contracts as `StorageDriver`: `put` is atomic, `get` throws `NotFoundError` when absent,
 * `list` is in no guaranteed order, deleting a missing object is not an error.
 */
export type ReplicaStorage = ConfinedStorage;

/**
 * A view of `driver` confined to `replicas/`, so the replica store cannot reach snapshots,
 * records or `config.json` by a key built wrong.
 * @throws InvalidInputError (from every method) for a key outside `replicas/`.
 */
export function replicaStorageOn(driver: StorageDriver): ReplicaStorage {
  return confinedStorage(driver, REPLICAS, 'replica storage');
}
