import { createHash } from 'node:crypto';
import { archiveOf } from './archive-of.js';
import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { SnapshotRecord } from '../../catalog/snapshot-record.js';
import { IntegrityError, SnapworkerError } from '../../errors.js';
import type { EntryHeader } from '../../snapshot/entry.js';
import type { OpenSnapshotRequest, ReadSummary, SnapshotEntry, SnapshotReader } from '../snapshot-format.js';
import { MAX_MANIFEST_BYTES } from './archive-reader.js';
import { listedEntry, type IndexEntry } from './entry-index/entry-index.js';
import type { EntryIndex } from './entry-index/entry-index-reader.js';
import { MANIFEST_ENTRY, manifestProblems, type Manifest } from './manifest.js';
import { readSparseMap } from './pax-sparse.js';
import { EntryTracker, showPath } from './safe-path.js';
import { decodeSeekTable, type SeekTable } from './seekable/seek-table.js';
import { TarRangeReader } from './seekable/tar-range-reader.js';
import { contentHash } from './sparse-content.js';
import { payloadHeaderOf } from './tar-entry-header.js';
import { TarHeaderError, TarParser, TarTruncatedError, type TarEntry } from './tar-parser.js';

/**
 * Opens a partial read (`select`) of an archive that has an entry index and can seek (zstd with
 * a seek table, or none): the index says which tar bytes each selected entry occupies, and only
 * the frames holding them are fetched, with ranged GETs. Each selected file's bytes are checked
 * against the SHA-256 the index holds (the index itself was checked against the record); entries
 * that are only a header (directories, symlinks, … without extended attributes) come from the
 * index alone. The whole-archive digest and SHA256SUMS are not checked: nothing reads them.
 * A hard link whose target is not selected is left out (it has nothing to link to).
 * Resolves undefined when the archive cannot seek (gzip): the caller reads it whole.
 */
export async function openSelected(request: OpenSnapshotRequest, index: EntryIndex, select: (path: string, type?: EntryHeader['type']) => boolean): Promise<SnapshotReader | undefined> {
  const { repository, record, signal } = request;
  let table: SeekTable | undefined;
  if (archiveOf(record).compression === 'gzip') return undefined;
  if (archiveOf(record).compression === 'zstd') {
    const ref = archiveOf(record).seekTable;
    if (!ref || ref.offset + ref.size !== archiveOf(record).size || ref.size > 64 * 1024 * 1024) return undefined;
    const stream = await repository.getObject(archiveOf(record).key, { signal, range: { start: ref.offset, end: ref.offset + ref.size - 1 } });
    const bytes = await collect(stream, ref.size);
    if (createHash('sha256').update(bytes).digest('hex') !== ref.sha256) {
      throw new IntegrityError(`snapshot ${record.id}: the seek table of ${archiveOf(record).key} differs from its record (tampered with or damaged)`);
    }
    table = decodeSeekTable(bytes, ref.offset, undefined);
  }
  const tarBytes = table ? table.decompressedOffsets[table.frames.length]! : archiveOf(record).size;
  const ranges = new TarRangeReader(repository, archiveOf(record).key, table, tarBytes, signal);
  const lines = index.entries[Symbol.asyncIterator]();
  try {
    const first = await lines.next();
    const manifestEnd = first.done ? Math.min(tarBytes, MAX_MANIFEST_BYTES + 4096) : first.value.offset;
    const manifest = await readManifest(ranges, manifestEnd, record);
    return new SelectedReader(manifest, record, ranges, first.done ? undefined : first.value, lines, index, select, tarBytes);
  } catch (err) {
    ranges.close();
    await lines.return?.();
    throw err;
  }
}

class SelectedReader implements SnapshotReader {
  readonly entries: AsyncIterable<SnapshotEntry>;
  private done: ReadSummary | undefined;
  private readonly counts = { entries: 0, files: 0, rawBytes: 0 };

  constructor(
    readonly manifest: Manifest,
    private readonly record: SnapshotRecord,
    private readonly ranges: TarRangeReader,
    private readonly firstLine: IndexEntry | undefined,
    private readonly lines: AsyncIterator<IndexEntry>,
    private readonly index: EntryIndex,
    private readonly select: (path: string, type?: EntryHeader['type']) => boolean,
    private readonly tarBytes: number,
  ) {
    this.entries = this.read();
  }

  summary(): ReadSummary {
    if (!this.done) throw new SnapworkerError('archive: summary asked for before the selection was read');
    return this.done;
  }

  async close(): Promise<void> {
    this.ranges.close();
    await this.lines.return?.();
  }

  private async *read(): AsyncGenerator<SnapshotEntry> {
    const tracker = new EntryTracker();
    try {
      for (let next = this.firstLine; next; ) {
        const line = next;
        if (this.wanted(line)) {
          const entry = await this.entry(line);
          tracker.add(entry.header);
          this.counts.entries += 1;
          if (entry.header.type === 'file') {
            this.counts.files += 1;
            this.counts.rawBytes += entry.header.size;
          }
          yield entry.value;
          await entry.checked();
        } else {
          // Known, though not read: a selected hard link may name it as its first name.
          tracker.add(line as unknown as EntryHeader);
        }
        const step = await this.lines.next();
        next = step.done ? undefined : step.value;
      }
      if (this.index.trailer().tarBytes !== this.tarBytes) {
        throw new IntegrityError(`archive: the seek table holds ${this.tarBytes} tar bytes, the entry index says ${this.index.trailer().tarBytes}`);
      }
      this.done = { ...this.counts, sealed: false };
    } catch (err) {
      if (err instanceof SnapworkerError && err.message.startsWith('archive:')) err.message = `snapshot ${this.record.id} (${archiveOf(this.record).key}): ${err.message}`;
      throw err;
    } finally {
      this.ranges.close();
    }
  }

  /** Selected entries; a hard link whose first name is not selected too is the caller's to refuse, never dropped here. */
  private wanted(line: IndexEntry): boolean {
    return this.select(line.path, line.type);
  }

  /** The entry of an index line: from the index alone when it is only a header, else parsed from its tar bytes. */
  private async entry(line: IndexEntry): Promise<{ header: EntryHeader; value: SnapshotEntry; checked: () => Promise<void> }> {
    if (line.type !== 'file' && !line.xattrs) {
      const { sha256: _none, ...header } = listedEntry(line);
      return { header, value: { header, body: undefined }, checked: async () => {} };
    }
    const input = this.ranges.read(line.offset, line.offset + line.length)[Symbol.asyncIterator]();
    const parser = new TarParser(async () => {
      const next = await input.next();
      return next.done ? null : next.value;
    });
    let tarEntry: TarEntry | null;
    try {
      tarEntry = await parser.next();
    } catch (err) {
      await input.return?.(undefined);
      throw explainTarError(err, line.path);
    }
    if (tarEntry === null) throw new IntegrityError(`archive: entry ${showPath(line.path)}: no tar entry where the entry index points`);
    const { header, sparse } = payloadHeaderOf(tarEntry);
    // Known before the body is read (consumers size holes by it); the tar's own map is checked against it below.
    if (sparse && line.sparse) header.sparse = line.sparse.map(([offset, length]) => ({ offset, length }));
    if (header.path !== line.path || header.type !== line.type || header.size !== line.size) {
      await input.return?.(undefined);
      throw new IntegrityError(`archive: entry ${showPath(line.path)}: the tar header at offset ${line.offset} is ${showPath(header.path)}, not what the entry index says`);
    }
    if (header.type !== 'file') {
      await input.return?.(undefined);
      return { header, value: { header, body: undefined }, checked: async () => {} };
    }
    const storedSize = tarEntry.size;
    const name = showPath(header.path);
    let verdict: Promise<void> = Promise.resolve();
    async function* checkedBody(): AsyncGenerator<Buffer> {
      const chunks = parser.bodyChunks();
      let pending: Buffer | undefined;
      if (sparse) {
        const map = await readSparseMap(chunks, storedSize, header.size, name);
        if (header.sparse && JSON.stringify(header.sparse) !== JSON.stringify(map.segments)) {
          throw new IntegrityError(`archive: entry ${name}: its sparse map differs from the entry index's`);
        }
        header.sparse = map.segments;
        if (map.rest.length > 0) pending = map.rest;
      }
      const hash = contentHash(header.sparse, header.size, name, () => {});
      if (pending) {
        await hash.update(pending);
        yield pending;
      }
      try {
        for (let next = await chunks.next(); !next.done; next = await chunks.next()) {
          await hash.update(next.value);
          yield next.value;
        }
      } catch (err) {
        throw explainTarError(err, header.path);
      } finally {
        await input.return?.(undefined);
      }
      if ((await hash.digest()) !== line.sha256) throw new IntegrityError(`archive: entry ${name}: sha256 mismatch`);
    }
    const body = Readable.from(checkedBody(), { objectMode: false, highWaterMark: 256 * 1024 });
    verdict = finished(body);
    verdict.catch(() => {});
    return {
      header,
      value: { header, body },
      checked: async () => {
        if (!body.readableEnded && !body.destroyed) body.resume();
        await verdict;
      },
    };
  }
}

/** Reads `manifest.json`, the first tar entry, from tar bytes `[0, end)`, and checks it names the record's snapshot. */
async function readManifest(ranges: TarRangeReader, end: number, record: SnapshotRecord): Promise<Manifest> {
  const head = await ranges.readHead(end);
  let bytes: Buffer | undefined;
  try {
    let pulled = false;
    const parser = new TarParser(async () => (pulled ? null : ((pulled = true), head)));
    const entry = await parser.next();
    if (entry && entry.name === MANIFEST_ENTRY && entry.size <= MAX_MANIFEST_BYTES) bytes = await parser.readBody();
  } catch (err) {
    if (!(err instanceof TarHeaderError || err instanceof TarTruncatedError)) throw err;
  }
  let value: unknown;
  try {
    value = bytes && JSON.parse(bytes.toString('utf8'));
  } catch {
    value = undefined;
  }
  if (value !== undefined) {
    const problems = manifestProblems(value);
    if (problems) throw new IntegrityError(`archive: entry ${MANIFEST_ENTRY}: ${problems}`);
    const manifest = value as Manifest;
    if (manifest.snapshotId !== record.id) throw new IntegrityError(`snapshot ${record.id}: archive manifest names snapshot ${manifest.snapshotId}`);
    return manifest;
  }
  throw new IntegrityError(`archive: ${archiveOf(record).key}: no readable ${MANIFEST_ENTRY} where the entry index says the archive starts`);
}

/** A tar parser's error as one line naming the entry the index pointed at. */
function explainTarError(err: unknown, path: string): unknown {
  if (err instanceof TarHeaderError) return new IntegrityError(`archive: entry ${showPath(path)}: corrupt tar header: ${err.detail}`, { cause: err });
  if (err instanceof TarTruncatedError) return new IntegrityError(`archive: entry ${showPath(path)}: its tar bytes end early`, { cause: err });
  return err;
}

async function collect(stream: Readable, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      stream.destroy();
      throw new IntegrityError(`archive: more than ${limit} bytes where at most that many were expected`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
