import { sha256Hex } from './sha256-hex.js';
import { PassThrough, type Readable, type Transform } from 'node:stream';
import { AbortedError, InvalidInputError, SnapworkerError } from '../../errors.js';
import type { ProgressSink } from '../../progress.js';
import { EntryVanishedError, entryMtimeNs, type EntryHeader, type SourceEntry } from '../../snapshot/entry.js';
import { createCompressStream } from './compression.js';
import { MANIFEST_ENTRY, SEAL_ENTRY, SUMS_ENTRY, manifestProblems, type Manifest } from './manifest.js';
import { EntryTracker, showPath } from './safe-path.js';
import { assertValidSealKey, createSealMac, encodeSeal, type SealKey } from './seal.js';
import { assertValidSegments, encodeSparseMap, sparseArchiveName, sparsePaxRecords } from './pax-sparse.js';
import { dataBytes } from '../../snapshot/sparse-segments.js';
import { encodeXattrRecords } from './pax-xattrs.js';
import { encodeName } from '../../fsutil/byte-name.js';
import { encodeSumLines, formatSumLine } from './sha256sums.js';
import { contentHash } from './sparse-content.js';
import { EventLoopYielder, waitForDrain } from './stream-wait.js';
import { END_OF_ARCHIVE, TAR_BLOCK_BYTES, encodeTarHeader, paddingFor, type TarHeaderFields } from './tar-encoder.js';

/** What went into an archive: payload entries (not manifest, sums or seal), of which regular files, and their bytes. */
export interface ArchiveStats {
  entries: number;
  files: number;
  rawBytes: number;
}

/** Where things are in the tar stream, for the entry index. */
export interface TarLayout {
  /** Where the first payload entry starts (the end of `manifest.json`). */
  payloadStart: number;
  /** Bytes of the whole tar stream. */
  tarBytes: number;
}

/**
 * Told of each payload entry once its tar bytes are written (for the entry index): where its
 * first header block starts in the tar stream, how many bytes it takes with body and padding,
 * and a file's SHA-256. The writer waits for the promise, so a slow index holds it back.
 */
export type OnEntryWritten = (header: EntryHeader, offset: number, length: number, sha256: string | undefined) => Promise<void>;

export interface WriteArchiveOptions {
  /** Written as `manifest.json`; its `compression` decides the compression. `sealKeyId` is set from `seal` (or removed). */
  manifest: Manifest;
  /** The payload, in archive order. Paths must be safe (see safe-path.ts) and unique. */
  entries: AsyncIterable<SourceEntry>;
  /** Compression level; default 3 for zstd, 6 for gzip. */
  level?: number;
  /** zstd worker threads; default the number of CPUs (see createCompressStream). */
  threads?: number;
  /** Seals the sums (appends `SHA256SUMS.seal`) with this key; no seal by default. */
  seal?: SealKey;
  signal: AbortSignal;
  /** Gets addBytes(payload bytes read) and addEntries(1) per payload entry. */
  progress: ProgressSink;
  onEntryWritten?: OnEntryWritten;
  /** Told the tar layout once the end-of-archive marker is written (before `done` resolves). */
  onTarWritten?: (layout: TarLayout) => void;
}

/** Size of the chunks handed to the compressor. */
const BATCH_BYTES = 1024 * 1024;
/** Pieces at least this big go to the compressor as they are, not copied into a batch. */
const DIRECT_WRITE_BYTES = 256 * 1024;
const PADDING = Buffer.alloc(TAR_BLOCK_BYTES);

/**
 * Starts writing an archive (format v1, see docs/archive-format.md): `manifest.json`, the
 * payload entries as given, `SHA256SUMS`, then `SHA256SUMS.seal` when sealed.
 *
 * `stream` yields the compressed bytes; nothing is produced faster than it is read, so memory
 * stays bounded by stream buffers (plus one SHA256SUMS line per file). `done` resolves with the
 * stats once the last byte has been read from `stream`, or rejects, with `stream` destroyed by
 * the same error, on any failure: InvalidInputError (bad manifest, options or seal key),
 * UnsafePathError / IntegrityError (a payload entry the reader would refuse), SnapworkerError
 * (a source file yielded a different size than announced), AbortedError (signal), or the
 * source's own error. Destroying `stream` stops the writer and rejects `done`. Each file's
 * `open()` stream is destroyed on every path.
 */
export function writeArchive(options: WriteArchiveOptions): { stream: Readable; done: Promise<ArchiveStats> } {
  let output: Transform;
  try {
    const manifest = manifestToWrite(options.manifest, options.seal);
    output = createCompressStream(manifest.compression, { level: options.level, threads: options.threads });
    const writer = new ArchiveWriter(options, manifest, output);
    return { stream: output, done: writer.run() };
  } catch (err) {
    output = new PassThrough();
    output.on('error', () => {}); // reported through `done`, like every writer error
    output.destroy(err as Error);
    const done = Promise.reject(err);
    done.catch(() => {}); // the caller may only watch `stream`
    return { stream: output, done };
  }
}

function manifestToWrite(manifest: Manifest, seal: SealKey | undefined): Manifest {
  const { sealKeyId: _ignored, ...rest } = manifest;
  const result: Manifest = seal ? { ...rest, sealKeyId: seal.keyId } : rest;
  if (seal) assertValidSealKey(seal);
  const problems = manifestProblems(result);
  if (problems) throw new InvalidInputError(`archive: manifest: ${problems}`);
  return result;
}

class ArchiveWriter {
  private readonly tracker = new EntryTracker();
  private readonly sumLines: string[] = [];
  private readonly stats: ArchiveStats = { entries: 0, files: 0, rawBytes: 0 };
  private payloadStart = 0;
  /** The SHA-256 of the file entry just written, for onEntryWritten. */
  private lastSha256: string | undefined;
  private readonly yielder = new EventLoopYielder();
  private readonly out: BatchedOutput;
  private openBody: Readable | undefined;
  private firstError: Error | undefined;

  constructor(
    private readonly options: WriteArchiveOptions,
    private readonly manifest: Manifest,
    private readonly output: Transform,
  ) {
    this.out = new BatchedOutput(output);
  }

  /** Runs the writer; the promise is `done`. */
  run(): Promise<ArchiveStats> {
    const { signal } = this.options;
    const onAbort = () => this.fail(new AbortedError(`archive: writing aborted: ${String(signal.reason ?? 'aborted')}`, { cause: signal.reason }));
    const ended = new Promise<ArchiveStats>((resolve, reject) => {
      this.output.once('end', () => resolve(this.stats));
      this.output.once('close', () => reject(this.firstError ?? new SnapworkerError('archive: output stream closed before the end of the archive')));
    });
    this.output.on('error', (err) => this.fail(err));
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });

    this.writeEntries().catch((err: unknown) => this.fail(err));
    const done = ended.finally(() => signal.removeEventListener('abort', onAbort));
    done.catch(() => {}); // the caller may only watch `stream`
    return done;
  }

  /** Stops everything with the first error; `done` rejects with it. */
  private fail(err: unknown): void {
    if (this.firstError) return;
    this.firstError = err instanceof Error ? err : new SnapworkerError(String(err));
    this.openBody?.destroy();
    this.output.destroy(this.firstError);
  }

  private async writeEntries(): Promise<void> {
    const manifestBytes = Buffer.from(JSON.stringify(this.manifest, null, 2) + '\n');
    await this.addBuffer(MANIFEST_ENTRY, manifestBytes);
    this.payloadStart = this.out.written;
    for await (const entry of this.options.entries) {
      if (this.firstError) throw this.firstError;
      this.tracker.add(entry);
      const offset = this.out.written;
      this.lastSha256 = undefined;
      if (entry.type === 'file') {
        if (!(await this.addFile(entry))) continue;
      } else {
        await this.out.append(encodeTarHeader(tarHeader(entry)));
      }
      await this.options.onEntryWritten?.(entry, offset, this.out.written - offset, this.lastSha256);
      this.stats.entries += 1;
      this.options.progress.addEntries(1);
      await this.yielder.add(entry.size + TAR_BLOCK_BYTES);
    }
    const sums = encodeSumLines(this.sumLines);
    await this.addBuffer(SUMS_ENTRY, sums, { listInSums: false });
    const { seal } = this.options;
    if (seal) await this.addBuffer(SEAL_ENTRY, encodeSeal(seal.keyId, createSealMac(seal.key).update(sums).digest()), { listInSums: false });
    await this.out.append(END_OF_ARCHIVE);
    this.options.onTarWritten?.({ payloadStart: this.payloadStart, tarBytes: this.out.written });
    await this.out.flush();
    if (this.firstError) throw this.firstError;
    this.output.end();
  }

  private async addBuffer(name: string, bytes: Buffer, { listInSums = true } = {}): Promise<void> {
    if (listInSums) this.sumLines.push(formatSumLine(sha256Hex(bytes), name));
    const seconds = Math.floor(new Date(this.manifest.createdAt).getTime() / 1000);
    await this.out.append(encodeTarHeader({ name, type: 'file', size: bytes.length, mode: 0o644, mtimeNs: BigInt(seconds) * 1_000_000_000n }));
    await this.appendBody(bytes);
  }

  private async appendBody(bytes: Buffer): Promise<void> {
    await this.out.append(bytes);
    await this.out.append(PADDING.subarray(0, paddingFor(bytes.length)));
  }

  /** Writes a file entry; false when its source found it gone (then nothing was written). */
  private async addFile(entry: SourceEntry): Promise<boolean> {
    if (entry.bytes !== undefined && !entry.sparse) {
      // Read ahead whole by the source: one hash call and one copy, no stream.
      if (entry.bytes.length !== entry.size) {
        throw new SnapworkerError(`archive: entry ${showPath(entry.path)}: source yielded ${entry.bytes.length} bytes, announced ${entry.size} (file changed while reading?)`);
      }
      await this.out.append(encodeTarHeader(tarHeader(entry)));
      await this.appendBody(entry.bytes);
      if (!entry.progressCounted) this.options.progress.addBytes(entry.size);
      this.fileWritten(entry.path, sha256Hex(entry.bytes), entry.size);
      return true;
    }
    const name = showPath(entry.path);
    if (!entry.open) throw new InvalidInputError(`archive: entry ${name}: a file without open()`);
    if (entry.sparse) assertValidSegments(entry.sparse, entry.size, name);
    // A sparse file's data area is its map, then only the data segments (see pax-sparse.ts).
    const sparseMap = entry.sparse && encodeSparseMap(entry.sparse, entry.size);
    const stored = entry.sparse ? dataBytes(entry.sparse) : entry.size;
    let body: Readable;
    try {
      body = await entry.open();
    } catch (err) {
      if (!(err instanceof EntryVanishedError)) throw err;
      // A later hard link to it must now fail here, not produce an archive the reader refuses.
      this.tracker.forget(entry.path);
      return false;
    }
    this.openBody = body;
    try {
      await this.out.append(encodeTarHeader(tarHeader(entry, sparseMap)));
      if (sparseMap) await this.out.append(sparseMap);
      const progress = entry.progressCounted ? () => {} : (n: number) => this.options.progress.addBytes(n);
      const hash = contentHash(entry.sparse, entry.size, name, progress);
      let bytes = 0;
      for await (const chunk of body as AsyncIterable<Buffer>) {
        bytes += chunk.length;
        if (bytes > stored) throw new SnapworkerError(`archive: entry ${name}: source yielded more than the announced ${stored} bytes (file changed while reading?)`);
        await hash.update(chunk);
        await this.out.append(chunk);
        await this.yielder.add(chunk.length);
      }
      if (bytes !== stored) throw new SnapworkerError(`archive: entry ${name}: source yielded ${bytes} bytes, announced ${stored} (file changed while reading?)`);
      await this.out.append(PADDING.subarray(0, paddingFor((sparseMap?.length ?? 0) + bytes)));
      this.fileWritten(entry.path, await hash.digest(), entry.size);
      return true;
    } finally {
      this.openBody = undefined;
      body.destroy();
    }
  }

  private fileWritten(path: string, hex: string, bytes: number): void {
    this.lastSha256 = hex;
    this.sumLines.push(formatSumLine(hex, path));
    this.stats.files += 1;
    this.stats.rawBytes += bytes;
  }
}

/**
 * Collects the small pieces of a tar stream (headers, small bodies, padding) into chunks of
 * `BATCH_BYTES` before writing them to the compressor, and passes big pieces through uncopied:
 * one write per MiB instead of three per entry. Waits for `drain` when the compressor is full,
 * so memory stays at one batch plus the compressor's buffers.
 */
class BatchedOutput {
  private batch = Buffer.allocUnsafe(BATCH_BYTES);
  private used = 0;
  /** Tar bytes appended so far: where the next piece starts in the tar stream. */
  written = 0;

  constructor(private readonly output: Transform) {}

  async append(bytes: Buffer): Promise<void> {
    this.written += bytes.length;
    if (bytes.length >= DIRECT_WRITE_BYTES) {
      await this.flush();
      await this.write(bytes);
      return;
    }
    if (this.used + bytes.length > BATCH_BYTES) await this.flush();
    bytes.copy(this.batch, this.used);
    this.used += bytes.length;
  }

  async flush(): Promise<void> {
    if (this.used === 0) return;
    const full = this.batch.subarray(0, this.used);
    // A new batch each time: the compressor may still hold the last one in its write queue.
    this.batch = Buffer.allocUnsafe(BATCH_BYTES);
    this.used = 0;
    await this.write(full);
  }

  private async write(bytes: Buffer): Promise<void> {
    if (this.output.destroyed) throw new SnapworkerError('archive: output closed');
    if (!this.output.write(bytes)) await waitForDrain(this.output, 'archive output');
  }
}

/** The tar header fields of an entry; for a sparse file (with its encoded map) those of the packed form. */
function tarHeader(entry: EntryHeader, sparseMap?: Buffer): TarHeaderFields {
  const device = entry.type === 'chardev' || entry.type === 'blockdev';
  const fields: TarHeaderFields = {
    name: entry.path,
    type: entry.type,
    mode: entry.mode & 0o7777,
    mtimeNs: entryMtimeNs(entry),
    size: entry.type === 'file' ? entry.size : 0,
    linkname: entry.type === 'symlink' || entry.type === 'hardlink' ? entry.linkTarget : undefined,
    ...(device ? { devMajor: entry.devMajor ?? 0, devMinor: entry.devMinor ?? 0 } : {}),
  };
  const extra: Buffer[] = [];
  if (sparseMap && entry.sparse) {
    fields.name = sparseArchiveName(entry.path);
    fields.size = sparseMap.length + dataBytes(entry.sparse);
    extra.push(sparsePaxRecords(encodeName(entry.path), entry.size));
  }
  if (entry.xattrs && entry.xattrs.length > 0) extra.push(encodeXattrRecords(entry.xattrs));
  if (extra.length > 0) fields.extraPax = Buffer.concat(extra);
  return fields;
}
