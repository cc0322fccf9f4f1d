import { createHash } from 'node:crypto';
import { PassThrough, type Readable, type Transform } from 'node:stream';
import tar from 'tar-stream';
import { AbortedError, InvalidInputError, SnapworkerError } from '../errors.js';
import type { ProgressSink } from '../progress.js';
import type { EntryHeader, SourceEntry } from './archive-entry.js';
import { createCompressStream } from './compression.js';
import { MANIFEST_ENTRY, SEAL_ENTRY, SUMS_ENTRY, manifestProblems, type Manifest } from './manifest.js';
import { EntryTracker, showPath } from './safe-path.js';
import { assertValidSealKey, createSealMac, encodeSeal, type SealKey } from './seal.js';
import { formatSumLine } from './sha256sums.js';
import { EventLoopYielder, waitForDrain } from './stream-wait.js';

/** What went into an archive: payload entries (not manifest, sums or seal), of which regular files, and their bytes. */
export interface ArchiveStats {
  entries: number;
  files: number;
  rawBytes: number;
}

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
}

/** What tar-stream's pack takes for an entry. */
type TarHeader = Partial<tar.Header> & { name: string };

// Timestamps the ustar header holds (tar-stream writes whole seconds through a 32-bit int).
const MAX_MTIME_MS = (2 ** 31 - 1) * 1000;

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
  private readonly pack = tar.pack();
  private readonly tracker = new EntryTracker();
  private readonly sumLines: string[] = [];
  private readonly stats: ArchiveStats = { entries: 0, files: 0, rawBytes: 0 };
  private readonly yielder = new EventLoopYielder();
  private openBody: Readable | undefined;
  private firstError: Error | undefined;

  constructor(
    private readonly options: WriteArchiveOptions,
    private readonly manifest: Manifest,
    private readonly output: Transform,
  ) {}

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
    this.pumpToOutput().catch((err: unknown) => this.fail(err));
    const done = ended.finally(() => signal.removeEventListener('abort', onAbort));
    done.catch(() => {}); // the caller may only watch `stream`
    return done;
  }

  /** Stops everything with the first error; `done` rejects with it. */
  private fail(err: unknown): void {
    if (this.firstError) return;
    this.firstError = err instanceof Error ? err : new SnapworkerError(String(err));
    this.openBody?.destroy();
    this.pack.destroy(this.firstError);
    this.output.destroy(this.firstError);
  }

  private async writeEntries(): Promise<void> {
    const manifestBytes = Buffer.from(JSON.stringify(this.manifest, null, 2) + '\n');
    await this.addBuffer(MANIFEST_ENTRY, manifestBytes);
    for await (const entry of this.options.entries) {
      if (this.firstError) throw this.firstError;
      this.tracker.add(entry);
      if (entry.type === 'file') await this.addFile(entry);
      else await this.addEntry(tarHeader(entry));
      this.stats.entries += 1;
      this.options.progress.addEntries(1);
    }
    const sums = Buffer.from(this.sumLines.join(''));
    await this.addBuffer(SUMS_ENTRY, sums, { listInSums: false });
    const { seal } = this.options;
    if (seal) await this.addBuffer(SEAL_ENTRY, encodeSeal(seal.keyId, createSealMac(seal.key).update(sums).digest()), { listInSums: false });
    this.pack.finalize();
  }

  private async addBuffer(name: string, bytes: Buffer, { listInSums = true } = {}): Promise<void> {
    if (listInSums) this.sumLines.push(formatSumLine(createHash('sha256').update(bytes).digest('hex'), name));
    const header: TarHeader = { name, type: 'file', size: bytes.length, mode: 0o644, mtime: new Date(this.manifest.createdAt) };
    await new Promise<void>((resolve, reject) => quiet(this.pack.entry(header, bytes, (err) => (err ? reject(err) : resolve()))));
  }

  /** Adds an entry without a body (directory, symlink). */
  private async addEntry(header: TarHeader): Promise<void> {
    await new Promise<void>((resolve, reject) => quiet(this.pack.entry(header, (err) => (err ? reject(err) : resolve()))));
  }

  private async addFile(entry: SourceEntry): Promise<void> {
    const name = showPath(entry.path);
    if (!entry.open) throw new InvalidInputError(`archive: entry ${name}: a file without open()`);
    let written: (() => void) | undefined;
    let failed: ((err: Error) => void) | undefined;
    const entryDone = new Promise<void>((resolve, reject) => ((written = resolve), (failed = reject)));
    entryDone.catch(() => {}); // awaited below on success; on failure the body loop's error wins
    const sink = quiet(this.pack.entry(tarHeader(entry), (err) => (err ? failed!(err) : written!())));
    const body = await entry.open();
    this.openBody = body;
    try {
      const hash = createHash('sha256');
      let bytes = 0;
      for await (const chunk of body as AsyncIterable<Buffer>) {
        bytes += chunk.length;
        if (bytes > entry.size) throw new SnapworkerError(`archive: entry ${name}: source yielded more than the announced ${entry.size} bytes (file changed while reading?)`);
        hash.update(chunk);
        if (!entry.progressCounted) this.options.progress.addBytes(chunk.length);
        if (!sink.write(chunk)) await waitForDrain(sink, `archive entry ${name}`);
        await this.yielder.add(chunk.length);
      }
      if (bytes !== entry.size) throw new SnapworkerError(`archive: entry ${name}: source yielded ${bytes} bytes, announced ${entry.size} (file changed while reading?)`);
      sink.end(undefined);
      await entryDone;
      this.sumLines.push(formatSumLine(hash.digest('hex'), entry.path));
      this.stats.files += 1;
      this.stats.rawBytes += bytes;
    } finally {
      this.openBody = undefined;
      body.destroy();
    }
  }

  /** Moves the tar bytes into the compressor at the pace the compressor's reader sets. */
  private async pumpToOutput(): Promise<void> {
    for await (const chunk of this.pack as AsyncIterable<Buffer>) {
      if (!this.output.write(chunk)) await waitForDrain(this.output, 'archive output');
    }
    if (this.firstError) return;
    this.output.end();
  }
}

/** Entry sinks repeat the pack's error, which the entry callback and `fail` already handle. */
function quiet<T extends { on(event: 'error', listener: (err: Error) => void): unknown }>(sink: T): T {
  sink.on('error', () => {});
  return sink;
}

function tarHeader(entry: EntryHeader): TarHeader {
  const mtime = Math.min(Math.max(entry.mtime.getTime() || 0, 0), MAX_MTIME_MS);
  return {
    name: entry.path,
    type: entry.type,
    mode: entry.mode & 0o7777,
    mtime: new Date(mtime),
    size: entry.type === 'file' ? entry.size : 0,
    linkname: entry.type === 'symlink' ? entry.linkTarget : undefined,
    uid: 0,
    gid: 0,
    // ustar keeps whole seconds; a pax `mtime` record keeps the milliseconds (GNU tar reads it).
    // Only written when needed: it costs a 512-byte header block per entry.
    ...(mtime % 1000 !== 0 ? { pax: { mtime: (mtime / 1000).toFixed(3) } } : {}),
  };
}
