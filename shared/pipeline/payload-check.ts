import { Readable } from 'node:stream';
import { IntegrityError, SnapworkerError, withSubject } from '../errors.js';
import { showName } from '../fsutil/byte-name.js';
import type { SnapshotEntry } from '../formats/snapshot-format.js';
import type { PayloadLayout } from '../kinds/payload-layout.js';

/**
 * Passes a reader's entries on after checking each against the kind's payload layout, and the
 * whole against what the layout requires at the end. A small file whose content the layout checks
 * (NATS `backup.json`) is read here (bounded by the layout's limit) and passed on from memory.
 * Errors name the snapshot. Stopping the iteration stops the reader below (`yield*` semantics).
 */
export async function* checkPayload(snapshotId: string, entries: AsyncIterable<SnapshotEntry>, layout: PayloadLayout): AsyncGenerator<SnapshotEntry> {
  const named = (err: unknown): unknown => {
    if (err instanceof SnapworkerError) err.message = withSubject(`snapshot ${snapshotId}`, err.message);
    return err;
  };
  for await (const entry of entries) {
    const { header } = entry;
    try {
      layout.check(header);
    } catch (err) {
      throw named(err);
    }
    const limit = header.type === 'file' ? layout.contentLimit?.(header) : undefined;
    if (limit === undefined || !entry.body) {
      yield entry;
      continue;
    }
    if (header.size > limit) throw named(new IntegrityError(`entry ${showName(header.path)}: ${header.size} bytes, more than the ${limit} allowed`));
    // Such content is parsed as it is stored: a sparse form of it is not what any writer makes.
    if (header.sparse) throw named(new IntegrityError(`entry ${showName(header.path)}: stored as a sparse file`));
    const bytes = await readBounded(entry.body, limit, header.path).catch((err: unknown) => Promise.reject(named(err)));
    // The kind's own parser names what it refuses (`nats: backup.json: …`), as restore would.
    layout.checkContent?.(header, bytes);
    yield { header, body: Readable.from([bytes]) };
  }
  try {
    layout.end();
  } catch (err) {
    throw named(err);
  }
}

async function readBounded(body: Readable, limit: number, path: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new IntegrityError(`entry ${showName(path)}: more than the ${limit} bytes allowed`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
