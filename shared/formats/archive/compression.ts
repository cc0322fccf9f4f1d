import { availableParallelism } from 'node:os';
import { PassThrough, type Transform } from 'node:stream';
import { constants as zlibConstants, createGunzip, createGzip } from 'node:zlib';
import { InvalidInputError } from '../../errors.js';
import type { Compression } from './manifest.js';
import { SeekableZstdCompressStream } from './seekable/frame-compressor.js';
import { ThreadedZstdDecompressStream } from './zstd-decompress-thread.js';

/** zstd level when none is given (the zstd CLI's default). */
export const DEFAULT_ZSTD_LEVEL = 3;
/** gzip level when none is given (zlib's default). */
export const DEFAULT_GZIP_LEVEL = 6;

const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);
const GZIP_MAGIC = Buffer.from([0x1f, 0x8b]);
/** Bytes `detectCompression` needs to decide. */
export const COMPRESSION_MAGIC_BYTES = ZSTD_MAGIC.length;

// zlib's default 16 KiB chunks mean four times the callbacks for the same bytes.
const ZLIB_CHUNK_BYTES = 64 * 1024;

export interface CompressOptions {
  /** zstd: 1..19 (default 3; negative levels are faster); gzip: 0..9 (default 6). Ignored for `none`. */
  level?: number;
  /**
   * zstd worker threads, each compressing whole frames; 0 compresses on the calling thread.
   * Default: the number of CPUs, like `zstd -T0`, which also frees the event loop for reading
   * and hashing. Ignored for gzip and none.
   */
  threads?: number;
}

/**
 * The stream that compresses an archive. zstd is written seekable (seekable/frame-compressor.ts):
 * independent frames of FRAME_BYTES tar bytes and the seek table after them.
 * Throws InvalidInputError for an unknown compression or bad level.
 */
export function createCompressStream(compression: Compression, options: CompressOptions = {}): Transform {
  switch (compression) {
    case 'zstd':
      // Every frame carries a content checksum like the zstd CLI writes: corruption shows up in `zstd -t` too.
      return new SeekableZstdCompressStream({ level: options.level ?? DEFAULT_ZSTD_LEVEL, threads: options.threads ?? availableParallelism() });
    case 'gzip':
      return createGzip({ level: options.level ?? DEFAULT_GZIP_LEVEL, chunkSize: ZLIB_CHUNK_BYTES });
    case 'none':
      return new PassThrough();
    default:
      throw new InvalidInputError(`archive: unknown compression ${JSON.stringify(compression)}`);
  }
}

/**
 * The stream that decompresses an archive. zstd input must be one frame, or frames with the seek
 * table that lists them, with nothing after (ThreadedZstdDecompressStream, which decompresses in
 * a worker thread); gzip follows zlib (several members are concatenated, trailing
 * zero bytes are skipped: the archive reader checks the byte counts itself).
 */
export function createDecompressStream(compression: Compression): Transform {
  switch (compression) {
    case 'zstd':
      return new ThreadedZstdDecompressStream();
    case 'gzip':
      return createGunzip({ chunkSize: ZLIB_CHUNK_BYTES, finishFlush: zlibConstants.Z_FINISH });
    case 'none':
      return new PassThrough();
    default:
      throw new InvalidInputError(`archive: unknown compression ${JSON.stringify(compression)}`);
  }
}

/** The compression of an archive from its first bytes: zstd `28 b5 2f fd`, gzip `1f 8b`, otherwise none. */
export function detectCompression(head: Buffer): Compression {
  if (head.length >= ZSTD_MAGIC.length && head.subarray(0, ZSTD_MAGIC.length).equals(ZSTD_MAGIC)) return 'zstd';
  if (head.length >= GZIP_MAGIC.length && head.subarray(0, GZIP_MAGIC.length).equals(GZIP_MAGIC)) return 'gzip';
  return 'none';
}

/** The archive's object name in a repository for each compression. */
export function archiveFileName(compression: Compression): string {
  switch (compression) {
    case 'zstd':
      return 'archive.tar.zst';
    case 'gzip':
      return 'archive.tar.gz';
    case 'none':
      return 'archive.tar';
    default:
      throw new InvalidInputError(`archive: unknown compression ${JSON.stringify(compression)}`);
  }
}
