import type { Hmac } from 'node:crypto';
import { Readable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AbortedError, IntegrityError, SnapworkerError } from '../../errors.js';
import type { ProgressSink } from '../../progress.js';
import type { EntryHeader } from '../../snapshot/entry.js';
import { COMPRESSION_MAGIC_BYTES, createDecompressStream, detectCompression } from './compression.js';
import { MANIFEST_ENTRY, SEAL_ENTRY, SUMS_ENTRY, manifestProblems, type Compression, type Manifest } from './manifest.js';
import { EntryTracker, showPath } from './safe-path.js';
import { MAX_SEAL_BYTES, createSealMac, decodeSeal, sealMatches } from './seal.js';
import { readSparseMap } from './pax-sparse.js';
import { sha256Hex } from './sha256-hex.js';
import { SumsParser } from './sha256sums.js';
import { contentHash } from './sparse-content.js';
import { EventLoopYielder } from './stream-wait.js';
import { payloadHeaderOf } from './tar-entry-header.js';
import { TAR_BLOCK, TarHeaderError, TarParser, TarTruncatedError, type TarEntry } from './tar-parser.js';
import { CorruptDataError } from './zstd-decompress-thread.js';

export { entryName, parsePaxTime, toEntryHeader } from './tar-entry-header.js';

export interface ReadArchiveOptions {
  signal: AbortSignal;
  /** Gets addBytes(payload file bytes) and addEntries(1) per payload entry. */
  progress?: ProgressSink;
  /** keyId -> key. A seal whose key is not here fails the read unless ignoreUnknownSealKey. */
  sealKeys?: Record<string, Buffer>;
  /** Read a sealed archive whose key is unknown without checking the seal (`sealed` is then false). Default false. */
  ignoreUnknownSealKey?: boolean;
  /** Refuse archives without a verified seal. Default false. */
  requireSeal?: boolean;
  /** Called once with the manifest, before any payload entry; may throw to refuse the archive. */
  onManifest?: (manifest: Manifest) => void | Promise<void>;
  /**
   * Called per payload entry in order; `body` (files only) must be consumed fully. For a sparse
   * file (`header.sparse` set) `body` holds only its data segments' bytes, back to back. Without
   * it bodies are drained (verify). With `bytesUpTo`, files that small (not sparse) come as
   * `bytes` instead, already hashed, and `body` is undefined.
   */
  onEntry?: (header: EntryHeader, body: Readable | undefined, bytes?: Buffer) => Promise<void>;
  /**
   * Hand files of at most this many bytes (not sparse) to onEntry as one buffer, `bytes`, rather
   * than as a stream: no stream per small file. Memory: one such buffer at a time. Default 0
   * (every file body as a stream).
   */
  bytesUpTo?: number;
}

export interface ReadResult {
  manifest: Manifest;
  /** Payload entries (not manifest, sums or seal). */
  entries: number;
  /** Payload regular files. */
  files: number;
  /** Bytes of the payload files. */
  rawBytes: number;
  /** True when the seal was present and verified with a known key. */
  sealed: boolean;
}

/** Largest `manifest.json` accepted, in bytes (a manifest is a few KiB). */
export const MAX_MANIFEST_BYTES = 1024 * 1024;

const END_OF_ARCHIVE_BYTES = 2 * TAR_BLOCK;
// Enough for one decompressed chunk: memory per entry body stays bounded whatever the file size.
const BODY_HIGH_WATER_MARK = 256 * 1024;
const CHECKED = '';

/**
 * Reads and checks a whole archive (format v1, see docs/archive-format.md); the compression is
 * detected from the first bytes. Entries go to `onEntry` as they stream, each hashed on the way.
 *
 * The sums come last, so a file handed to onEntry is only known good when this promise
 * resolves: callers must stage what they write and commit only after it resolves, and discard
 * the staging when it rejects. Resolves only if every check passed; rejects with
 * IntegrityError (sum mismatch, missing or unlisted entry, bad manifest, seal, structure,
 * truncation, trailing data; what a kind's payload may hold is the pipeline's check,
 * shared/kinds/payload-layout.ts), UnsafePathError (unsafe path, link or entry type), AbortedError
 * (signal), a SnapworkerError for a failing input stream, or what onManifest / onEntry threw.
 * Messages name the entry. `input` and every stream made here are destroyed on failure.
 */
export function readArchive(input: Readable, options: ReadArchiveOptions): Promise<ReadResult> {
  return new ArchiveReader(input, options).run();
}

type ReaderState = 'manifest' | 'payload' | 'after-sums' | 'after-seal';

/** Tracks where the tar bytes end and where their last non-zero byte is, to check the tail. */
class TarTail {
  total = 0;
  lastNonZeroEnd = 0;

  observe(chunk: Buffer): void {
    let i = chunk.length - 1;
    while (i >= 0 && chunk[i] === 0) i -= 1;
    if (i >= 0) this.lastNonZeroEnd = this.total + i + 1;
    this.total += chunk.length;
  }
}

class ArchiveReader {
  private readonly tracker = new EntryTracker();
  /** Regular file path -> hex SHA-256, or CHECKED once SHA256SUMS vouched for it. */
  private readonly fileSums = new Map<string, string>();
  private readonly tail = new TarTail();
  private decompressor: Transform | undefined;
  private compression: Compression = 'none';
  private compressedBytes = 0;
  private inputError: unknown;
  private truncation: Error | undefined;
  private firstError: Error | undefined;

  private state: ReaderState = 'manifest';
  private manifest: Manifest | undefined;
  private sealMac: Hmac | undefined;
  private sealed = false;
  /** The entry whose data is being read, if any, and the last one read completely. */
  private readingEntry: string | undefined;
  private lastEntry: string | undefined;
  /** Offset in the tar stream where the last entry's data (padded to a block) ends. */
  private entriesEnd = 0;
  private entries = 0;
  private files = 0;
  private rawBytes = 0;

  constructor(
    private readonly input: Readable,
    private readonly options: ReadArchiveOptions,
  ) {}

  async run(): Promise<ReadResult> {
    const { signal } = this.options;
    const onAbort = () => this.fail(new AbortedError(`archive: reading aborted: ${String(signal.reason ?? 'aborted')}`, { cause: signal.reason }));
    const onInputError = (err: unknown) => (this.inputError = err);
    this.input.once('error', onInputError);
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    let succeeded = false;
    try {
      if (this.firstError) throw this.firstError;
      const { head, source } = await readHead(this.input, COMPRESSION_MAGIC_BYTES);
      if (this.firstError) throw this.firstError;
      this.compression = detectCompression(head);
      const decompressor = createDecompressStream(this.compression);
      this.decompressor = decompressor;
      source.on('data', (chunk: Buffer) => (this.compressedBytes += chunk.length));
      const inflow = pipeline(source, decompressor);
      inflow.catch(() => {}); // its error reaches the parser's pulls through the decompressor
      await this.consume().catch((err) => this.fail(err));
      if (this.firstError) throw this.firstError;
      this.checkEnd();
      succeeded = true;
      return { manifest: this.manifest!, entries: this.entries, files: this.files, rawBytes: this.rawBytes, sealed: this.sealed };
    } catch (err) {
      this.fail(err);
      throw this.firstError ?? err;
    } finally {
      signal.removeEventListener('abort', onAbort);
      this.input.off('error', onInputError);
      if (!succeeded) this.destroyAll();
    }
  }

  /** Records the first error (translated to what it means for the archive) and stops every stream. */
  private fail(err: unknown): void {
    if (this.firstError) return;
    this.firstError = this.explain(err);
    this.destroyAll();
  }

  private destroyAll(): void {
    this.input.destroy();
    this.decompressor?.destroy();
  }

  /** Where in the archive the reader was, for error messages. */
  private where(): string {
    if (this.readingEntry !== undefined) return `in entry ${showPath(this.readingEntry)}`;
    if (this.lastEntry !== undefined) return `after entry ${showPath(this.lastEntry)}`;
    return 'before any entry could be read';
  }

  private explain(err: unknown): Error {
    const pastSums = (this.state === 'after-sums' || this.state === 'after-seal') && this.readingEntry === undefined;
    if (err instanceof TarTruncatedError) {
      // Less than a block left over: garbage after the last entry, or a cut end marker.
      if (pastSums && this.tail.lastNonZeroEnd > this.entriesEnd) return new IntegrityError('archive: data after the end of the archive', { cause: err });
      return new IntegrityError(`archive: truncated ${this.where()}`, { cause: this.truncation ?? err });
    }
    if (err instanceof TarHeaderError) {
      if (pastSums) return new IntegrityError('archive: data after the end of the archive', { cause: err });
      return new IntegrityError(`archive: corrupt tar header ${this.where()}: ${err.detail}`, { cause: err });
    }
    if (err instanceof SnapworkerError) return err;
    const error = err instanceof Error ? err : new Error(String(err));
    if (err === this.inputError) return new SnapworkerError(`archive: reading the archive stream: ${error.message}`, { cause: err });
    return error;
  }

  /** The tar parser's input: decompressed chunks, with the tail of the tar bytes watched. */
  private pullFrom(decompressor: Transform): () => Promise<Buffer | null> {
    const chunks = (decompressor as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
    const yielder = new EventLoopYielder();
    let ended = false;
    return async () => {
      if (ended) return null;
      try {
        const next = await chunks.next();
        if (!next.done) {
          this.tail.observe(next.value);
          await yielder.add(next.value.length);
          return next.value;
        }
      } catch (err) {
        if (err instanceof CorruptDataError && !this.firstError) {
          throw new IntegrityError(`archive: corrupt ${this.compression} data ${this.where()}: ${err.detail}`, { cause: err });
        }
        if (this.firstError || err === this.inputError || err instanceof SnapworkerError) throw err;
        // zlib reports input that ends inside the gzip stream as Z_BUF_ERROR: let the tar parser
        // see what came through, so the error can name the entry the archive was cut in.
        if ((err as { code?: string }).code !== 'Z_BUF_ERROR') {
          throw new IntegrityError(`archive: corrupt ${this.compression} data ${this.where()}: ${(err as Error).message}`, { cause: err });
        }
        this.truncation = err as Error;
      }
      ended = true;
      // The zstd stream ends quietly on a cut frame and says so in `truncated`.
      if ((decompressor as { truncated?: boolean }).truncated === true) {
        this.truncation = new IntegrityError('archive: the zstd frame ends early');
      }
      return null;
    };
  }

  private async consume(): Promise<void> {
    const parser = new TarParser(this.pullFrom(this.decompressor!));
    for (;;) {
      const entry = await parser.next();
      if (entry === null) return;
      if (this.options.signal.aborted) throw this.firstError ?? new AbortedError('archive: reading aborted');
      await this.readEntry(entry, parser);
    }
  }

  private async readEntry(entry: TarEntry, parser: TarParser): Promise<void> {
    const path = entry.name;
    const isFile = entry.typeflag === '0';
    const size = entry.size;
    this.readingEntry = path;
    switch (this.state) {
      case 'manifest':
        if (path !== MANIFEST_ENTRY || !isFile) throw new IntegrityError(`archive: first entry is ${showPath(path)}, expected ${MANIFEST_ENTRY}`);
        await this.readManifest(parser, size);
        this.state = 'payload';
        break;
      case 'payload':
        if (path === SUMS_ENTRY && isFile) {
          await this.readSums(parser);
          this.state = 'after-sums';
        } else {
          await this.readPayloadEntry(entry, parser);
        }
        break;
      case 'after-sums':
        if (path !== SEAL_ENTRY || !isFile) throw new IntegrityError(`archive: unexpected entry ${showPath(path)} after ${SUMS_ENTRY}`);
        await this.readSeal(parser, size);
        this.state = 'after-seal';
        break;
      case 'after-seal':
        throw new IntegrityError(`archive: unexpected entry ${showPath(path)} after ${SEAL_ENTRY}`);
    }
    this.entriesEnd = entry.dataOffset + Math.ceil(size / TAR_BLOCK) * TAR_BLOCK;
    this.readingEntry = undefined;
    this.lastEntry = path;
  }

  private async readManifest(parser: TarParser, size: number): Promise<void> {
    if (size > MAX_MANIFEST_BYTES) throw new IntegrityError(`archive: entry ${MANIFEST_ENTRY}: ${size} bytes, more than ${MAX_MANIFEST_BYTES}`);
    const bytes = await parser.readBody();
    this.fileSums.set(MANIFEST_ENTRY, sha256Hex(bytes));
    let value: unknown;
    try {
      value = JSON.parse(bytes.toString('utf8'));
    } catch (err) {
      throw new IntegrityError(`archive: entry ${MANIFEST_ENTRY}: not JSON`, { cause: err });
    }
    const problems = manifestProblems(value);
    if (problems) throw new IntegrityError(`archive: entry ${MANIFEST_ENTRY}: ${problems}`);
    const manifest = value as Manifest;
    if (manifest.compression !== this.compression) {
      throw new IntegrityError(`archive: entry ${MANIFEST_ENTRY}: says compression ${manifest.compression}, but the archive is ${this.compression}`);
    }
    this.prepareSealCheck(manifest);
    this.manifest = manifest;
    await this.options.onManifest?.(manifest);
  }

  /** Decides from the manifest, before any payload, whether and with which key the seal is checked. */
  private prepareSealCheck(manifest: Manifest): void {
    const { sealKeys, ignoreUnknownSealKey, requireSeal } = this.options;
    const keyId = manifest.sealKeyId;
    if (keyId === undefined) {
      if (requireSeal) throw new IntegrityError('archive: not sealed, and a seal is required');
      return;
    }
    const key = sealKeys && Object.hasOwn(sealKeys, keyId) ? sealKeys[keyId] : undefined;
    if (key) this.sealMac = createSealMac(key);
    else if (requireSeal || !ignoreUnknownSealKey) throw new IntegrityError(`archive: sealed with unknown key ${JSON.stringify(keyId)}`);
  }

  private async readPayloadEntry(entry: TarEntry, parser: TarParser): Promise<void> {
    const { header, sparse } = payloadHeaderOf(entry);
    this.tracker.add(header);
    if (header.type === 'file') {
      const { bytesUpTo = 0, onEntry } = this.options;
      if (!sparse && bytesUpTo > 0 && header.size <= bytesUpTo && onEntry) {
        const bytes = parser.takeBuffered() ?? (await parser.readBody());
        this.fileSums.set(header.path, sha256Hex(bytes));
        this.options.progress?.addBytes(bytes.length);
        await onEntry(header, undefined, bytes);
      } else {
        this.fileSums.set(header.path, await this.readFileBody(header, parser, sparse && entry.size));
      }
      this.files += 1;
      this.rawBytes += header.size;
    } else {
      await this.options.onEntry?.(header, undefined);
    }
    this.entries += 1;
    this.options.progress?.addEntries(1);
  }

  /**
   * Hashes a file's bytes on their way to onEntry (or drains them); returns the hex SHA-256 of
   * its logical content. For a sparse file (`storedSize` set: map plus data), reads the map
   * first, sets `header.sparse`, and passes on only the data segments' bytes.
   */
  private async readFileBody(header: EntryHeader, parser: TarParser, storedSize?: number): Promise<string> {
    const progress = this.options.progress;
    const chunks = parser.bodyChunks();
    let pending: Buffer | undefined;
    if (storedSize !== undefined) {
      const map = await readSparseMap(chunks, storedSize, header.size, showPath(header.path));
      header.sparse = map.segments;
      if (map.rest.length > 0) pending = map.rest;
    }
    const hash = contentHash(header.sparse, header.size, showPath(header.path), (n) => progress?.addBytes(n));
    const take = async (): Promise<Buffer | null> => {
      let chunk = pending;
      pending = undefined;
      if (chunk === undefined) {
        const next = await chunks.next();
        if (next.done) return null;
        chunk = next.value;
      }
      await hash.update(chunk);
      return chunk;
    };
    const { onEntry } = this.options;
    if (!onEntry) {
      while ((await take()) !== null);
    } else {
      const body = new Readable({
        highWaterMark: BODY_HIGH_WATER_MARK,
        read() {
          take().then(
            (chunk) => this.push(chunk),
            (err: unknown) => this.destroy(err as Error),
          );
        },
      });
      try {
        await onEntry(header, body);
      } finally {
        if (!body.readableEnded) body.destroy();
      }
      if (!body.readableEnded) throw new SnapworkerError(`archive: entry ${showPath(header.path)}: onEntry returned before reading the whole body`);
    }
    return hash.digest();
  }

  private async readSums(tar: TarParser): Promise<void> {
    const parser = new SumsParser((hex, path) => this.checkSum(hex, path));
    for (let chunk = await tar.bodyChunk(); chunk !== null; chunk = await tar.bodyChunk()) {
      this.sealMac?.update(chunk);
      parser.push(chunk);
    }
    parser.end();
    for (const [path, sum] of this.fileSums) {
      if (sum !== CHECKED) throw new IntegrityError(`archive: entry ${showPath(path)}: not listed in ${SUMS_ENTRY}`);
    }
  }

  private checkSum(hex: string, path: string): void {
    const actual = this.fileSums.get(path);
    if (actual === undefined) {
      const type = this.tracker.typeOf(path);
      if (type) throw new IntegrityError(`archive: ${SUMS_ENTRY} lists ${showPath(path)}, which is a ${type}, not a file`);
      throw new IntegrityError(`archive: entry ${showPath(path)}: listed in ${SUMS_ENTRY} but missing from the archive`);
    }
    if (actual === CHECKED) throw new IntegrityError(`archive: ${SUMS_ENTRY} lists ${showPath(path)} twice`);
    if (actual !== hex) throw new IntegrityError(`archive: entry ${showPath(path)}: sha256 mismatch`);
    this.fileSums.set(path, CHECKED);
  }

  private async readSeal(parser: TarParser, size: number): Promise<void> {
    const keyId = this.manifest!.sealKeyId;
    if (keyId === undefined) throw new IntegrityError(`archive: entry ${SEAL_ENTRY}: present, but the manifest names no seal key`);
    if (size > MAX_SEAL_BYTES) throw new IntegrityError(`archive: entry ${SEAL_ENTRY}: ${size} bytes, more than ${MAX_SEAL_BYTES}`);
    const seal = decodeSeal(await parser.readBody());
    if (seal.keyId !== keyId) throw new IntegrityError(`archive: entry ${SEAL_ENTRY}: key ${seal.keyId}, but the manifest says ${keyId}`);
    if (!this.sealMac) return; // unknown key, and the caller chose to read anyway
    if (!sealMatches(seal, this.sealMac.digest())) {
      throw new IntegrityError(`archive: entry ${SEAL_ENTRY}: does not match ${SUMS_ENTRY} (tampered with, or a different key under the id ${keyId})`);
    }
    this.sealed = true;
  }

  /** The checks only the end of the input can settle: all entries there, end marker, nothing after. */
  private checkEnd(): void {
    if (this.truncation) throw new IntegrityError(`archive: truncated ${this.where()}`, { cause: this.truncation });
    switch (this.state) {
      case 'manifest':
        throw new IntegrityError(`archive: truncated or empty: no ${MANIFEST_ENTRY}`);
      case 'payload':
        throw new IntegrityError(`archive: truncated: ${SUMS_ENTRY} missing ${this.where()}`);
      case 'after-sums':
        if (this.manifest!.sealKeyId !== undefined) throw new IntegrityError(`archive: truncated: ${SEAL_ENTRY} missing (the manifest names seal key ${this.manifest!.sealKeyId})`);
        break;
      case 'after-seal':
        break;
    }
    if (this.tail.lastNonZeroEnd > this.entriesEnd || this.tail.total > this.entriesEnd + END_OF_ARCHIVE_BYTES) {
      throw new IntegrityError('archive: data after the end of the archive');
    }
    if (this.tail.total < this.entriesEnd + END_OF_ARCHIVE_BYTES) throw new IntegrityError('archive: truncated: end-of-archive marker missing');
    const consumed = (this.decompressor as { bytesWritten?: number }).bytesWritten;
    if (this.compression === 'gzip' && consumed !== this.compressedBytes) throw new IntegrityError('archive: data after the end of the gzip stream');
  }
}

/**
 * Reads at least `size` bytes from the start of `input` (fewer if it ends first) and puts them
 * back. Returns what it saw and the stream to read the whole input from: `input` itself, or,
 * when it already ended, a stream of the bytes read.
 */
async function readHead(input: Readable, size: number): Promise<{ head: Buffer; source: Readable }> {
  const chunks: Buffer[] = [];
  let length = 0;
  for (;;) {
    const chunk = input.read() as Buffer | null;
    if (chunk !== null) {
      chunks.push(chunk);
      length += chunk.length;
      if (length >= size) break;
      continue;
    }
    if (input.readableEnded || input.destroyed) break;
    const ended = await new Promise<boolean>((resolve, reject) => {
      const cleanup = () => {
        input.off('readable', onReadable);
        input.off('end', onEnd);
        input.off('error', onError);
        input.off('close', onEnd);
      };
      const onReadable = () => (cleanup(), resolve(false));
      const onEnd = () => (cleanup(), resolve(true));
      const onError = (err: Error) => (cleanup(), reject(err));
      input.on('readable', onReadable);
      input.on('end', onEnd);
      input.on('error', onError);
      input.on('close', onEnd);
    });
    if (ended) break;
  }
  const head = Buffer.concat(chunks);
  // Nothing can be put back after 'end': hand over a fresh stream of what was read.
  if (input.readableEnded) return { head, source: Readable.from([head]) };
  if (head.length > 0) input.unshift(head);
  return { head, source: input };
}
