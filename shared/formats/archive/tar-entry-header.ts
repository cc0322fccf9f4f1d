import { IntegrityError } from '../../errors.js';
import { decodeName } from '../../fsutil/byte-name.js';
import type { EntryHeader, EntryType } from '../../snapshot/entry.js';
import { sparseHeaderFromPax, type SparseHeader } from './pax-sparse.js';
import { xattrsFromPax } from './pax-xattrs.js';
import { showPath } from './safe-path.js';
import type { TarEntry } from './tar-parser.js';

/** The entry's path as the tar holds it, without the trailing `/` of directories. */
export function entryName(entry: TarEntry): string {
  return entry.typeflag === '5' && entry.name.endsWith('/') ? entry.name.slice(0, -1) : entry.name;
}

/**
 * The payload header of a tar entry: its path (a sparse file's real one, not GNU's
 * `GNUSparseFile.0` stand-in), type, mode, exact mtime, size (a sparse file's logical size),
 * link target, device numbers and extended attributes. `sparse` is set for a pax 1.0 sparse
 * file, whose body starts with the map (`readSparseMap`).
 * @throws IntegrityError for entry types an archive may not hold, malformed sparse or xattr records.
 */
export function payloadHeaderOf(entry: TarEntry): { header: EntryHeader; sparse: SparseHeader | undefined } {
  const tarPath = entryName(entry);
  const records = entry.pax;
  // Messages name the real path of a sparse file.
  const sparseName = records?.get('GNU.sparse.name');
  const sparse = sparseHeaderFromPax(records, showPath(sparseName ? decodeName(sparseName) : tarPath));
  const header = toEntryHeader(entry, sparse ? decodeName(sparse.name) : tarPath);
  if (sparse) {
    if (header.type !== 'file') throw new IntegrityError(`archive: entry ${showPath(tarPath)}: a sparse ${header.type}`);
    header.size = sparse.realSize;
  }
  const xattrs = xattrsFromPax(records, showPath(header.path));
  if (xattrs) header.xattrs = xattrs;
  return { header, sparse };
}

/** A pax time (`[-]seconds[.fraction]`, as GNU tar writes it) in nanoseconds; undefined when malformed. */
export function parsePaxTime(value: string): bigint | undefined {
  const match = /^(-?)(\d{1,15})(?:\.(\d{1,30}))?$/.exec(value);
  if (!match) return undefined;
  const magnitude = BigInt(match[2]!) * 1_000_000_000n + BigInt((match[3] ?? '').slice(0, 9).padEnd(9, '0'));
  return match[1] ? -magnitude : magnitude;
}

const TAR_TYPES: Record<string, EntryType> = {
  '0': 'file',
  '7': 'file', // contiguous file: a regular file everywhere but a few old systems
  '1': 'hardlink',
  '2': 'symlink',
  '3': 'chardev',
  '4': 'blockdev',
  '5': 'directory',
  '6': 'fifo',
};

const NS_PER_MS = 1_000_000n;

/** Maps a tar entry to an EntryHeader with the given path, refusing entry types an archive may not hold. */
export function toEntryHeader(entry: TarEntry, path: string): EntryHeader {
  const type = Object.hasOwn(TAR_TYPES, entry.typeflag) ? TAR_TYPES[entry.typeflag] : undefined;
  if (!type) throw new IntegrityError(`archive: entry ${showPath(path)}: unknown entry type ${JSON.stringify(entry.typeflag)}`);
  const paxMtime = entry.pax?.get('mtime');
  const exact = paxMtime === undefined ? undefined : parsePaxTime(paxMtime.toString('latin1'));
  const header: EntryHeader = {
    path,
    type,
    mode: entry.mode & 0o7777,
    // Whole seconds (nearly every entry) without BigInt arithmetic; mtimeNs only when exact.
    mtime: new Date(exact === undefined ? entry.mtimeSeconds * 1000 : Number(exact / NS_PER_MS)),
    mtimeNs: exact ?? BigInt(entry.mtimeSeconds) * 1_000_000_000n,
    // GNU tar may give hard links the size of their target; they carry no body of their own.
    size: type === 'file' ? entry.size : 0,
  };
  if (type === 'symlink' || type === 'hardlink') header.linkTarget = entry.linkname;
  if (type === 'chardev' || type === 'blockdev') {
    header.devMajor = entry.devMajor;
    header.devMinor = entry.devMinor;
  }
  return header;
}
