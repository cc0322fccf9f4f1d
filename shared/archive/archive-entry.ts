import type { Readable } from 'node:stream';

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
}

/** An entry a source hands to the archive writer: the header, and for files a way to open the bytes. */
export interface SourceEntry extends EntryHeader {
  /**
   * Opens the file's bytes. Called once, in entry order; the stream must yield exactly `size`
   * bytes. Sources that read ahead may return an already-buffered stream.
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
