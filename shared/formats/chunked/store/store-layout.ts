/** Keys of the chunked store's objects (docs/chunked-format.md, "Storage layout"). */

export const PACKS_PREFIX = 'packs/';
export const INDEX_PREFIX = 'pack-index/';

const HEX_ID = /^[0-9a-f]{64}$/;

/** `packs/<first 2 hex digits>/<pack id>`: 256 folders keep filesystem directories small. */
export function packKey(packId: string): string {
  return `${PACKS_PREFIX}${packId.slice(0, 2)}/${packId}`;
}

/** The pack id a key names, or undefined for anything else under `packs/`. */
export function packIdOfKey(key: string): string | undefined {
  const match = /^packs\/([0-9a-f]{2})\/([0-9a-f]{64})$/.exec(key);
  return match && match[2]!.startsWith(match[1]!) ? match[2] : undefined;
}

/**
 * `pack-index/<index id>`: not `index/`, which the catalog index (shared/catalog/index-layout.ts)
 * already uses for its lineage folders and marker.
 */
export function indexKey(indexId: string): string {
  return `${INDEX_PREFIX}${indexId}`;
}

/** The index id a key names, or undefined for anything else under `pack-index/`. */
export function indexIdOfKey(key: string): string | undefined {
  const id = key.slice(INDEX_PREFIX.length);
  return key.startsWith(INDEX_PREFIX) && HEX_ID.test(id) ? id : undefined;
}

/** True for 64 lowercase hex characters (a blob, pack or index id). */
export function isHexId(id: string): boolean {
  return HEX_ID.test(id);
}
