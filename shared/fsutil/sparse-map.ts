import { closeSync, openSync } from 'node:fs';
import type { DataSegment } from '../snapshot/sparse-segments.js';
import { seekData, seekHole } from './native-fs.js';
import { errnoCode } from './errno.js';
import { READ_FLAGS } from './tree-io.js';

const NO_HOLE_MAP = new Set(['EINVAL', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS']);

/**
 * True when a file may have holes: fewer 512-byte blocks allocated than its size needs. Only
 * such files are scanned for holes, so ordinary files cost nothing extra. (A file whose blocks
 * hold compressed or inline data may pass too; the scan then finds it dense.)
 */
export function mayHaveHoles(stats: { size: number | bigint; blocks: number | bigint }): boolean {
  return stats.size > 0 && BigInt(stats.blocks) * 512n < BigInt(stats.size);
}

/**
 * The data segments of the file at `absPath` within its first `size` bytes, found with
 * SEEK_DATA/SEEK_HOLE (the filesystem's own map, so no byte is read), or undefined when the file
 * turns out to have no hole there or more than `maxSegments` segments (it is then stored
 * densely, as a plain file). Segments are in order, non-empty and within `size`; growth past
 * `size` is ignored, as the archive takes the size seen when the file was listed.
 *
 * Opened with the tree walk's flags (never follows a symlink, never blocks on a FIFO). A
 * filesystem without SEEK_DATA support (EINVAL, EOPNOTSUPP) also gives undefined.
 *
 * @throws the raw system error (ENOENT when the file vanished, EACCES, ...).
 */
export function findDataSegments(absPath: string | Buffer, size: number, maxSegments: number): DataSegment[] | undefined {
  const fd = openSync(absPath, READ_FLAGS);
  try {
    const segments: DataSegment[] = [];
    let offset = 0;
    while (offset < size) {
      const start = seekData(fd, offset);
      if (start === -1 || start >= size) break;
      const end = Math.min(seekHole(fd, start), size);
      if (end <= start) break;
      if (segments.length === maxSegments) return undefined;
      segments.push({ offset: start, length: end - start });
      offset = end;
    }
    const dense = segments.length === 1 && segments[0]!.offset === 0 && segments[0]!.length === size;
    return dense ? undefined : segments;
  } catch (err) {
    // A filesystem that cannot tell (no SEEK_DATA, as some FUSE and network filesystems) gets the
    // file read whole, like any other.
    if (NO_HOLE_MAP.has(errnoCode(err) ?? '')) return undefined;
    throw err;
  } finally {
    closeSync(fd);
  }
}
