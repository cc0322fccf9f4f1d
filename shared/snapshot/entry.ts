import type { Readable } from 'node:stream';
import type { DataSegment } from './sparse-segments.js';
import type { Xattr } from './xattr.js';
import { SnapworkerError } from '../errors.js';

/**
 * Thrown by `SourceEntry.open()` for a file deleted since it was listed. The archive writer
 * leaves the entry out instead of failing; the source has already reported it (a notice), so
 * nothing goes missing in silence. Any other error from `open()` fails the snapshot.
 */
export class EntryVanishedError extends SnapworkerError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EntryVanishedError';
  }
}

/**
 * Kinds of payload entry (tar type flags 0, 1, 2, 3, 4, 5, 6). A `hardlink` is a further name of
 * an earlier file entry of the same archive (`linkTarget` is that entry's path), as GNU tar
 * writes them: the first name carries the data, the later ones none.
 */
export type EntryType = 'file' | 'directory' | 'symlink' | 'hardlink' | 'fifo' | 'chardev' | 'blockdev';

/**
 * The header of one payload entry: what a source yields, a format stores, and a format's reader
 * hands back to a restore target. Format-neutral (the archive format maps it to tar headers).
 */
export interface EntryHeader {
  /**
   * Relative POSIX path inside the archive, e.g. `data/etc/app.conf`. Never absolute, never `..`.
   * Names are bytes: this is their lossless string form (see `fsutil/byte-name.ts`), equal to
   * the plain text for every UTF-8 name.
   */
  path: string;
  type: EntryType;
  /** Permission bits (0o7777 at most). */
  mode: number;
  /** Modification time, to the millisecond (for listings); `mtimeNs` is the exact value when set. */
  mtime: Date;
  /** Modification time in nanoseconds since the epoch (negative before 1970); wins over `mtime`. */
  mtimeNs?: bigint;
  /** Byte length; required for files, 0 for the others. */
  size: number;
  /** Symlinks: the target, any bytes, kept as is. Hard links: the path of the earlier entry. */
  linkTarget?: string;
  /**
   * Files only: the file is sparse, and these are its data segments (in order, non-empty,
   * within `size`); everything between them is a hole. `size` stays the logical size. A
   * source's `open()` and a reader's body then yield only the segments' bytes, back to back.
   * The archive format stores this in pax sparse format 1.0 (formats/archive/pax-sparse.ts).
   */
  sparse?: readonly DataSegment[];
  /** Extended attributes, sorted by name (see xattr.ts). */
  xattrs?: readonly Xattr[];
  /** Character and block devices: the device numbers. */
  devMajor?: number;
  devMinor?: number;
}

/** The entry's exact mtime in nanoseconds. */
export function entryMtimeNs(header: EntryHeader): bigint {
  return header.mtimeNs ?? BigInt(header.mtime.getTime()) * 1_000_000n;
}

/**
 * Facts a source knows about a file besides its header, which tell an incremental snapshot that
 * the file is the one a parent snapshot stored (restic's and kopia's change detection: size,
 * mtime, ctime and inode equal means unchanged). Formats that keep no parent ignore them.
 */
export interface FileIdentity {
  /** Status change time in nanoseconds since the epoch (any write, chmod or rename moves it). */
  ctimeNs: bigint;
  inode: bigint;
  /** The filesystem's device number (`st_dev`). */
  device: bigint;
}

/** An entry a source hands to the archive writer: the header, and for files a way to open the bytes. */
export interface SourceEntry extends EntryHeader {
  /** Regular files of sources that stat them (the dir kind): see FileIdentity. */
  identity?: FileIdentity;
  /**
   * Opens the file's bytes. Called once, in entry order; the stream must yield exactly `size`
   * bytes (for a sparse file, exactly the data segments' bytes). Sources that read ahead may
   * return an already-buffered stream. Throws `EntryVanishedError` when the file is gone since
   * it was listed (deleted by its application, e.g. a rotated log): the entry is then left out
   * of the archive, and the source, which threw it, has reported it as `vanished`.
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
