import { createHash } from 'node:crypto';
import { archiveOf } from './archive-of.js';
import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import tar from 'tar-stream';
import type { SnapshotRecord } from '../../catalog/snapshot-record.js';
import { IntegrityError, SnapworkerError } from '../../errors.js';
import { decodeName } from '../../fsutil/byte-name.js';
import type { EntryHeader } from '../../snapshot/entry.js';
import type { OpenSnapshotRequest, ReadSummary, SnapshotEntry, SnapshotReader } from '../snapshot-format.js';
import { MAX_MANIFEST_BYTES, entryName, toEntryHeader } from './archive-reader.js';
import { listedEntry, type IndexEntry } from './entry-index/entry-index.js';
import type { EntryIndex } from './entry-index/entry-index-reader.js';
import { MANIFEST_ENTRY, manifestProblems, type Manifest } from './manifest.js';
import { paxRecordsOf } from './pax-bytes.js';
import { readSparseMap, sparseHeaderFromPax } from './pax-sparse.js';
import { xattrsFromPax } from './pax-xattrs.js';
import { EntryTracker, showPath } from './safe-path.js';
import { decodeSeekTable, type SeekTable } from './seekable/seek-table.js';
import { TarRangeReader } from './seekable/tar-range-reader.js';
import { contentHash } from './sparse-content.js';
import { END_OF_ARCHIVE } from './tar-encoder.js';

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
    const extract = tar.extract({ filenameEncoding: 'latin1' } as Parameters<typeof tar.extract>[0]);
    const feeding = (async () => {
      for await (const chunk of this.ranges.read(line.offset, line.offset + line.length)) {
        if (!extract.write(chunk)) await new Promise<void>((resolve) => extract.once('drain', () => resolve()));
      }
      extract.end(END_OF_ARCHIVE);
    })();
    feeding.catch((err: unknown) => extract.destroy(err as Error));
    const entries = extract[Symbol.asyncIterator]();
    const first = await entries.next().catch((err: unknown) => {
      throw err instanceof SnapworkerError ? err : new IntegrityError(`archive: entry ${showPath(line.path)}: corrupt tar header: ${(err as Error).message}`);
    });
    if (first.done) throw new IntegrityError(`archive: entry ${showPath(line.path)}: no tar entry where the entry index points`);
    const tarHeader = first.value.header;
    const records = paxRecordsOf(tarHeader);
    const tarPath = entryName(tarHeader);
    const sparseName = records?.get('GNU.sparse.name');
    const sparse = sparseHeaderFromPax(records, showPath(sparseName ? decodeName(sparseName) : tarPath));
    const header = toEntryHeader(tarHeader, sparse ? decodeName(sparse.name) : tarPath);
    if (sparse) {
      header.size = sparse.realSize;
      // Known before the body is read (consumers size holes by it); the tar's own map is checked against it below.
      if (line.sparse) header.sparse = line.sparse.map(([offset, length]) => ({ offset, length }));
    }
    const xattrs = xattrsFromPax(records, showPath(header.path));
    if (xattrs) header.xattrs = xattrs;
    if (header.path !== line.path || header.type !== line.type || header.size !== line.size) {
      throw new IntegrityError(`archive: entry ${showPath(line.path)}: the tar header at offset ${line.offset} is ${showPath(header.path)}, not what the entry index says`);
    }
    const source = first.value as unknown as AsyncIterable<Buffer>;
    if (header.type !== 'file') {
      for await (const _chunk of source);
      await feeding;
      return { header, value: { header, body: undefined }, checked: async () => {} };
    }
    const name = showPath(header.path);
    let verdict: Promise<void> = Promise.resolve();
    async function* checkedBody(): AsyncGenerator<Buffer> {
      const chunks = source[Symbol.asyncIterator]();
      let pending: Buffer | undefined;
      if (sparse) {
        const map = await readSparseMap(chunks, tarHeader.size!, header.size, name);
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
      for (let next = await chunks.next(); !next.done; next = await chunks.next()) {
        await hash.update(next.value);
        yield next.value;
      }
      await feeding;
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
  const extract = tar.extract();
  const feeding = (async () => {
    extract.end(Buffer.concat([await ranges.readHead(end), END_OF_ARCHIVE]));
  })();
  feeding.catch((err: unknown) => extract.destroy(err as Error));
  for await (const entry of extract) {
    if (entry.header.name !== MANIFEST_ENTRY || (entry.header.size ?? 0) > MAX_MANIFEST_BYTES) break;
    const bytes = await collect(entry as unknown as Readable, MAX_MANIFEST_BYTES);
    await feeding;
    let value: unknown;
    try {
      value = JSON.parse(bytes.toString('utf8'));
    } catch {
      break;
    }
    const problems = manifestProblems(value);
    if (problems) throw new IntegrityError(`archive: entry ${MANIFEST_ENTRY}: ${problems}`);
    const manifest = value as Manifest;
    if (manifest.snapshotId !== record.id) throw new IntegrityError(`snapshot ${record.id}: archive manifest names snapshot ${manifest.snapshotId}`);
    return manifest;
  }
  throw new IntegrityError(`archive: ${archiveOf(record).key}: no readable ${MANIFEST_ENTRY} where the entry index says the archive starts`);
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
