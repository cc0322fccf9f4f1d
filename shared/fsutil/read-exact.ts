import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { SnapworkerError } from '../errors.js';

// O_NOFOLLOW: a file swapped for a symlink after it was listed is not followed out of the tree.
// O_NONBLOCK: a file swapped for a FIFO does not hang the open; regular files ignore the flag.
const READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/**
 * Opens a file for reading without following a final symlink and checks it is still a regular
 * file. Errors from `open` (ENOENT when the file vanished, EACCES, ELOOP for a symlink) are passed
 * through unchanged so callers can tell them apart.
 *
 * @throws SnapworkerError when the path is no longer a regular file.
 */
export async function openRegularFile(absPath: string): Promise<FileHandle> {
  const handle = await open(absPath, READ_FLAGS);
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) throw new SnapworkerError(`read ${absPath}: no longer a regular file`);
    return handle;
  } catch (err) {
    await handle.close();
    throw err;
  }
}

/**
 * Reads exactly `size` bytes of a file into one buffer. Bytes beyond `size` (a file that grew
 * since it was listed) are ignored, as tar does: the archive header already promised `size`.
 *
 * @throws SnapworkerError (retryable) naming the file when it shrank below `size`.
 */
export async function readFileExactly(absPath: string, size: number): Promise<Buffer> {
  const handle = await openRegularFile(absPath);
  try {
    const buffer = Buffer.allocUnsafe(size);
    const filled = await readInto(handle, buffer, 0);
    if (filled < size) throw shrank(absPath, size, filled);
    return buffer;
  } finally {
    await handle.close();
  }
}

/**
 * Streams exactly `size` bytes of an open file in chunks of up to `chunkBytes`, then closes it
 * (also when the stream is destroyed early). Growth past `size` is ignored; a file that ends
 * early fails the stream with an error naming it.
 */
export function streamFileExactly(handle: FileHandle, absPath: string, size: number, chunkBytes: number): Readable {
  async function* chunks(): AsyncGenerator<Buffer> {
    try {
      let position = 0;
      while (position < size) {
        const buffer = Buffer.allocUnsafe(Math.min(chunkBytes, size - position));
        const filled = await readInto(handle, buffer, position);
        position += filled;
        if (filled < buffer.length) throw shrank(absPath, size, position);
        yield buffer;
      }
    } finally {
      await handle.close();
    }
  }
  return Readable.from(chunks(), { objectMode: false, highWaterMark: chunkBytes });
}

/** Fills `buffer` from `position` on; returns how many bytes were read before end of file. */
async function readInto(handle: FileHandle, buffer: Buffer, position: number): Promise<number> {
  let filled = 0;
  while (filled < buffer.length) {
    const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, position + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return filled;
}

function shrank(absPath: string, expected: number, got: number): SnapworkerError {
  return new SnapworkerError(
    `read ${absPath}: file shrank while being read (listed with ${expected} bytes, only ${got} there); ` +
      'the archive needs the size up front, so retry when the file is not being rewritten',
  );
}
