import { InvalidInputError } from '../errors.js';
import type { StorageDriver } from '../storage/storage-driver.js';

/**
 * Put, get, list and delete of a driver, and nothing more (no head, presign, upload tokens or
 * sweeping). Same contracts as `StorageDriver`: `put` is atomic, `get` throws `NotFoundError`
 * when absent, `list` is in no guaranteed order, deleting a missing object is not an error.
 */
export type ConfinedStorage = Pick<StorageDriver, 'put' | 'get' | 'list' | 'delete'>;

/**
 * A view of `driver` confined to keys under `prefix`, so a store of one concern (SQLite replicas,
 * key objects) cannot reach snapshots, records or `config.json` by a key built wrong.
 * @throws InvalidInputError (from every method) for a key outside `prefix`, naming `what`.
 */
export function confinedStorage(driver: StorageDriver, prefix: string, what: string): ConfinedStorage {
  const inside = (key: string): string => {
    if (!key.startsWith(prefix)) throw new InvalidInputError(`${what}: key "${key}" is outside ${prefix}`);
    return key;
  };
  return {
    put: async (key, body, options) => driver.put(inside(key), body, options),
    get: async (key, options) => driver.get(inside(key), options),
    list: (prefixToList, options) => driver.list(inside(prefixToList), options),
    delete: async (key, options) => driver.delete(inside(key), options),
  };
}
