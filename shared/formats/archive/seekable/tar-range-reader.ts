import type { Readable } from 'node:stream';
import { DecompressStream } from 'zstd-napi';
import type { Repository } from '../../../catalog/repository.js';
import { IntegrityError } from '../../../errors.js';
import { FRAME_BYTES } from './frame-compressor.js';
import { framesCovering, type SeekTable } from './seek-table.js';

/** Compressed bytes fetched to read the manifest at the start of frame 0. */
const HEAD_BYTES = 256 * 1024;

/**
 * Reads byte ranges of an archive's tar stream with ranged GETs, in increasing order: for a
 * seekable zstd archive only the frames that hold the range (via the seek table), for an
 * uncompressed one the range itself plus up to one frame's worth ahead (so many small entries
 * in a row cost one request). A range that starts inside what the current request covers
 * continues it; anything else starts a new request. Memory: one decompressed chunk.
 */
export class TarRangeReader {
  private stream: Readable | undefined;
  private iterator: AsyncIterator<Buffer> | undefined;
  private leftover: Buffer | undefined;
  /** Tar offset of the next byte the current request yields, and where it ends. */
  private position = 0;
  private runEnd = 0;

  constructor(
    private readonly repository: Repository,
    private readonly key: string,
    /** The seek table of a zstd archive; undefined for an uncompressed one (tar offsets are object offsets). */
    private readonly table: SeekTable | undefined,
    private readonly tarBytes: number,
    private readonly signal: AbortSignal,
  ) {}

  /** Yields tar bytes `[start, end)`. @throws IntegrityError when the archive ends early. */
  async *read(start: number, end: number): AsyncGenerator<Buffer> {
    if (end > this.tarBytes) throw new IntegrityError(`archive: range ${start}-${end} is past the end of the tar stream (${this.tarBytes} bytes)`);
    if (!this.iterator || start < this.position || start >= this.runEnd) await this.open(start, end);
    while (this.position < end) {
      if (this.position >= this.runEnd) await this.open(this.position, end);
      const chunk = await this.take();
      const from = this.position;
      this.position += chunk.length;
      if (this.position <= start) continue;
      const head = Math.max(0, start - from);
      const tail = Math.min(chunk.length, end - from);
      if (tail < chunk.length) this.leftover = chunk.subarray(tail);
      if (tail < chunk.length) this.position = from + tail;
      yield chunk.subarray(head, tail);
    }
  }

  /**
   * Tar bytes `[0, end)` for a small `end` (the manifest): a frame decodes from its start, so
   * fetching only the first compressed bytes of frame 0 (HEAD_BYTES: two of zstd's 128 KiB blocks even when
   * incompressible) is enough when they
   * decode to `end` bytes; otherwise the whole range is read.
   */
  async readHead(end: number): Promise<Buffer> {
    if (this.table && this.table.frames.length > 0 && this.table.compressedOffsets[1]! > HEAD_BYTES) {
      const body = await this.repository.getObject(this.key, { signal: this.signal, range: { start: 0, end: HEAD_BYTES - 1 } });
      const decompress = new DecompressStream();
      body.pipe(decompress);
      const chunks: Buffer[] = [];
      let size = 0;
      try {
        for await (const chunk of decompress as AsyncIterable<Buffer>) {
          chunks.push(chunk);
          size += chunk.length;
          if (size >= end) break;
        }
      } catch {
        // The cut frame ends in an error; what decoded before it is good (zstd checks each block).
      } finally {
        body.destroy();
        decompress.destroy();
      }
      if (size >= end) return Buffer.concat(chunks).subarray(0, end);
    }
    const chunks: Buffer[] = [];
    for await (const chunk of this.read(0, end)) chunks.push(chunk);
    return Buffer.concat(chunks);
  }

  close(): void {
    this.stream?.destroy();
    this.stream = this.iterator = this.leftover = undefined;
  }

  private async take(): Promise<Buffer> {
    if (this.leftover) {
      const chunk = this.leftover;
      this.leftover = undefined;
      return chunk;
    }
    let next: IteratorResult<Buffer>;
    try {
      next = await this.iterator!.next();
    } catch (err) {
      if (err instanceof IntegrityError || this.signal.aborted) throw err;
      throw new IntegrityError(`archive: ${this.key}: corrupt data at tar offset ${this.position}: ${(err as Error).message}`, { cause: err });
    }
    if (next.done) throw new IntegrityError(`archive: ${this.key} ended at tar offset ${this.position}, before ${this.runEnd}`);
    return next.value;
  }

  private async open(start: number, end: number): Promise<void> {
    this.close();
    let range: { start: number; end: number };
    if (this.table) {
      const { first, last } = framesCovering(this.table, start, end);
      range = { start: this.table.compressedOffsets[first]!, end: this.table.compressedOffsets[last]! - 1 };
      this.position = this.table.decompressedOffsets[first]!;
      this.runEnd = this.table.decompressedOffsets[last]!;
    } else {
      range = { start, end: Math.min(this.tarBytes, Math.max(end, start + FRAME_BYTES)) - 1 };
      this.position = start;
      this.runEnd = range.end + 1;
    }
    // Explicit ranges only: s3rver answers suffix ranges (bytes=-N) wrongly.
    const body = await this.repository.getObject(this.key, { signal: this.signal, range });
    const stream = this.table ? body.pipe(new DecompressStream()) : body;
    if (this.table) body.on('error', (err) => stream.destroy(err));
    stream.on('error', () => {}); // surfaces through the iterator
    this.stream = stream;
    this.iterator = (stream as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  }
}
