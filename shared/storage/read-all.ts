import type { Readable } from 'node:stream';
import { IntegrityError } from '../errors.js';

/**
 * Reads a stored object (or a range of one) whose length is known into one Buffer.
 * @throws IntegrityError when the stream ends short of `length` or goes past it (naming `what`).
 */
export async function readExactly(stream: Readable, length: number, what: string): Promise<Buffer> {
  const buffer = Buffer.allocUnsafe(length);
  let filled = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    if (filled + chunk.length > length) {
      stream.destroy();
      throw new IntegrityError(`${what}: longer than the ${length} bytes expected`);
    }
    chunk.copy(buffer, filled);
    filled += chunk.length;
  }
  if (filled !== length) throw new IntegrityError(`${what}: ${filled} bytes where ${length} were expected (truncated)`);
  return buffer;
}

/**
 * Reads a whole small object (an index object) into one Buffer, refusing more than `limitBytes`.
 * @throws IntegrityError past the limit.
 */
export async function readBounded(stream: Readable, limitBytes: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limitBytes) {
      stream.destroy();
      throw new IntegrityError(`${what}: larger than ${limitBytes} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
