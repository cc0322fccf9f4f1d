import { readlink, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { EntryType, SourceEntry } from '../archive/archive-entry.js';
import type { SourceDescriptor } from '../archive/manifest.js';
import { InvalidInputError, NotFoundError, SnapworkerError } from '../errors.js';
import { dirPathFromUris } from '../fsutil/dir-uri.js';
import { errnoCode } from '../fsutil/errno.js';
import { PathFilter } from '../fsutil/path-filter.js';
import { readAhead } from '../fsutil/read-ahead.js';
import { bufferStream, openRegularFile, streamFileExactly } from '../fsutil/read-exact.js';
import { asyncTreeIo, syncTreeIo, type TreeIo } from '../fsutil/tree-io.js';
import { walkTree, type WalkedNode } from '../fsutil/walk-tree.js';
import { nullNotices, type NoticeSink } from './notices.js';
import type { EndpointContext, Source, SourceFactory, SourceOpenOptions, SourceParams } from './source.js';

const MiB = 1024 * 1024;
const EMPTY = Buffer.alloc(0);

/** Tuning of the directory source; every member is optional. */
export interface DirSourceOptions {
  /** Most entries read (or being read) ahead of the archive writer. Default 32. */
  readAheadFiles?: number;
  /** Most file bytes held in read-ahead buffers. Default 8 MiB. */
  readAheadBytes?: number;
  /**
   * Files up to this size are read whole, ahead, into one buffer; bigger ones are streamed when
   * the writer opens them. Default 1 MiB; capped at `readAheadBytes`.
   */
  smallFileBytes?: number;
  /** Chunk size when streaming big files. Default 1 MiB. */
  streamChunkBytes?: number;
  /** `lstat` calls (and subdirectory listings) in flight while listing a directory. Default 16. */
  statConcurrency?: number;
  /**
   * How the walk and the small-file reads call the filesystem: `sync` on the event-loop thread in
   * bursts of at most `burstMs` (tar-like, several times faster for trees of small files on a
   * warm cache or a busy CPU), or `async` through libuv's thread pool (overlapping calls, better
   * for cold caches on disks that like parallel requests, and network filesystems that may hang).
   * Big files are always streamed asynchronously. Default `sync`.
   */
  io?: 'sync' | 'async';
  /** With `io: 'sync'`, the longest stretch of blocking calls before the event loop gets a turn. Default 10 ms. */
  burstMs?: number;
  /** Told about every path left out (special files, paths that vanished during the walk). */
  onWarning?: (message: string) => void;
}

export const DIR_SOURCE_DEFAULTS = {
  readAheadFiles: 32,
  readAheadBytes: 8 * MiB,
  smallFileBytes: 1 * MiB,
  streamChunkBytes: 1 * MiB,
  statConcurrency: 16,
  burstMs: 10,
  io: 'sync' as 'sync' | 'async',
};

type NumericOption = Exclude<keyof typeof DIR_SOURCE_DEFAULTS, 'io'>;

/** Counts of what the last `entries()` walk left out. */
export interface DirSourceSkips {
  /** Sockets, FIFOs, character and block devices. */
  special: number;
  /** Paths listed but gone before they could be stat'ed or read. */
  vanished: number;
}

/** A node the walk selected, with the entry type it becomes. */
interface PlannedEntry {
  node: WalkedNode;
  type: EntryType;
  /** Read whole ahead of the writer (small regular files). */
  readAhead: boolean;
}

/**
 * A local directory tree as `data/<relative path>` entries: directories (before their children),
 * regular files and symlinks (target kept verbatim, never followed), with permission bits, mtime
 * and size, in sorted name order. The root itself is not an entry.
 *
 * Small files are read ahead concurrently into buffers so the writer never waits on one file at a
 * time; big files are streamed. Memory stays within the read-ahead limits plus one directory
 * listing per open level, whatever the size of the tree.
 */
export class DirSource implements Source {
  readonly descriptor: SourceDescriptor;
  /** What the last walk left out; reset when `entries()` starts. */
  readonly skipped: DirSourceSkips = { special: 0, vanished: 0 };
  private readonly filter: PathFilter;
  private readonly options: typeof DIR_SOURCE_DEFAULTS & Pick<DirSourceOptions, 'onWarning'>;
  private readonly io: TreeIo;
  private readonly skipUnreadable: boolean;
  /** Where the running `entries()` walk reports what it leaves out. */
  private notices: NoticeSink = nullNotices;

  /**
   * @param root absolute path of the directory (a symlink to a directory is followed; the caller
   *   has already checked it against the allowed paths).
   * @throws InvalidInputError for bad include/exclude patterns or options.
   */
  constructor(
    readonly root: string,
    uri: string,
    params: SourceParams,
    options: DirSourceOptions = {},
  ) {
    const merged = { ...DIR_SOURCE_DEFAULTS, ...options };
    for (const key of Object.keys(DIR_SOURCE_DEFAULTS).filter((k) => k !== 'io') as NumericOption[]) {
      if (!Number.isSafeInteger(merged[key]) || merged[key] < 1) {
        throw new InvalidInputError(`dir source: option ${key} must be a positive integer, got ${merged[key]}`);
      }
    }
    if (merged.io !== 'sync' && merged.io !== 'async') {
      throw new InvalidInputError(`dir source: option io must be 'sync' or 'async', got ${String(merged.io)}`);
    }
    this.io = merged.io === 'sync' ? syncTreeIo : asyncTreeIo;
    merged.smallFileBytes = Math.min(merged.smallFileBytes, merged.readAheadBytes);
    this.options = merged;
    const include = params.include ?? [];
    const exclude = params.exclude ?? [];
    this.filter = new PathFilter(include, exclude);
    this.skipUnreadable = params.skipUnreadable === true;
    this.descriptor = {
      kind: 'dir',
      uri,
      name: params.name ?? (path.basename(root) || 'root'),
      details: { include, exclude },
    };
  }

  /** Sum of the selected regular files' sizes, from a stat-only walk (no file is opened). */
  async estimateBytes(signal: AbortSignal): Promise<number | undefined> {
    await this.checkRoot();
    let total = 0;
    for await (const node of this.selectedNodes(signal, false)) {
      if (node.stats.isFile()) total += node.stats.size;
    }
    return total;
  }

  async *entries({ signal, notices }: SourceOpenOptions): AsyncGenerator<SourceEntry> {
    this.notices = notices;
    this.skipped.special = 0;
    this.skipped.vanished = 0;
    await this.checkRoot();
    const loaded = readAhead(this.plannedEntries(signal), {
      maxItems: this.options.readAheadFiles,
      maxBytes: this.options.readAheadBytes,
      weigh: (planned) => (planned.readAhead ? planned.node.stats.size : 0),
      load: (planned) => this.load(planned),
      signal,
    });
    for await (const entry of loaded) {
      if (entry !== undefined) yield entry;
    }
  }

  private async checkRoot(): Promise<void> {
    let stats;
    try {
      stats = await stat(this.root);
    } catch (cause) {
      if (errnoCode(cause) === 'ENOENT') throw new NotFoundError(`dir source: ${this.root} does not exist`, { cause });
      throw new SnapworkerError(`dir source: stat ${this.root}: ${(cause as Error).message}`, { cause });
    }
    if (!stats.isDirectory()) throw new InvalidInputError(`dir source: ${this.root} is not a directory`);
  }

  /**
   * The walk's nodes that the include/exclude patterns select. A directory that is not included
   * itself but holds included paths comes out just before the first of them, so directories
   * still precede their children and empty unselected directories are left out.
   */
  private async *selectedNodes(signal: AbortSignal, report: boolean): AsyncGenerator<WalkedNode> {
    const filter = this.filter;
    const walk = walkTree(this.root, {
      statConcurrency: this.options.statConcurrency,
      io: this.io,
      burstMs: this.options.burstMs,
      skip: (relPath) => filter.isExcluded(relPath),
      descend: (node) => filter.isIncluded(node.relPath) || filter.mayContainIncluded(node.relPath),
      onVanished: (relPath) => report && this.warnVanished(relPath),
      // The estimate walks too: it leaves the same directories out, but only the real walk reports.
      onUnlistable: (relPath, err) => (report ? this.leftOutUnreadable(relPath, err) : this.skipUnreadable && unreadableCode(err) !== undefined),
      signal,
    });
    // Directories seen but not yet emitted, outermost first; only ancestors of the current node.
    const pendingDirectories: WalkedNode[] = [];
    for await (const node of walk) {
      while (pendingDirectories.length > 0 && !node.relPath.startsWith(`${pendingDirectories.at(-1)!.relPath}/`)) {
        pendingDirectories.pop();
      }
      if (filter.isIncluded(node.relPath)) {
        yield* pendingDirectories.splice(0);
        yield node;
      } else if (node.stats.isDirectory()) {
        pendingDirectories.push(node);
      }
    }
  }

  private async *plannedEntries(signal: AbortSignal): AsyncGenerator<PlannedEntry> {
    for await (const node of this.selectedNodes(signal, true)) {
      const type = entryType(node);
      if (type === undefined) {
        this.skipped.special += 1;
        this.options.onWarning?.(`dir source: skipped ${node.absPath}: sockets, FIFOs and devices are not captured`);
        this.notices.add({ kind: 'unsupported', path: `data/${node.relPath}`, reason: specialFileKind(node) });
        continue;
      }
      yield { node, type, readAhead: type === 'file' && node.stats.size <= this.options.smallFileBytes };
    }
  }

  /** Builds the entry, reading small files and link targets now; undefined when the path vanished. */
  private async load({ node, type, readAhead: readNow }: PlannedEntry): Promise<SourceEntry | undefined> {
    const { relPath, absPath, stats } = node;
    // One object per entry, built in place: this runs for every node of the tree.
    const entry: SourceEntry = {
      path: `data/${relPath}`,
      type,
      mode: stats.mode & 0o7777,
      mtime: stats.mtime,
      size: type === 'file' ? stats.size : 0,
    };
    try {
      if (type === 'symlink') {
        entry.linkTarget = await readlink(absPath);
      } else if (type === 'file' && readNow) {
        const bytes = stats.size === 0 ? EMPTY : await this.io.readFile(absPath, stats.size);
        entry.bytes = bytes;
        entry.open = () => bufferStream(bytes);
      } else if (type === 'file') {
        // Opened by the writer after it chose to write the entry: find out now whether it can be.
        if (this.skipUnreadable) await (await openRegularFile(absPath)).close();
        const { streamChunkBytes } = this.options;
        entry.open = () => openForStreaming(absPath, stats.size, streamChunkBytes);
      }
      return entry;
    } catch (cause) {
      if (errnoCode(cause) === 'ENOENT') {
        this.warnVanished(relPath);
        return undefined;
      }
      if (this.leftOutUnreadable(relPath, cause)) return undefined;
      if (cause instanceof SnapworkerError) throw cause;
      throw new SnapworkerError(`dir source: read ${absPath}: ${(cause as Error).message}`, { cause });
    }
  }

  private warnVanished(relPath: string): void {
    this.skipped.vanished += 1;
    this.options.onWarning?.(`dir source: skipped ${path.join(this.root, relPath)}: removed while the snapshot ran`);
    this.notices.add({ kind: 'vanished', path: `data/${relPath}`, reason: 'removed while the snapshot ran' });
  }

  /**
   * The one place a read error may be forgiven: with `skipUnreadable`, an entry the worker may
   * not read (or whose device fails) is reported as `unreadable` and left out (true); otherwise,
   * or for any other error, the caller fails the snapshot (false).
   */
  private leftOutUnreadable(relPath: string, cause: unknown): boolean {
    const code = unreadableCode(cause);
    if (!this.skipUnreadable || code === undefined) return false;
    this.notices.add({ kind: 'unreadable', path: `data/${relPath}`, reason: (cause as Error).message });
    return true;
  }
}

async function openForStreaming(absPath: string, size: number, chunkBytes: number): Promise<Readable> {
  try {
    return streamFileExactly(await openRegularFile(absPath), absPath, size, chunkBytes);
  } catch (cause) {
    if (cause instanceof SnapworkerError) throw cause;
    throw new SnapworkerError(`dir source: open ${absPath}: ${(cause as Error).message}`, { cause });
  }
}

/** Errors that mean "this entry cannot be read", as opposed to a broken source or worker. */
const UNREADABLE_CODES: ReadonlySet<string> = new Set(['EACCES', 'EPERM', 'EIO']);

/** The errno code when `cause` (or the error it wraps) is one of UNREADABLE_CODES. */
function unreadableCode(cause: unknown): string | undefined {
  const code = errnoCode(cause) ?? errnoCode((cause as { cause?: unknown } | undefined)?.cause);
  return code !== undefined && UNREADABLE_CODES.has(code) ? code : undefined;
}

function specialFileKind(node: WalkedNode): string {
  const { stats } = node;
  if (stats.isSocket()) return 'socket';
  if (stats.isFIFO()) return 'fifo';
  if (stats.isCharacterDevice()) return 'character device';
  if (stats.isBlockDevice()) return 'block device';
  return 'special file';
}

function entryType(node: WalkedNode): EntryType | undefined {
  if (node.stats.isFile()) return 'file';
  if (node.stats.isDirectory()) return 'directory';
  if (node.stats.isSymbolicLink()) return 'symlink';
  return undefined;
}

/**
 * Builds a `SourceFactory` for `dir:///abs/path` with tuned options (see `DirSourceOptions`).
 *
 * @throws InvalidInputError unless exactly one well-formed `dir:` URI is given;
 *   UnsafePathError (from `context.checkPath`) when the path is outside the allowed roots.
 */
export function createDirSourceFactory(options: DirSourceOptions = {}): SourceFactory {
  return (uris: URL[], params: SourceParams, context: EndpointContext): Source => {
    const root = dirPathFromUris(uris, 'dir source');
    context.checkPath(root);
    return new DirSource(root, uris[0]!.href, params, options);
  };
}

/** The directory source with default tuning: `dir:///abs/path`, exactly one URI. */
export const createDirSource: SourceFactory = createDirSourceFactory();
