import { Readable } from 'node:stream';
import { IntegrityError } from '../errors.js';
import { mapOrdered } from '../fsutil/map-ordered.js';
import type { ObjectInfo, SignalOptions, StorageDriver } from '../storage/storage-driver.js';
import { indexObjectSchema, newIndexObjectKey, parseIndexKey, type IndexObject } from './index-layout.js';
import { readText } from './read-text.js';

/** Index objects are read this many at a time (kopia loads manifests 8 at a time). */
export const INDEX_READ_CONCURRENCY = 16;
/** A lineage's index object holds about 300 bytes per snapshot; 64 MiB is some 200,000 of them. */
const INDEX_OBJECT_LIMIT = 64 * 1024 * 1024;

/** The objects of one lineage folder, as listed. */
export interface IndexFolder {
  folder: string;
  objects: ObjectInfo[];
  pending: Array<{ id: string; info: ObjectInfo }>;
}

/** Lists index folders under `prefix` (`index/` for all, or one lineage's folder), in one listing. */
export async function listIndexFolders(driver: StorageDriver, prefix: string, options?: SignalOptions): Promise<Map<string, IndexFolder>> {
  const folders = new Map<string, IndexFolder>();
  for await (const info of driver.list(prefix, options)) {
    const parsed = parseIndexKey(info.key);
    if (!parsed) continue;
    let folder = folders.get(parsed.folder);
    if (!folder) folders.set(parsed.folder, (folder = { folder: parsed.folder, objects: [], pending: [] }));
    if (parsed.kind === 'object') folder.objects.push(info);
    else folder.pending.push({ id: parsed.id, info });
  }
  return folders;
}

/**
 * Reads and checks one index object.
 * @throws NotFoundError when it is gone (a concurrent compaction merged it).
 * @throws IntegrityError when it is not a valid index object, naming it and the way out.
 */
export async function readIndexObject(driver: StorageDriver, key: string, options?: SignalOptions): Promise<IndexObject> {
  const text = await readText(await driver.get(key, options), `index object ${key}`, INDEX_OBJECT_LIMIT);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new IntegrityError(`index object ${key} is not JSON ("snapworker catalog rebuild" rebuilds the index from the records)`, { cause: err });
  }
  const result = indexObjectSchema.safeParse(parsed);
  if (!result.success) {
    throw new IntegrityError(`index object ${key} is invalid: ${result.error.issues[0]?.message} ("snapworker catalog rebuild" rebuilds the index from the records)`);
  }
  return result.data;
}

/** Reads several index objects, `INDEX_READ_CONCURRENCY` at a time, in the order given. */
export async function readIndexObjects(driver: StorageDriver, keys: readonly string[], options?: SignalOptions): Promise<IndexObject[]> {
  const objects: IndexObject[] = [];
  for await (const object of mapOrdered(keys, INDEX_READ_CONCURRENCY, (key) => readIndexObject(driver, key, options))) objects.push(object);
  return objects;
}

/** Writes a new, uniquely named index object (atomically, as every put). Resolves with its key. */
export async function writeIndexObject(driver: StorageDriver, object: IndexObject, options?: SignalOptions): Promise<string> {
  const key = newIndexObjectKey(object.lineage);
  await putIndexObject(driver, key, object, options);
  return key;
}

/** Stores `object` as an index object's bytes under `key` (a pending commit's marker holds the same, see CatalogIndex). */
export async function putIndexObject(driver: StorageDriver, key: string, object: IndexObject, options?: SignalOptions): Promise<void> {
  const body = Buffer.from(JSON.stringify(object) + '\n');
  await driver.put(key, Readable.from([body]), { ...options, size: body.length });
}
