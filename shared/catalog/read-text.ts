import type { Readable } from 'node:stream';
import { IntegrityError } from '../errors.js';

/**
 * Reads a small stored object (a record, an index object) as UTF-8, refusing to buffer more than
 * `limitBytes` of something that is plainly not one.
 * @throws IntegrityError past the limit (naming `what`).
 */
export async function readText(stream: Readable, what = 'record', limitBytes = 16 * 1024 * 1024): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    size += (chunk as Buffer).length;
    if (size > limitBytes) {
      stream.destroy();
      throw new IntegrityError(`${what} larger than ${Math.round(limitBytes / 1024 / 1024)} MiB`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}
