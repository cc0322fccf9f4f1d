import { createHash } from 'node:crypto';
import { archiveOf } from '../archive-of.js';
import { pipeline, Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { DecompressStream } from 'zstd-napi';
import type { Repository } from '../../../catalog/repository.js';
import type { SnapshotRecord } from '../../../catalog/snapshot-record.js';
import { IntegrityError } from '../../../errors.js';
import { archiveDecryption } from '../archive-encryption.js';
import {
  MAX_INDEX_LINE_BYTES,
  indexEntrySchema,
  indexHeaderSchema,
  indexTrailerSchema,
  parseIndexLine,
  type IndexEntry,
  type IndexTrailer,
} from './entry-index.js';

/**
 * Largest entry index read (compressed bytes). It is held in memory while read, to be checked
 * against the record before any line is believed: about 30 bytes per entry compressed, so this
 * is some ten million entries.
 */
export const MAX_INDEX_BYTES = 256 * 1024 * 1024;

/** A checked entry index: its lines, then (once they are all read) the trailer. */
export interface EntryIndex {
  entries: AsyncIterable<IndexEntry>;
  /** Set once `entries` ended normally. */
  trailer(): IndexTrailer;
}

/**
 * Fetches the snapshot's entry index, checks its size and SHA-256 against the record before
 * parsing anything, then parses it line by line, checking each line and the whole shape: the
 * header names this snapshot and compression, entries are contiguous in the tar stream, and the
 * trailer counts them as the record does. In an encrypted repository the index is an age file,
 * like the archive, decrypted (and each chunk authenticated) after the record's checks. Undefined
 * when the record names no index.
 * @throws IntegrityError naming the index and the problem (one line); InvalidInputError when an
 *   encrypted repository cannot be unlocked.
 */
export async function readEntryIndex(repository: Repository, record: SnapshotRecord, signal: AbortSignal): Promise<EntryIndex | undefined> {
  const ref = archiveOf(record).index;
  if (!ref) return undefined;
  if (ref.size > MAX_INDEX_BYTES) throw new IntegrityError(`archive: entry index ${ref.key}: ${ref.size} bytes, more than ${MAX_INDEX_BYTES}`);
  const stream = await repository.getObject(ref.key, { signal });
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > ref.size) {
      stream.destroy();
      break;
    }
    chunks.push(chunk);
  }
  const bytes = Buffer.concat(chunks);
  if (size !== ref.size || createHash('sha256').update(bytes).digest('hex') !== ref.sha256) {
    throw new IntegrityError(`archive: entry index ${ref.key} differs from its record (tampered with or damaged)`);
  }
  let trailer: IndexTrailer | undefined;
  async function* entries(): AsyncGenerator<IndexEntry> {
    let lineNumber = 0;
    let end = -1;
    const decrypt = await archiveDecryption(repository, record, signal);
    // Errors of any stage reach the loop through the last stream.
    const plain = decrypt ? pipeline(Readable.from([bytes]), decrypt, new DecompressStream(), () => {}) : pipeline(Readable.from([bytes]), new DecompressStream(), () => {});
    for await (const line of lines(plain, ref!.key)) {
      lineNumber += 1;
      if (trailer) throw new IntegrityError(`archive: entry index ${ref!.key}: line ${lineNumber} after the trailer`);
      if (lineNumber === 1) {
        const header = parseIndexLine(indexHeaderSchema, line, lineNumber, ref!.key);
        if (header.snapshotId !== record.id || header.compression !== archiveOf(record).compression) {
          throw new IntegrityError(`archive: entry index ${ref!.key}: names snapshot ${header.snapshotId} (${header.compression}), not this one`);
        }
        continue;
      }
      if (line.startsWith('{"end":')) {
        trailer = parseIndexLine(indexTrailerSchema, line, lineNumber, ref!.key);
        if (trailer.entries !== lineNumber - 2 || trailer.entries !== record.stats.entries) {
          throw new IntegrityError(`archive: entry index ${ref!.key}: ${lineNumber - 2} entries, the record says ${record.stats.entries}`);
        }
        if (end !== -1 ? end > trailer.tarBytes : trailer.payloadStart > trailer.tarBytes) throw new IntegrityError(`archive: entry index ${ref!.key}: entries past the end of the tar stream`);
        continue;
      }
      const entry = parseIndexLine(indexEntrySchema, line, lineNumber, ref!.key);
      if (end !== -1 && entry.offset !== end) throw new IntegrityError(`archive: entry index ${ref!.key}: line ${lineNumber}: entry does not follow the one before`);
      end = entry.offset + entry.length;
      yield entry;
    }
    if (!trailer) throw new IntegrityError(`archive: entry index ${ref!.key}: no trailer (cut short)`);
  }
  return {
    entries: entries(),
    trailer() {
      if (!trailer) throw new IntegrityError('archive: entry index trailer asked for before the end');
      return trailer;
    },
  };
}

/** Splits a text stream into lines, refusing any longer than MAX_INDEX_LINE_BYTES. */
async function* lines(input: Readable, key: string): AsyncGenerator<string> {
  let rest = '';
  const decoder = new StringDecoder('utf8');
  try {
    for await (const chunk of input as AsyncIterable<Buffer>) {
      const text = rest + decoder.write(chunk);
      const parts = text.split('\n');
      rest = parts.pop()!;
      if (rest.length > MAX_INDEX_LINE_BYTES) throw new IntegrityError(`archive: entry index ${key}: a line longer than ${MAX_INDEX_LINE_BYTES} bytes`);
      yield* parts;
    }
  } catch (err) {
    if (err instanceof IntegrityError) throw err;
    throw new IntegrityError(`archive: entry index ${key}: not a zstd stream: ${(err as Error).message}`, { cause: err });
  } finally {
    input.destroy();
  }
  if (rest !== '') throw new IntegrityError(`archive: entry index ${key}: ends inside a line`);
}
