import { Readable } from 'node:stream';
import type { GarbageCollectionResult } from '../../jobs/results.js';
import type { Repository } from '../catalog/repository.js';
import type { SnapshotRecord } from '../catalog/snapshot-record.js';
import type { ProgressSink } from '../progress.js';
import type { EntryHeader, EntryType, SourceEntry } from '../snapshot/entry.js';
import type { SnapshotManifest, SourceDescriptor } from '../snapshot/manifest.js';
import type { UnchangedFiles } from '../snapshot/unchanged-files.js';
import type { SignalOptions } from '../storage/storage-driver.js';
import type { Compression } from './archive/manifest.js';
import type { SealKey } from './archive/seal.js';

/*
 * The snapshot-format seam (docs/formats.md). The pipeline knows a snapshot only as a manifest
 * and a stream of entries: it hands a format's writer an `AsyncIterable` of entries, and pulls
 * entries back from the format's reader. How the entries become stored objects (one tar per
 * snapshot today; content-defined chunks in shared packs later) is the format's business, and so
 * is checking them on the way back. Layering, as in restic and kopia:
 *
 *   pipeline (sources, targets, retention)
 *     └ SnapshotFormat (archive, …)            entries ⇄ objects, integrity per entry
 *         └ Repository (shared/catalog)         layout: records, config, keys; upload tokens
 *             └ StorageDriver (shared/storage)  bytes under keys: fs, s3
 *
 * Encryption arrives as a layer between a format and the repository's objects (restic's
 * repository encrypts every blob a format stores), so a format never sees a key.
 */

/** One entry as a reader hands it back. */
export interface SnapshotEntry {
  header: EntryHeader;
  /**
   * Files only: the bytes (for a sparse file only its data segments', back to back). Consume it
   * fully, or leave it: asking for the next entry drains what is left. Its bytes are known good
   * only once the iteration ended without an error.
   */
  body: Readable | undefined;
  /**
   * Files a reader had whole in memory (small ones): their bytes, checked like any body. `body`
   * is then a stream of the same bytes, made only when first asked for, so a consumer that takes
   * `bytes` costs no stream (see `entryWithBytes`).
   */
  bytes?: Buffer;
}

/** A file entry whose body is `bytes`; its `body` stream is made on first use. */
export function entryWithBytes(header: EntryHeader, bytes: Buffer): SnapshotEntry {
  let body: Readable | undefined;
  return {
    header,
    bytes,
    get body() {
      body ??= new Readable({
        read() {
          if (bytes.length > 0) this.push(bytes);
          this.push(null);
        },
      });
      return body;
    },
  };
}

/** Options every writer takes; a format ignores what it has no use for. */
export interface FormatWriteOptions {
  /** Default `zstd`. */
  compression?: Compression;
  /** Compression level (zstd default 3). */
  level?: number;
  /** zstd worker threads (0: compress on the calling thread). */
  threads?: number;
  /** Seals the snapshot's checksums with this key (HMAC-SHA256). */
  seal?: SealKey;
}

export interface WriteSnapshotRequest extends FormatWriteOptions {
  repository: Repository;
  /** Fixed before the first entry: what the manifest says is what the record repeats. */
  manifest: SnapshotManifest;
  entries: AsyncIterable<SourceEntry>;
  /** Bytes the source expects to yield, when known (a format may size its buffers and threads by it). */
  estimatedBytes?: number;
  signal: AbortSignal;
  progress: ProgressSink;
  /**
   * Called when the repository starts an upload that a crash would strand (an S3 multipart
   * upload, a file repository's temp file), once per such upload (an archive and its entry index
   * are two), with an opaque token: keep every one (the queue worker keeps them on the job) and
   * hand each to `Repository.discardUpload` before retrying after a crash.
   */
  onUploadToken?: (token: string) => void | Promise<void>;
  /** An incremental snapshot's parent, from this format's `findParent` (the same one the source was told about). */
  parent?: SnapshotParent;
}

/** Finding the parent of an incremental snapshot (restic's `--parent`). */
export interface FindParentRequest {
  repository: Repository;
  /** The new snapshot's source: the default parent is the latest snapshot of its lineage. */
  source: SourceDescriptor;
  /** A snapshot id or prefix naming the parent; absent: the default. */
  parent?: string;
  signal: AbortSignal;
}

/**
 * The parent snapshot an incremental snapshot reuses unchanged files from. Handed to the source
 * (so it does not read them) and to the writer; closed by the pipeline when the snapshot ends.
 */
export interface SnapshotParent extends UnchangedFiles {
  readonly snapshotId: string;
  close(): Promise<void>;
}

/** What a writer stored, for the record. */
export interface WrittenSnapshot {
  /**
   * The record's format-specific fields (the archive format: `archive`, `sealKeyId` when sealed,
   * `keyId` when encrypted; the chunked format: `tree`, and `parent` when incremental).
   */
  fields: Partial<Pick<SnapshotRecord, 'archive' | 'sealKeyId' | 'keyId' | 'tree' | 'parent'>>;
  stats: { entries: number; files: number; rawBytes: number; storedBytes: number };
}

export interface OpenSnapshotRequest {
  repository: Repository;
  record: SnapshotRecord;
  signal: AbortSignal;
  progress: ProgressSink;
  /** Seal keys by key id; a sealed snapshot is checked when its key is known. */
  sealKeys?: Record<string, Buffer>;
  /**
   * Partial reads (restore --include/--exclude, a sub-path, dump): payload entries whose path
   * this refuses are not handed out, and a format that can skip their bytes (an entry index,
   * seekable frames, packs) does not read them. Absent: every entry. `type` is passed when the
   * format knows it before reading (an index): a restore by glob selects every directory that
   * may hold a match, but only the files that match.
   */
  select?: (path: string, type?: EntryType) => boolean;
}

/** One entry as a listing hands it back: the header, and for files their SHA-256 when the format keeps it. */
export interface ListedEntry extends EntryHeader {
  /** Lowercase hex SHA-256 of a file's content, when the format stores it. */
  sha256?: string;
}

/** Counts from a whole read, once the iteration ended. */
export interface ReadSummary {
  /** Payload entries. */
  entries: number;
  /** Payload regular files. */
  files: number;
  /** Bytes of the payload files. */
  rawBytes: number;
  /** True when a seal was present and verified with a known key. */
  sealed: boolean;
}

/**
 * A snapshot being read. `manifest` is checked (and names the record's snapshot) before the
 * reader is handed out. `entries` may be iterated once: it ends normally only when everything
 * read verified against the snapshot's checksums and the record, and throws the integrity error
 * otherwise. Stopping early (break, a throw in the loop, the signal) stops the download and any
 * decompression thread; `close` does the same and is safe to call more than once and after the end.
 */
export interface SnapshotReader {
  readonly manifest: SnapshotManifest;
  readonly entries: AsyncIterable<SnapshotEntry>;
  /** @throws Error when called before `entries` ended normally. */
  summary(): ReadSummary;
  close(): Promise<void>;
}

/** Options for a format's repository-wide maintenance (prune). */
export interface CollectGarbageOptions extends SignalOptions {
  /** Records that are kept: whatever they reference stays. */
  live: readonly SnapshotRecord[];
  /** Objects changed after this may belong to a snapshot in flight: kept (kopia's safety window). */
  olderThan: Date;
  dryRun: boolean;
}

/** What a format's garbage collection did: the keys it removed, and its counts for the prune result. */
export interface CollectedGarbage {
  removed: string[];
  summary: GarbageCollectionResult;
}

/** Options for a format's structural check of a repository (`check`). */
export interface CheckFormatOptions extends SignalOptions {
  /** Every complete snapshot of this format the check found, with a valid record. */
  records: readonly SnapshotRecord[];
  /** Report objects checked with `addEntries` (a long check without progress is taken for a stall). */
  progress?: ProgressSink;
}

/**
 * One way of storing snapshots in a repository, named in each record's `format` and in the
 * repository's `config.json` (`snapshotFormat`, the default for new snapshots). Registered in
 * `registry.ts`, one line per format.
 */
export interface SnapshotFormat {
  /** The name records carry, e.g. `archive`. */
  readonly name: string;
  /** Stores a snapshot (everything but its record, which the pipeline writes last). */
  write(request: WriteSnapshotRequest): Promise<WrittenSnapshot>;
  /**
   * Incremental formats: the parent snapshot for a new snapshot of `source` (the one named, or by
   * default the latest of its lineage in this format), or undefined when there is none.
   * @throws InvalidInputError when the named parent is of another lineage or format;
   *   NotFoundError when it does not exist.
   */
  findParent?(request: FindParentRequest): Promise<SnapshotParent | undefined>;
  /** Opens a stored snapshot for reading (restore, verify). */
  open(request: OpenSnapshotRequest): Promise<SnapshotReader>;
  /**
   * Lists a stored snapshot's payload entries without reading its file data (an archive's entry
   * index, a chunked snapshot's trees), in payload order. Resolves undefined when this snapshot
   * keeps nothing to list from (an archive written before entry indexes): the caller then reads
   * the snapshot through `open`. Honours `select` and `signal`.
   */
  listEntries?(request: OpenSnapshotRequest): Promise<AsyncIterable<ListedEntry> | undefined>;
  /**
   * The objects a committed snapshot needs, checked to exist after its record was written (a
   * prune with a short grace may have taken them for debris).
   */
  requiredKeys(record: SnapshotRecord): string[];
  /** The one object that holds the whole snapshot readable by stock tools (`link`), if any. */
  downloadKey?(record: SnapshotRecord): string | undefined;
  /** Deletes a snapshot: its record first, so it stops being listed, then every object only it uses. */
  delete(repository: Repository, record: SnapshotRecord, options?: SignalOptions): Promise<void>;
  /**
   * For formats whose snapshots share objects (packs): removes objects no live record references.
   * Resolves with the keys removed (or, in a dry run, that would be) and what the collection did,
   * or undefined when the repository holds no such objects. Formats that keep each snapshot's
   * objects under its own folder do without: prune's incomplete-snapshot sweep covers them.
   */
  collectGarbage?(repository: Repository, options: CollectGarbageOptions): Promise<CollectedGarbage | undefined>;
  /**
   * For formats whose snapshots share objects (packs, indexes): checks the repository's structure
   * beyond what every format gets checked for (each record parses, each of its `requiredKeys`
   * exists), e.g. that every pack an index names exists with its size and every blob a snapshot
   * needs is indexed, reading no file data. Resolves with one line per problem found (empty: none).
   * @throws only for failures to check (network, abort), never for what it found.
   */
  check?(repository: Repository, options: CheckFormatOptions): Promise<string[]>;
}
