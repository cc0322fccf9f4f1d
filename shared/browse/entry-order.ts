import type { SnapshotRecord } from '../catalog/snapshot-record.js';
import { IntegrityError, SnapworkerError } from '../errors.js';
import { showName } from '../fsutil/byte-name.js';
import type { ListedEntry } from '../formats/snapshot-format.js';

/**
 * Snapshots with at most this many entries are sorted in memory when their listing is not in
 * payload order (the few named files of an SQLite, NATS or PostgreSQL payload, yielded in the
 * order the sources were given); bigger listings must arrive in order. Bounds memory to a few MiB.
 */
export const SORT_IN_MEMORY_ENTRIES = 4096;

/**
 * The order of a directory walk (shared/fsutil/walk-tree.ts), which is the order every format
 * lists a directory payload in: depth first, a directory before its children, siblings by name
 * in JavaScript string order. Compared component by component, so `a/b` comes before `a.txt`
 * (plain string order would put `a.txt` first: `.` sorts before `/`).
 * Negative when `a` comes first, 0 when equal.
 */
export function comparePayloadPaths(a: string, b: string): number {
  if (a === b) return 0;
  const as = a.split('/');
  const bs = b.split('/');
  const n = Math.min(as.length, bs.length);
  for (let i = 0; i < n; i++) {
    if (as[i] !== bs[i]) return as[i]! < bs[i]! ? -1 : 1;
  }
  return as.length - bs.length;
}

/**
 * A snapshot's listing in payload order (`comparePayloadPaths`), for merges over two listings
 * (`diff`). A listing is passed through as it streams, checked to be strictly increasing; a
 * small one (at most `sortInMemory` entries by its record, default SORT_IN_MEMORY_ENTRIES) is
 * sorted in memory first.
 * @throws IntegrityError when a small snapshot lists more entries than its record says.
 * @throws SnapworkerError when a big listing is out of order or names one path twice, naming
 *   the snapshot and the two paths (a format that lists in another order must sort).
 */
export async function* inPayloadOrder(record: SnapshotRecord, listing: AsyncIterable<ListedEntry>, sortInMemory = SORT_IN_MEMORY_ENTRIES): AsyncGenerator<ListedEntry> {
  if (record.stats.entries <= sortInMemory) {
    const all: ListedEntry[] = [];
    for await (const entry of listing) {
      all.push(entry);
      if (all.length > sortInMemory) throw new IntegrityError(`snapshot ${record.id}: lists more entries than its record says (${record.stats.entries})`);
    }
    all.sort((a, b) => comparePayloadPaths(a.path, b.path));
    yield* checkedOrder(record, all);
    return;
  }
  yield* checkedOrder(record, listing);
}

async function* checkedOrder(record: SnapshotRecord, listing: AsyncIterable<ListedEntry> | Iterable<ListedEntry>): AsyncGenerator<ListedEntry> {
  let previous: string | undefined;
  for await (const entry of listing) {
    if (previous !== undefined && comparePayloadPaths(previous, entry.path) >= 0) {
      const what = previous === entry.path ? `names ${showName(entry.path)} twice` : `lists ${showName(entry.path)} after ${showName(previous)}`;
      throw new SnapworkerError(`snapshot ${record.id}: its listing ${what}, out of payload order; it cannot be compared`);
    }
    previous = entry.path;
    yield entry;
  }
}
