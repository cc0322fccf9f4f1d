import { z } from 'zod';
import { IntegrityError } from '../../../errors.js';
import type { ListedEntry } from '../../snapshot-format.js';
import { MAX_SPARSE_SEGMENTS } from '../../../snapshot/sparse-segments.js';

/*
 * The entry index (docs/archive-format.md, "Entry index"): `snapshots/<id>/entries.jsonl.zst`
 * beside the archive, one JSON line per payload entry in archive order between a header line
 * and a trailer line, zstd-compressed. It lets a reader list a snapshot and find any entry's
 * bytes without reading the archive. Read back it is untrusted input: its size and SHA-256 must
 * match the record, every line is parsed with a schema and bounded, offsets must grow.
 */

/** The index's object name beside the archive. */
export const ENTRY_INDEX_NAME = 'entries.jsonl.zst';
/** Longest line accepted (a line holds one path, a link target, a sparse map of at most MAX_SPARSE_SEGMENTS). */
export const MAX_INDEX_LINE_BYTES = 4 * 1024 * 1024;

const int = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

export const indexHeaderSchema = z.object({ v: z.literal(1), snapshotId: z.string(), compression: z.enum(['zstd', 'gzip', 'none']) }).strict();

export const indexEntrySchema = z
  .object({
    path: z.string().min(1).max(65536),
    type: z.enum(['file', 'directory', 'symlink', 'hardlink', 'fifo', 'chardev', 'blockdev']),
    mode: z.number().int().min(0).max(0o7777),
    size: int,
    /** Nanoseconds since the epoch, as a decimal string (it does not fit a double). */
    mtimeNs: z.string().regex(/^-?\d{1,30}$/),
    linkTarget: z.string().max(65536).optional(),
    devMajor: int.optional(),
    devMinor: int.optional(),
    sparse: z.array(z.tuple([int, int])).max(MAX_SPARSE_SEGMENTS).optional(),
    xattrs: z.array(z.string().max(65536)).max(65536).optional(),
    sha256: z.string().regex(/^[0-9a-f]{64}$/).optional(),
    /** Where the entry's first header block starts in the tar stream. */
    offset: int,
    /** Tar bytes of the entry: its header blocks, body and padding. */
    length: int.min(512),
  })
  .strict();

export const indexTrailerSchema = z
  .object({
    end: z.literal(true),
    entries: int,
    /** Where the first payload entry starts (the end of `manifest.json`). */
    payloadStart: int,
    /** Bytes of the whole tar stream. */
    tarBytes: int,
  })
  .strict();

export type IndexEntry = z.infer<typeof indexEntrySchema>;
export type IndexTrailer = z.infer<typeof indexTrailerSchema>;

/** A listing entry from an index line. */
export function listedEntry(line: IndexEntry): ListedEntry {
  const mtimeNs = BigInt(line.mtimeNs);
  return {
    path: line.path,
    type: line.type,
    mode: line.mode,
    size: line.size,
    mtime: new Date(Number(mtimeNs / 1_000_000n)),
    mtimeNs,
    ...(line.linkTarget !== undefined ? { linkTarget: line.linkTarget } : {}),
    ...(line.devMajor !== undefined ? { devMajor: line.devMajor, devMinor: line.devMinor ?? 0 } : {}),
    ...(line.sparse ? { sparse: line.sparse.map(([offset, length]) => ({ offset, length })) } : {}),
    // Names only: values stay in the archive (a listing shows which attributes a file has).
    ...(line.xattrs ? { xattrs: line.xattrs.map((name) => ({ name, value: Buffer.alloc(0) })) } : {}),
    ...(line.sha256 ? { sha256: line.sha256 } : {}),
  };
}

/** Parses one line with `schema`, naming the line on failure. @throws IntegrityError */
export function parseIndexLine<T>(schema: z.ZodType<T>, text: string, lineNumber: number, key: string): T {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new IntegrityError(`archive: entry index ${key}: line ${lineNumber} is not JSON`);
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new IntegrityError(`archive: entry index ${key}: line ${lineNumber}: ${issue.path.join('.') || 'value'}: ${issue.message}`);
  }
  return parsed.data;
}
