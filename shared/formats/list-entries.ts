import type { Repository } from '../catalog/repository.js';
import type { SnapshotRecord } from '../catalog/snapshot-record.js';
import { nullProgress, type ProgressSink } from '../progress.js';
import type { EntryHeader } from '../snapshot/entry.js';
import { contentHash } from './archive/sparse-content.js';
import { formatOf } from './registry.js';
import type { ListedEntry, OpenSnapshotRequest } from './snapshot-format.js';

/** Options of `listEntries`. */
export interface ListEntriesOptions {
  signal: AbortSignal;
  /** Default: no progress reported. */
  progress?: ProgressSink;
  /** Seal keys by key id, for snapshots read whole (a sealed snapshot is checked when its key is known). */
  sealKeys?: Record<string, Buffer>;
  /** Only payload entries whose path this accepts (see `OpenSnapshotRequest.select`). Default: all. */
  select?: (path: string) => boolean;
  /**
   * Default true. False: a snapshot read whole is still verified, but its files are not hashed
   * for the listing (`sha256` absent), for callers that only need names (`find`).
   */
  hash?: boolean;
}

/**
 * A snapshot's payload entries, in payload order, each file with the SHA-256 of its logical
 * content (holes as zeros, as `sha256sum` of the restored file says), for every format and every
 * snapshot a repository holds:
 *
 * - through the format's own listing (`SnapshotFormat.listEntries`: an entry index, trees) when
 *   it has one for this snapshot, reading no file data;
 * - otherwise by reading the whole snapshot through `format.open` and hashing each file's body as
 *   it streams by (archives written before entry indexes). Memory stays one chunk and one
 *   header; the iteration ends normally only when the whole read verified (sums, record, seal),
 *   and throws the format's IntegrityError otherwise, so a listing is never trusted on bytes that
 *   failed their checks.
 *
 * Stopping early (break, the signal) closes the reader.
 * @throws IntegrityError for a format this version does not know, and whatever the format throws.
 */
export async function* listEntries(repository: Repository, record: SnapshotRecord, options: ListEntriesOptions): AsyncGenerator<ListedEntry> {
  const format = formatOf(record);
  const request: OpenSnapshotRequest = {
    repository,
    record,
    signal: options.signal,
    progress: options.progress ?? nullProgress,
    sealKeys: options.sealKeys,
    select: options.select,
  };
  const listed = await format.listEntries?.(request);
  if (listed) {
    yield* listed;
    return;
  }
  const select = options.select ?? (() => true);
  const reader = await format.open(request);
  try {
    for await (const { header, body } of reader.entries) {
      // A format that honours `select` already left these out; one that does not is filtered here.
      if (!select(header.path)) continue;
      if (header.type !== 'file' || !body || options.hash === false) {
        yield listedHeader(header);
        continue;
      }
      const hash = contentHash(header.sparse, header.size, header.path, () => {});
      for await (const chunk of body as AsyncIterable<Buffer>) await hash.update(chunk);
      yield { ...listedHeader(header), sha256: await hash.digest() };
    }
  } finally {
    await reader.close();
  }
}

/** The header's fields only: a reader's header object may carry more than a listing shows. */
function listedHeader(header: EntryHeader): ListedEntry {
  const { path, type, mode, mtime, mtimeNs, size, linkTarget, sparse, xattrs, devMajor, devMinor } = header;
  return {
    path,
    type,
    mode,
    mtime,
    size,
    ...(mtimeNs !== undefined ? { mtimeNs } : {}),
    ...(linkTarget !== undefined ? { linkTarget } : {}),
    ...(sparse !== undefined ? { sparse } : {}),
    ...(xattrs !== undefined ? { xattrs } : {}),
    ...(devMajor !== undefined ? { devMajor } : {}),
    ...(devMinor !== undefined ? { devMinor } : {}),
  };
}
