import { open, type FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { SnapworkerError } from '../errors.js';
import { fsPath, showName } from './byte-name.js';
import { fileShrank, READ_FLAGS } from './tree-io.js';

/**
 * Opens a file for reading without following a final symlink and checks it is still a regular
 * file. Errors from `open` (ENOENT when the file vanished, EACCES, ELOOP for a symlink) are passed
 * through unchanged so callers can tell them apart.
 *
 * @throws SnapworkerError when the path is no longer a regular file.
 */
export async function openRegularFile(absPath: string): Promise<FileHandle> {
  const handle = await open(fsPath(absPath), READ_FLAGS);
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) throw new SnapworkerError(`read ${showName(absPath)}: no longer a regular file`);
    return handle;
  } catch (err) {
    await handle.close();
    throw err;
  }
}

/**
 * Streams the bytes of the given segments of an open file (`offset`, `length` in bytes, in
 * order), back to back, in chunks of up to `chunkBytes`, then closes it (also when the stream
 * is destroyed early). A sparse file's data segments are read this way, never its holes. A file
 * that ends before a segment does fails the stream with an error naming it.
 */
export function streamFileSegments(
  handle: FileHandle,
  absPath: string,
  segments: readonly { offset: number; length: number }[],
  chunkBytes: number,
  listed?: ListedFile,
): Readable {
  async function* chunks(): AsyncGenerator<Buffer> {
    try {
      for (const { offset, length } of segments) {
        const end = offset + length;
        for (let position = offset; position < end; ) {
          const buffer = Buffer.allocUnsafe(Math.min(chunkBytes, end - position));
          const filled = await readInto(handle, buffer, position);
          position += filled;
          if (filled < buffer.length) throw fileShrank(absPath, end, position);
          yield buffer;
        }
      }
      if (listed) await checkUnchanged(handle, listed);
    } finally {
      await handle.close();
    }
  }
  return Readable.from(chunks(), { objectMode: false, highWaterMark: chunkBytes });
}

/** A file as the walk listed it, and whom to tell when it changed while it was read. */
export interface ListedFile {
  size: number;
  mtimeNs: bigint;
  /** Told once, with a reason (`size 10 → 12 bytes`, `modified`), after the last byte was read. */
  onChanged(reason: string): void;
}

/**
 * After the last read: the file's size and mtime against what the walk listed. A file written
 * to while it was read may be stored as a mix of two versions (tar's "file changed as we read
 * it"); the snapshot keeps what it read and names the file.
 */
async function checkUnchanged(handle: FileHandle, listed: ListedFile): Promise<void> {
  const now = await handle.stat({ bigint: true });
  if (now.size !== BigInt(listed.size)) listed.onChanged(`changed while read: size ${listed.size} → ${now.size} bytes`);
  else if (now.mtimeNs !== listed.mtimeNs) listed.onChanged('changed while read: modified');
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

/**
 * A stream of one already-read buffer. Cheaper than `Readable.from([bytes])` (which goes through
 * an async iterator), and this is created once per small file.
 */
export function bufferStream(bytes: Buffer): Readable {
  return new Readable({
    read() {
      if (bytes.length > 0) this.push(bytes);
      this.push(null);
    },
  });
}
