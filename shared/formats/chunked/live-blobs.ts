import type { SnapshotRecord } from '../../catalog/snapshot-record.js';
import { IntegrityError } from '../../errors.js';
import type { BlobStore } from './store/blob-store.js';
import { walkTree } from './tree-walk.js';

/**
 * A set of blob ids in about 8 bytes each, however many snapshots reference them: ids are keyed
 * hashes, so their first 52 bits are as good as random, and a collision can only keep a blob
 * that is garbage, never drop a live one.
 */
export class LiveBlobSet {
  private readonly keys = new Set<number>();

  add(id: string): void {
    this.keys.add(keyOf(id));
  }

  has(id: string): boolean {
    return this.keys.has(keyOf(id));
  }

  get size(): number {
    return this.keys.size;
  }
}

function keyOf(id: string): number {
  return Number.parseInt(id.slice(0, 13), 16);
}

/**
 * Marks every blob the records reach: root trees, subtrees, file chunks. A subtree met before
 * (shared by snapshots, or unchanged since the last one) is not walked again, so the work grows
 * with the distinct trees, not with snapshots times tree size.
 * @throws IntegrityError when a record's tree is missing or damaged: collecting then would drop
 *   blobs the unreadable part still uses, so nothing is collected.
 */
export async function markLiveBlobs(store: BlobStore, records: readonly SnapshotRecord[], signal: AbortSignal): Promise<LiveBlobSet> {
  const live = new LiveBlobSet();
  for (const record of records) {
    if (record.tree === undefined) throw new IntegrityError(`snapshot ${record.id}: chunked record without a root tree`);
    if (live.has(record.tree)) continue;
    live.add(record.tree);
    const walk = walkTree(store, record.tree, {
      signal,
      where: `snapshot ${record.id}`,
      descend: (_path, node) => {
        if (live.has(node.tree!)) return false;
        live.add(node.tree!);
        return true;
      },
    });
    for await (const { node } of walk) for (const chunk of node.chunks ?? []) live.add(chunk);
  }
  return live;
}
