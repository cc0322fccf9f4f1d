import { PassThrough, pipeline, type Readable } from 'node:stream';
import { Compressor, CompressStream } from 'zstd-napi';
import { SnapworkerError } from '../../../errors.js';
import { entryMtimeNs, type EntryHeader } from '../../../snapshot/entry.js';
import type { Compression } from '../manifest.js';
import { waitForDrain } from '../stream-wait.js';
import type { IndexEntry, IndexTrailer } from './entry-index.js';

/** Lines gathered before one write to the compressor: fewer, larger writes. */
const BATCH_BYTES = 256 * 1024;

const ZSTD_PARAMETERS = { compressionLevel: 3, checksumFlag: true };

/**
 * One zstd context for every index that fits in one batch (every small snapshot's), kept for the
 * process: a streaming compressor made per snapshot allocated zstd's level-3 tables (some MiB)
 * each time, which was about a fifth of a small job's CPU with the garbage collection it caused
 * (a worker's CPU profile under `npm run bench -- --fleet`). Compressed in one call, the frame
 * also records its size and zstd sizes its tables to the input. Used synchronously, so sharing it
 * across concurrent jobs is safe.
 */
let wholeIndexCompressor: Compressor | undefined;
function compressWhole(text: string): Buffer {
  if (!wholeIndexCompressor) {
    wholeIndexCompressor = new Compressor();
    wholeIndexCompressor.setParameters(ZSTD_PARAMETERS);
  }
  return wholeIndexCompressor.compress(Buffer.from(text));
}

/**
 * Writes the entry index (entry-index.ts) while the archive is written: one line per payload
 * entry as the archive writer hands it over, then the trailer. `stream` yields the compressed
 * index; `entry` waits while the compressor is full, so memory stays at one batch whatever the
 * number of entries. `abort` destroys the stream (the upload of it then fails and leaves nothing).
 * An index that fits in one batch is one zstd frame compressed in one call; a larger one streams.
 */
export class EntryIndexWriter {
  private readonly output = new PassThrough();
  readonly stream: Readable = this.output;
  /** Made at the first batch that is not the last one (a large index); undefined until then. */
  private compressor: CompressStream | undefined;
  private batch: string[] = [];
  private batchBytes = 0;
  entries = 0;

  constructor(snapshotId: string, compression: Compression) {
    this.push(JSON.stringify({ v: 1, snapshotId, compression }));
  }

  /** Adds a payload entry: its header, where its tar bytes start and how many there are, and a file's SHA-256. */
  async entry(header: EntryHeader, offset: number, length: number, sha256?: string): Promise<void> {
    const line: IndexEntry = {
      path: header.path,
      type: header.type,
      mode: header.mode & 0o7777,
      size: header.type === 'file' ? header.size : 0,
      mtimeNs: entryMtimeNs(header).toString(),
      ...(header.linkTarget !== undefined && (header.type === 'symlink' || header.type === 'hardlink') ? { linkTarget: header.linkTarget } : {}),
      ...(header.type === 'chardev' || header.type === 'blockdev' ? { devMajor: header.devMajor ?? 0, devMinor: header.devMinor ?? 0 } : {}),
      ...(header.sparse ? { sparse: header.sparse.map((s) => [s.offset, s.length] as [number, number]) } : {}),
      ...(header.xattrs && header.xattrs.length > 0 ? { xattrs: header.xattrs.map((x) => x.name) } : {}),
      ...(sha256 ? { sha256 } : {}),
      offset,
      length,
    };
    this.entries += 1;
    this.push(JSON.stringify(line));
    if (this.batchBytes >= BATCH_BYTES) await this.flush();
  }

  /** Writes the trailer and ends the stream. */
  async finish(trailer: Omit<IndexTrailer, 'end' | 'entries'>): Promise<void> {
    this.push(JSON.stringify({ end: true, entries: this.entries, ...trailer }));
    if (this.output.destroyed) throw new SnapworkerError('archive: entry index stream closed');
    if (!this.compressor) {
      this.output.end(compressWhole(this.takeBatch()));
      return;
    }
    await this.flush();
    this.compressor.end();
  }

  abort(err: Error): void {
    // The upload may not have attached to the stream yet (it opens its temp file first): without
    // a listener the error event would crash the process. The upload still sees the stream errored.
    this.output.on('error', () => {});
    this.compressor?.on('error', () => {});
    this.compressor?.destroy(err);
    this.output.destroy(err);
  }

  private push(line: string): void {
    this.batch.push(line);
    this.batchBytes += line.length + 1;
  }

  private async flush(): Promise<void> {
    if (this.batch.length === 0) return;
    const compressor = (this.compressor ??= this.streaming());
    const text = this.takeBatch();
    if (compressor.destroyed) throw new SnapworkerError('archive: entry index stream closed');
    if (!compressor.write(text)) await waitForDrain(compressor, 'entry index output');
  }

  private takeBatch(): string {
    const text = this.batch.join('\n') + '\n';
    this.batch = [];
    this.batchBytes = 0;
    return text;
  }

  /** A streaming compressor into `output`; an error on either side destroys both. */
  private streaming(): CompressStream {
    const compressor = new CompressStream(ZSTD_PARAMETERS);
    pipeline(compressor, this.output, () => {});
    return compressor;
  }
}
