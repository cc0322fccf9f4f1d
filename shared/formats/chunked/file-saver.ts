import type { Readable } from 'node:stream';
import { SnapworkerError } from '../../errors.js';
import type { SourceEntry } from '../../snapshot/entry.js';
import { dataBytes } from '../../snapshot/sparse-segments.js';
import { assertValidSegments } from '../archive/pax-sparse.js';
import { showPath } from '../archive/safe-path.js';
import { contentHash } from '../archive/sparse-content.js';
import type { ChunkedStore } from './open-store.js';
import type { FileContent } from './tree-node.js';

/** Counts of one file saved. */
export interface SavedFile {
  content: FileContent;
  /** Bytes of blobs this file added to the repository (after compression); 0 when every chunk was known. */
  storedBytes: number;
}

/**
 * Stores a file's bytes as content-defined chunks (`data` blobs) and returns their ids with the
 * file's SHA-256 (of the logical content, holes as zeros, as `sha256sum` prints it). A chunk the
 * repository holds already is not stored again. `body` is the source's stream: exactly the
 * announced bytes (a sparse file's data segments back to back), destroyed on every path.
 * @throws SnapworkerError when the source yields more or fewer bytes than announced.
 */
export async function saveFile(
  { store, chunk: cut, chunkBuffer }: ChunkedStore,
  entry: SourceEntry,
  body: Readable | Buffer,
  options: { signal: AbortSignal; onBytes: (bytes: number) => void },
): Promise<SavedFile> {
  const name = showPath(entry.path);
  if (entry.sparse) assertValidSegments(entry.sparse, entry.size, name);
  const expected = entry.sparse ? dataBytes(entry.sparse) : entry.size;
  const hash = contentHash(entry.sparse, entry.size, name, options.onBytes);
  const chunks: string[] = [];
  let bytes = 0;
  let storedBytes = 0;
  const saveChunk = async (chunk: Buffer) => {
    bytes += chunk.length;
    if (bytes > expected) throw new SnapworkerError(`chunked: entry ${name}: source yielded more than the announced ${expected} bytes (file changed while reading?)`);
    await hash.update(chunk);
    const saved = await store.save('data', chunk, { signal: options.signal });
    chunks.push(saved.id);
    storedBytes += saved.storedBytes;
  };
  if (Buffer.isBuffer(body)) {
    // Read ahead whole by the source: cut in place, no stream and no copy (most are one chunk, under the chunker's minimum).
    for (const chunk of chunkBuffer(body)) await saveChunk(chunk);
  } else {
    try {
      for await (const chunk of cut(body as AsyncIterable<Buffer>)) await saveChunk(chunk);
    } finally {
      body.destroy();
    }
  }
  if (bytes !== expected) throw new SnapworkerError(`chunked: entry ${name}: source yielded ${bytes} bytes, announced ${expected} (file changed while reading?)`);
  return { content: { chunks, sha256: await hash.digest(), ...(entry.sparse ? { sparse: entry.sparse } : {}) }, storedBytes };
}
