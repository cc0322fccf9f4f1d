import type { Readable } from 'node:stream';
import type { DataSegment } from './pax-sparse.js';
import type { Xattr } from './pax-xattrs.js';

export type EntryType = 'file' | 'directory' | 'symlink';

/** The header of one payload entry, as written to and read from the tar stream. */
export interface EntryHeader {
  /** Relative POSIX path inside the archive, e.g. `data/etc/app.conf`. Never absolute, never `..`. */
  path: string;
  type: EntryType;
  /** Permission bits (0o7777 at most). */
  mode: number;
  mtime: Date;
  /** Byte length; required for files, 0 for the others. */
  size: number;
  /** Link target, for symlinks only. */
  linkTarget?: string;
  /**
   * Files only: the file is sparse, and these are its data segments (in order, non-empty,
   * within `size`); everything between them is a hole. `size` stays the logical size. A
   * source's `open()` and a reader's body then yield only the segments' bytes, back to back.
   * Stored in pax sparse format 1.0 (see pax-sparse.ts).
   */
  sparse?: readonly DataSegment[];
  /** Extended attributes, sorted by name (see pax-xattrs.ts). */
  xattrs?: readonly Xattr[];
}

/** An entry a source hands to the archive writer: the header, and for files a way to open the bytes. */
export interface SourceEntry extends EntryHeader {
  /**
   * Opens the file's bytes. Called once, in entry order; the stream must yield exactly `size`
   * bytes (for a sparse file, exactly the data segments' bytes). Sources that read ahead may
   * return an already-buffered stream.
   */
  open?: () => Readable | Promise<Readable>;
  /**
   * The file's whole content, when the source already holds it in memory (small files read
   * ahead). The archive writer then hashes and copies it directly instead of calling `open()`,
   * which saves a stream per file. Must be exactly `size` bytes.
   */
  bytes?: Buffer;
  /**
   * The source already reported these bytes to progress while it staged them (a NATS snapshot
   * received into a temp file); the archive writer then does not count them a second time.
   */
  progressCounted?: boolean;
}
