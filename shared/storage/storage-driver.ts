import type { Readable } from 'node:stream';

/** What a driver knows about one stored object. */
export interface ObjectInfo {
  key: string;
  size: number;
  modifiedAt: Date;
}

/** One part of a multipart upload, recorded in the snapshot record. */
export interface PartInfo {
  partNumber: number;
  size: number;
  /** Hex SHA-256 of the part's bytes. */
  sha256: string;
}

/** The outcome of a successful put. */
export interface PutResult {
  key: string;
  size: number;
  /** Hex SHA-256 of the whole object as written. */
  sha256: string;
  /** Parts when the driver split the object (S3 multipart); absent for a single write. */
  parts?: PartInfo[];
}

export interface TransferProgress {
  /** Bytes moved so far (uploaded or downloaded). */
  loaded: number;
  /** Total bytes when known. */
  total?: number;
}

export interface PutOptions {
  signal?: AbortSignal;
  /** Size of the body in bytes when known in advance. */
  size?: number;
  /** Called as bytes are moved; may be called often, callers throttle. */
  onProgress?: (progress: TransferProgress) => void;
  /**
   * Called by drivers that start a resumable/abortable server-side operation (an S3 multipart
   * upload) with its id, so the job can record it and a retry after a crash can clean it up.
   */
  onUploadStarted?: (uploadId: string) => void | Promise<void>;
}

export interface GetOptions {
  signal?: AbortSignal;
  /** Inclusive byte range; `end` omitted means to the end of the object. */
  range?: { start: number; end?: number };
  onProgress?: (progress: TransferProgress) => void;
}

export interface SignalOptions {
  signal?: AbortSignal;
}

export interface RenameOptions extends SignalOptions {
  /**
   * False: the new name need not be durable on return (no folder fsync). Only for a caller that,
   * after a crash, finds the object as well under `from` (the rename undone) as under `to`.
   * Default true.
   */
  durable?: boolean;
}

/**
 * One small interface for every storage backend (filesystem, S3). Keys are `/`-separated,
 * relative, without `..`; each driver maps them under its own root.
 *
 * Errors: a missing object is always `NotFoundError`; other failures carry the operation and the
 * key in the message (`fs: put snapshots/…: …`) and the original error as `cause`.
 */
export interface StorageDriver {
  /** Short name used in messages and metric labels: `fs`, `s3`. */
  readonly kind: string;
  /**
   * Stores the body under `key` atomically: readers see the old object or the whole new one,
   * never a partial one, and a failed or aborted put leaves nothing under `key`.
   */
  put(key: string, body: Readable, options?: PutOptions): Promise<PutResult>;
  /** Streams the object (or a byte range of it). Throws `NotFoundError` when absent. */
  get(key: string, options?: GetOptions): Promise<Readable>;
  /** Size and time of an object. Throws `NotFoundError` when absent. */
  head(key: string, options?: SignalOptions): Promise<ObjectInfo>;
  /** Every object whose key starts with `prefix`, in no guaranteed order. */
  list(prefix: string, options?: SignalOptions): AsyncIterable<ObjectInfo>;
  /** Removes the object; removing a missing object is not an error. */
  delete(key: string, options?: SignalOptions): Promise<void>;
  /**
   * Gives the object `from` the key `to` in one atomic step, where the storage can (a filesystem:
   * `rename(2)`, then an fsync of `to`'s folder, so the new key is durable on return unless
   * `options.durable` is false; after a crash `from` may be found as well, on a filesystem that
   * does not journal both folders in one step). Object stores have no such step and leave this
   * out; callers then put and delete.
   * @throws NotFoundError when `from` is absent.
   */
  rename?(from: string, to: string, options?: RenameOptions): Promise<void>;
  /**
   * Cleans up a server-side upload left by a crashed attempt (S3 multipart). Drivers without such
   * a notion do nothing.
   */
  abortUpload?(key: string, uploadId: string, options?: SignalOptions): Promise<void>;
  /**
   * Removes what failed or crashed puts left under `prefix` that `list` never shows, last changed
   * before `olderThan`: temp files of puts whose process died, then folders holding no object.
   * For prune. Drivers without such leftovers (S3: the bucket's lifecycle rule ends stranded
   * multipart uploads) do without. Resolves with the keys (`snapshots/<id>/`) of the folders removed.
   */
  sweepLeftovers?(prefix: string, olderThan: Date, options?: SignalOptions): Promise<string[]>;
  /** A time-limited URL that downloads the object without credentials, where supported. */
  presign?(key: string, expiresInSeconds: number): Promise<string>;
  /** Releases clients and sockets. */
  close?(): Promise<void>;
}

/**
 * Receives what a driver does, for metrics. Drivers call it synchronously and never let it
 * throw into a transfer. `operation` is one of `put`, `get`, `head`, `list`, `delete`,
 * `rename`, `upload_part`, `create_upload`, `complete_upload`, `abort_upload` (bounded label set).
 */
export interface StorageObserver {
  request(operation: string, outcome: 'ok' | 'error'): void;
  retry(operation: string): void;
  uploaded(bytes: number): void;
  downloaded(bytes: number): void;
}

export const nullStorageObserver: StorageObserver = {
  request() {},
  retry() {},
  uploaded() {},
  downloaded() {},
};
