import path from 'node:path/posix';
import { IntegrityError } from '../../errors.js';
import { encodePaxRecord } from './pax-record.js';
import { MAX_SPARSE_SEGMENTS, dataBytes, type DataSegment } from '../../snapshot/sparse-segments.js';

/**
 * Sparse files in GNU tar's pax sparse format 1.0 (GNU tar manual, "Storing Sparse Files" /
 * "PAX Format, Versions 1.0"; libarchive reads and writes the same):
 *
 * - the pax header carries `GNU.sparse.major=1`, `GNU.sparse.minor=0`, `GNU.sparse.name=<real
 *   path>` and `GNU.sparse.realsize=<logical size>`; the ustar name is `<dir>/GNUSparseFile.0/
 *   <base>` so that a tar without sparse support extracts the packed form aside, never over the
 *   real name;
 * - the entry's data area starts with the map in decimal text, one number per line: the number
 *   of segments, then each segment's offset and length, padded with NULs to a 512-byte block;
 * - then the segments' bytes, back to back; the entry's tar size counts map and data.
 *
 * Like GNU tar, the map always ends with the segment `(realsize, 0)`, so that even a file that
 * ends in a hole (or is all hole) has its length in the map.
 */

const BLOCK = 512;
/** Longest decimal number in a map: 2^53 has 16 digits. */
const MAX_NUMBER_DIGITS = 16;

/** `data/a/GNUSparseFile.0/b` for `data/a/b`: where a tar without sparse support puts the packed bytes. */
export function sparseArchiveName(entryPath: string): string {
  const dir = path.dirname(entryPath);
  return `${dir === '.' ? '' : `${dir}/`}GNUSparseFile.0/${path.basename(entryPath)}`;
}

/** The pax records that mark an entry as a 1.0 sparse file (encoded, in GNU tar's order). */
export function sparsePaxRecords(realPath: string | Buffer, realSize: number): Buffer {
  return Buffer.concat([
    encodePaxRecord('GNU.sparse.major', '1'),
    encodePaxRecord('GNU.sparse.minor', '0'),
    encodePaxRecord('GNU.sparse.name', realPath),
    encodePaxRecord('GNU.sparse.realsize', String(realSize)),
  ]);
}

/** The map that starts the data area, padded to a whole block. */
export function encodeSparseMap(segments: readonly DataSegment[], realSize: number): Buffer {
  const lines = [String(segments.length + 1)];
  for (const { offset, length } of segments) lines.push(String(offset), String(length));
  lines.push(String(realSize), '0');
  const text = Buffer.from(`${lines.join('\n')}\n`);
  const padded = Buffer.alloc(Math.ceil(text.length / BLOCK) * BLOCK);
  text.copy(padded);
  return padded;
}

/**
 * Throws IntegrityError unless the segments are in order, do not overlap, have no empty ones,
 * and lie within `realSize`.
 */
export function assertValidSegments(segments: readonly DataSegment[], realSize: number, entryName: string): void {
  if (segments.length > MAX_SPARSE_SEGMENTS) throw new IntegrityError(`archive: entry ${entryName}: sparse map has ${segments.length} segments, more than ${MAX_SPARSE_SEGMENTS}`);
  let end = 0;
  for (const { offset, length } of segments) {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || length <= 0 || offset < end || offset + length > realSize) {
      throw new IntegrityError(`archive: entry ${entryName}: sparse map segment ${offset}+${length} is out of order, empty or beyond the size ${realSize}`);
    }
    end = offset + length;
  }
}

/** What the pax records of a sparse entry say. */
export interface SparseHeader {
  /** The real path (`GNU.sparse.name`), raw bytes. */
  name: Buffer;
  realSize: number;
}

/**
 * The sparse-file records of a pax header, or undefined when the entry is not sparse.
 *
 * @throws IntegrityError for any other sparse format (0.0, 0.1 keep the map in the header) or
 *   a missing or malformed name or size.
 */
export function sparseHeaderFromPax(records: ReadonlyMap<string, Buffer> | undefined, entryName: string): SparseHeader | undefined {
  if (!records) return undefined;
  const sparseKeys = [...records.keys()].filter((key) => key.startsWith('GNU.sparse.'));
  if (sparseKeys.length === 0) return undefined;
  const major = records.get('GNU.sparse.major')?.toString();
  const minor = records.get('GNU.sparse.minor')?.toString();
  if (major !== '1' || minor !== '0') {
    throw new IntegrityError(`archive: entry ${entryName}: sparse format ${major ?? '0'}.${minor ?? 'x'} is not supported (only pax 1.0)`);
  }
  const name = records.get('GNU.sparse.name');
  const realSize = parseDecimal(records.get('GNU.sparse.realsize')?.toString() ?? '');
  if (!name || name.length === 0 || realSize === undefined) {
    throw new IntegrityError(`archive: entry ${entryName}: sparse header without a valid GNU.sparse.name and GNU.sparse.realsize`);
  }
  return { name, realSize };
}

/**
 * Reads the sparse map at the start of an entry's data area from `chunks`. Returns the data
 * segments (without empty ones such as the closing `(realsize, 0)`) and what the last chunk
 * read held after the map's padding: the first data bytes.
 *
 * @throws IntegrityError for a malformed map, one that does not fit `storedSize` exactly (map
 *   blocks plus data), or segments out of order or beyond `realSize`.
 */
export async function readSparseMap(
  chunks: AsyncIterator<Buffer>,
  storedSize: number,
  realSize: number,
  entryName: string,
): Promise<{ segments: DataSegment[]; rest: Buffer }> {
  const fail = (problem: string): never => {
    throw new IntegrityError(`archive: entry ${entryName}: sparse map ${problem}`);
  };
  const nextChunk = async (): Promise<Buffer> => {
    const next = await chunks.next();
    return next.done ? fail('ends early') : next.value;
  };
  const numbers: number[] = [];
  let expected = Infinity;
  let digits = '';
  /** Bytes of the data area before `chunk`. */
  let before = 0;
  let chunk = await nextChunk();
  let i = 0;
  while (numbers.length < expected) {
    if (i === chunk.length) {
      before += chunk.length;
      chunk = await nextChunk();
      i = 0;
      continue;
    }
    const byte = chunk[i++]!;
    if (byte === 0x0a) {
      const value = parseDecimal(digits) ?? fail(`has a bad number ${JSON.stringify(digits)}`);
      digits = '';
      numbers.push(value);
      if (numbers.length === 1) {
        if (value > MAX_SPARSE_SEGMENTS + 1) fail(`has ${value} segments, more than ${MAX_SPARSE_SEGMENTS}`);
        expected = 1 + 2 * value;
      }
    } else if (byte >= 0x30 && byte <= 0x39 && digits.length < MAX_NUMBER_DIGITS) {
      digits += String.fromCharCode(byte);
    } else {
      fail('is not decimal text');
    }
  }
  // The NUL padding after the text may run into later chunks.
  const mapBytes = Math.ceil((before + i) / BLOCK) * BLOCK;
  while (before + chunk.length < mapBytes) {
    before += chunk.length;
    chunk = await nextChunk();
  }
  const rest = chunk.subarray(mapBytes - before);

  const segments: DataSegment[] = [];
  for (let n = 1; n < numbers.length; n += 2) {
    if (numbers[n + 1]! > 0) segments.push({ offset: numbers[n]!, length: numbers[n + 1]! });
  }
  assertValidSegments(segments, realSize, entryName);
  const data = dataBytes(segments);
  if (mapBytes + data !== storedSize) fail(`and data (${mapBytes} + ${data} bytes) do not fill the entry's ${storedSize} bytes`);
  return { segments, rest };
}

function parseDecimal(text: string): number | undefined {
  if (!/^\d{1,16}$/.test(text)) return undefined;
  const value = Number(text);
  return Number.isSafeInteger(value) ? value : undefined;
}
