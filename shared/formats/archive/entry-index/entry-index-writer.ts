import type { Readable } from 'node:stream';
import { CompressStream } from 'zstd-napi';
import { SnapworkerError } from '../../../errors.js';
import { entryMtimeNs, type EntryHeader } from '../../../snapshot/entry.js';
import type { Compression } from '../manifest.js';
import { waitForDrain } from '../stream-wait.js';
import type { IndexEntry, IndexTrailer } from './entry-index.js';

/** Lines gathered before one write to the compressor: fewer, larger writes. */
const BATCH_BYTES = 256 * 1024;

/**
 * Writes the entry index (entry-index.ts) while the archive is written: one line per payload
 * entry as the archive writer hands it over, then the trailer. `stream` yields the compressed
 * index; `entry` waits while the compressor is full, so memory stays at one batch whatever the
 * number of entries. `abort` destroys the stream (the upload of it then fails and leaves nothing).
 */
export class EntryIndexWriter {
  readonly stream: Readable;
  private readonly compressor: CompressStream;
  private batch: string[] = [];
  private batchBytes = 0;
  entries = 0;

  constructor(snapshotId: string, compression: Compression) {
    this.compressor = new CompressStream({ compressionLevel: 3, checksumFlag: true });
    this.stream = this.compressor;
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
    await this.flush();
    this.compressor.end();
  }

  abort(err: Error): void {
    // The upload may not have attached to the stream yet (it opens its temp file first): without
    // a listener the error event would crash the process. The upload still sees the stream errored.
    this.compressor.on('error', () => {});
    this.compressor.destroy(err);
  }

  private push(line: string): void {
    this.batch.push(line);
    this.batchBytes += line.length + 1;
  }

  private async flush(): Promise<void> {
    if (this.batch.length === 0) return;
    const text = this.batch.join('\n') + '\n';
    this.batch = [];
    this.batchBytes = 0;
    if (this.compressor.destroyed) throw new SnapworkerError('archive: entry index stream closed');
    if (!this.compressor.write(text)) await waitForDrain(this.compressor, 'entry index output');
  }
}
