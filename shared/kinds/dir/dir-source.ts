import { readlink, stat } from 'node:fs/promises';
import type { BigIntStats } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { EntryVanishedError, type EntryHeader, type EntryType, type FileIdentity, type SourceEntry } from '../../snapshot/entry.js';
import type { UnchangedFiles } from '../../snapshot/unchanged-files.js';
import type { SourceDescriptor } from '../../snapshot/manifest.js';
import { InvalidInputError, NotFoundError, SnapworkerError, throwIfAborted } from '../../errors.js';
import { dirPathFromUris } from './dir-uri.js';
import { decodeName, fsPath, showName } from '../../fsutil/byte-name.js';
import { errnoCode, errorText } from '../../fsutil/errno.js';
import { PathFilter } from '../../fsutil/path-filter.js';
import { readAhead } from '../../fsutil/read-ahead.js';
import { bufferStream, openRegularFile, streamFileSegments, type ListedFile } from '../../fsutil/read-exact.js';
import { findDataSegments, mayHaveHoles } from '../../fsutil/sparse-map.js';
import { readXattrs } from '../../fsutil/xattrs.js';
import { MAX_SPARSE_SEGMENTS, type DataSegment } from '../../snapshot/sparse-segments.js';
import { asyncTreeIo, syncTreeIo, type TreeIo } from '../../fsutil/tree-io.js';
import { Pacer } from '../../fsutil/pacer.js';
import { deviceNumbers } from '../../fsutil/native-fs.js';
import { walkTree, walkTreeSync, type WalkOptions, type WalkedNode } from '../../fsutil/walk-tree.js';
import { nullNotices, type NoticeSink } from '../notices.js';
import type { EndpointContext, Source, SourceFactory, SourceOpenOptions, SourceParams } from '../source.js';
import type { DirSourceParams } from './index.js';
import { lineageNameFrom } from '../lineage-name.js';
import { replacedBytesHint } from '../uri-path.js';

const MiB = 1024 * 1024;
const EMPTY = Buffer.alloc(0);

/** Tuning of the directory source; every member is optional. */
export interface DirSourceOptions {
  /** With `io: 'async'`: most entries read (or being read) ahead of the archive writer. Default 32. */
  readAheadFiles?: number;
  /** With `io: 'async'`: most file bytes held in read-ahead buffers. Default 8 MiB. (With `sync`, one entry is read at a time.) */
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
  /** Told about every path left out (sockets, paths that vanished during the walk), besides the job's notices. */
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
  /** Sockets (no archive format can hold one). */
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
  /** Hard links: the path of the entry that stored the inode first. */
  linkTarget?: string;
  /** Regular files the parent snapshot holds unchanged: neither read ahead nor scanned for holes. */
  unchanged?: boolean;
}

/**
 * A local directory tree as `data/<relative path>` entries: directories (before their children),
 * regular files, symlinks (target kept verbatim, never followed), hard links (a later name of a
 * file already stored: same device and inode), FIFOs and character/block devices, with name
 * bytes, permission bits, nanosecond mtime, size and extended attributes, in sorted name order.
 * Sockets are reported to `notices` as `unsupported`, paths gone mid-walk as `vanished`. The root
 * itself is not an entry.
 *
 * Small files are read ahead concurrently into buffers so the writer never waits on one file at a
 * time; big files are streamed. Files with holes (fewer blocks than their size needs) are
 * scanned with SEEK_DATA/SEEK_HOLE and only their data segments streamed (`entry.sparse`). Memory stays within the read-ahead limits plus one directory
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
  /** Entry paths found gone during this walk, and first names of hard-linked inodes replaced by a later name. */
  private readonly vanishedPaths = new Set<string>();
  private readonly promotedLinks = new Map<string, string>();

  /**
   * @param root absolute path of the directory (a symlink to a directory is followed; the caller
   *   has already checked it against the allowed paths).
   * @throws InvalidInputError for bad include/exclude patterns or options.
   */
  constructor(
    readonly root: string,
    uri: string,
    params: SourceParams & DirSourceParams,
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
      name: params.name ?? lineageNameFrom(path.basename(root), 'root'),
      details: { include, exclude },
    };
  }

  /** Sum of the selected regular files' sizes (each hard-linked inode once), from a stat-only walk (no file is opened). */
  async estimateBytes(signal: AbortSignal): Promise<number | undefined> {
    await this.checkRoot();
    let total = 0;
    const linked = new Set<string>(); // hard-linked inodes, counted once like the archive stores them
    const count = ({ stats }: WalkedNode): void => {
      if (!stats.isFile()) return;
      if (stats.nlink > 1n) {
        const inode = `${stats.dev}:${stats.ino}`;
        if (linked.has(inode)) return;
        linked.add(inode);
      }
      total += Number(stats.size);
    };
    if (this.io === syncTreeIo) {
      const pacer = new Pacer(this.options.burstMs);
      for (const node of this.selectedNodesSync(signal, false)) {
        count(node);
        await pacer.pace();
      }
    } else {
      for await (const node of this.selectedNodes(signal, false)) count(node);
    }
    return total;
  }

  async *entries({ signal, notices, unchanged }: SourceOpenOptions): AsyncGenerator<SourceEntry> {
    this.skipped.special = 0;
    this.skipped.vanished = 0;
    this.notices = notices;
    this.vanishedPaths.clear();
    this.promotedLinks.clear();
    await this.checkRoot();
    if (this.io === syncTreeIo) {
      // Blocking calls need no read-ahead: each entry is loaded when the writer asks for it,
      // without a promise per walk step; the pacer lets timers and the writer's I/O run.
      const pacer = new Pacer(this.options.burstMs);
      for (const planned of this.plannedEntries(this.selectedNodesSync(signal, true))) {
        throwIfAborted(signal);
        const entry = await this.load(await this.checkUnchanged(planned, unchanged));
        const ready = entry?.type === 'hardlink' ? await this.resolveHardLink(entry) : entry;
        if (ready !== undefined) yield ready;
        await pacer.pace();
      }
      return;
    }
    const loaded = readAhead(this.plannedEntriesAsync(signal, unchanged), {
      maxItems: this.options.readAheadFiles,
      maxBytes: this.options.readAheadBytes,
      weigh: (planned) => (planned.readAhead ? Number(planned.node.stats.size) : 0),
      load: (planned) => this.load(planned),
      signal,
    });
    for await (const entry of loaded) {
      // Checked as the writer asks for the entry, so a first name it found gone is known by then.
      const ready = entry?.type === 'hardlink' ? await this.resolveHardLink(entry) : entry;
      if (ready !== undefined) yield ready;
    }
  }

  /**
   * A hard link whose first name vanished before it was stored cannot point there: this name
   * still reaches the data, so it becomes the stored entry (read now, as its own type) and later
   * names of the inode point to it instead.
   */
  private async resolveHardLink(entry: SourceEntry): Promise<SourceEntry | undefined> {
    let target = entry.linkTarget!;
    for (let next = this.promotedLinks.get(target); next !== undefined; next = this.promotedLinks.get(target)) target = next;
    if (!this.vanishedPaths.has(target)) {
      entry.linkTarget = target;
      return entry;
    }
    const relPath = entry.path.slice('data/'.length);
    const absPath = path.join(this.root, relPath);
    let stats: BigIntStats;
    try {
      stats = await this.io.lstat(absPath);
    } catch (cause) {
      if (errnoCode(cause) !== 'ENOENT') throw new SnapworkerError(`dir source: lstat ${showName(absPath)}: ${errorText(cause)}`, { cause });
      this.warnVanished(relPath);
      return undefined;
    }
    const type = entryType(stats);
    const promoted = type && (await this.load({ node: { relPath, absPath, stats }, type, readAhead: false }));
    if (promoted) this.promotedLinks.set(target, promoted.path);
    return promoted;
  }

  private async checkRoot(): Promise<void> {
    let stats;
    try {
      stats = await stat(this.root);
    } catch (cause) {
      if (errnoCode(cause) === 'ENOENT') throw new NotFoundError(`dir source: ${showName(this.root)} does not exist${replacedBytesHint(this.root)}`, { cause });
      throw new SnapworkerError(`dir source: stat ${showName(this.root)}: ${errorText(cause)}`, { cause });
    }
    if (!stats.isDirectory()) throw new InvalidInputError(`dir source: ${showName(this.root)} is not a directory`);
  }

  /** How the walk is told about the include/exclude patterns and what it leaves out. */
  private walkOptions(signal: AbortSignal, report: boolean): WalkOptions {
    const filter = this.filter;
    return {
      skip: (relPath) => filter.isExcluded(relPath),
      descend: (node) => filter.isIncluded(node.relPath) || filter.mayContainIncluded(node.relPath),
      onVanished: (relPath) => report && this.warnVanished(relPath),
      // The estimate walks too: it leaves the same directories out, but only the real walk reports.
      onUnlistable: (relPath, err) => (report ? this.leftOutUnreadable(relPath, err) : this.skipUnreadable && unreadableCode(err) !== undefined),
      signal,
    };
  }

  /**
   * The walk's nodes that the include/exclude patterns select. A directory that is not included
   * itself but holds included paths comes out just before the first of them, so directories
   * still precede their children and empty unselected directories are left out.
   */
  private async *selectedNodes(signal: AbortSignal, report: boolean): AsyncGenerator<WalkedNode> {
    const walk = walkTree(this.root, { ...this.walkOptions(signal, report), statConcurrency: this.options.statConcurrency, io: this.io, burstMs: this.options.burstMs });
    const selection = new Selection(this.filter, report);
    for await (const node of walk) {
      if (selection.take(node)) {
        if (selection.pending.length > 0) yield* selection.pending.splice(0);
        yield node;
      }
    }
    selection.reportUnmatched(this.notices);
  }

  /** `selectedNodes` of a synchronous walk; the caller gives the event loop its turns. */
  private *selectedNodesSync(signal: AbortSignal, report: boolean): Generator<WalkedNode> {
    const selection = new Selection(this.filter, report);
    for (const node of walkTreeSync(this.root, syncTreeIo.calls, this.walkOptions(signal, report))) {
      if (selection.take(node)) {
        if (selection.pending.length > 0) yield* selection.pending.splice(0);
        yield node;
      }
    }
    selection.reportUnmatched(this.notices);
  }

  private async *plannedEntriesAsync(signal: AbortSignal, unchanged: UnchangedFiles | undefined): AsyncGenerator<PlannedEntry> {
    const planner = this.planner();
    for await (const node of this.selectedNodes(signal, true)) {
      const planned = planner(node);
      if (planned) yield await this.checkUnchanged(planned, unchanged);
    }
  }

  /**
   * A file the parent snapshot holds unchanged (size, mtime, ctime, inode) is neither read ahead
   * nor scanned for holes: the format reuses the parent's content (docs/chunked-format.md).
   */
  private async checkUnchanged(planned: PlannedEntry, unchanged: UnchangedFiles | undefined): Promise<PlannedEntry> {
    if (unchanged === undefined || planned.type !== 'file' || !(await unchanged.isUnchanged(fileHeader(planned.node)))) return planned;
    return { ...planned, readAhead: false, unchanged: true };
  }

  private *plannedEntries(nodes: Iterable<WalkedNode>): Generator<PlannedEntry> {
    const planner = this.planner();
    for (const node of nodes) {
      const planned = planner(node);
      if (planned) yield planned;
    }
  }

  /** Plans one walk's nodes in order: entry type, hard links to the first name of an inode, read ahead or streamed; undefined for a socket (reported). */
  private planner(): (node: WalkedNode) => PlannedEntry | undefined {
    // First path of every inode seen with more links than one: later names become hard links.
    // Grows with the number of multiply-linked inodes only.
    const firstNames = new Map<string, string>();
    const smallFileBytes = BigInt(this.options.smallFileBytes);
    return (node) => {
      const { stats } = node;
      const type = entryType(stats);
      if (type === undefined) {
        this.skipped.special += 1;
        this.notices.add({ kind: 'unsupported', path: showName(`data/${node.relPath}`), reason: 'socket' });
        this.options.onWarning?.(`dir source: skipped ${showName(node.absPath)}: a socket cannot be stored`);
        return undefined;
      }
      if (type !== 'directory' && stats.nlink > 1n) {
        const inode = `${stats.dev}:${stats.ino}`;
        const first = firstNames.get(inode);
        if (first !== undefined) return { node, type: 'hardlink', readAhead: false, linkTarget: first };
        firstNames.set(inode, `data/${node.relPath}`);
      }
      // Files that may have holes are streamed, so only their data segments are read.
      const readAhead = type === 'file' && stats.size <= smallFileBytes && !mayHaveHoles(stats);
      return { node, type, readAhead };
    };
  }

  /** Builds the entry, reading small files and link targets now; undefined when the path vanished. */
  private async load({ node, type, readAhead: readNow, linkTarget, unchanged }: PlannedEntry): Promise<SourceEntry | undefined> {
    const { relPath, absPath, stats } = node;
    const size = type === 'file' ? Number(stats.size) : 0;
    // One object per entry, built in place: this runs for every node of the tree.
    const entry: SourceEntry = {
      path: `data/${relPath}`,
      type,
      mode: Number(stats.mode & 0o7777n),
      mtime: new Date(Number(stats.mtimeMs)),
      mtimeNs: stats.mtimeNs,
      size,
    };
    if (type === 'file') entry.identity = identityOf(stats);
    try {
      // A hard link's attributes are its inode's, stored with the first name.
      const xattrs =
        type === 'hardlink'
          ? undefined
          : readXattrs(fsPath(absPath), (name, reason) => this.notices.add({ kind: 'unsupported', path: showName(`data/${relPath}`), reason: `${name}: ${reason}` }));
      if (xattrs) entry.xattrs = xattrs;
      if (type === 'hardlink') {
        entry.linkTarget = linkTarget;
      } else if (type === 'symlink') {
        entry.linkTarget = decodeName(await readlink(fsPath(absPath), { encoding: 'buffer' }));
      } else if (type === 'chardev' || type === 'blockdev') {
        const { major, minor } = deviceNumbers(stats.rdev);
        entry.devMajor = major;
        entry.devMinor = minor;
      } else if (type === 'file' && readNow) {
        const { bytes, grew } = size === 0 ? { bytes: EMPTY, grew: false } : await this.io.readFile(absPath, size);
        if (grew) this.warnChanged(relPath, `changed while read: grew past the listed ${size} bytes`);
        entry.bytes = bytes;
        entry.open = () => bufferStream(bytes);
      } else if (type === 'file' && unchanged) {
        // The format reuses the parent's content and does not open it; if it does, it gets all bytes.
        const listed = { size, mtimeNs: stats.mtimeNs, onChanged: (reason: string) => this.warnChanged(relPath, reason) };
        entry.open = () => this.openForStreaming(relPath, absPath, [{ offset: 0, length: size }], this.options.streamChunkBytes, listed);
      } else if (type === 'file') {
        // Opened by the writer after it chose to write the entry: find out now whether it can be.
        if (this.skipUnreadable) await (await openRegularFile(absPath)).close();
        const { streamChunkBytes } = this.options;
        const sparse = mayHaveHoles(stats) ? findDataSegments(fsPath(absPath), size, MAX_SPARSE_SEGMENTS) : undefined;
        if (sparse) entry.sparse = sparse;
        const listed = { size, mtimeNs: stats.mtimeNs, onChanged: (reason: string) => this.warnChanged(relPath, reason) };
        entry.open = () => this.openForStreaming(relPath, absPath, sparse ?? [{ offset: 0, length: size }], streamChunkBytes, listed);
      }
      return entry;
    } catch (cause) {
      if (errnoCode(cause) === 'ENOENT') {
        this.warnVanished(relPath);
        return undefined;
      }
      if (this.leftOutUnreadable(relPath, cause)) return undefined;
      if (cause instanceof SnapworkerError) throw cause;
      throw new SnapworkerError(`dir source: read ${showName(absPath)}: ${errorText(cause)}`, { cause });
    }
  }

  /**
   * A big file's stream of its bytes in `segments` (all of it, or a sparse file's data segments),
   * opened when the writer reaches it; a change while it is read is reported through `listed`.
   * @throws EntryVanishedError (reported as `vanished` first) when the file is gone by then.
   */
  private async openForStreaming(relPath: string, absPath: string, segments: readonly DataSegment[], chunkBytes: number, listed: ListedFile): Promise<Readable> {
    try {
      return streamFileSegments(await openRegularFile(absPath), absPath, segments, chunkBytes, listed);
    } catch (cause) {
      if (errnoCode(cause) === 'ENOENT') {
        this.warnVanished(relPath);
        throw new EntryVanishedError(`dir source: ${showName(absPath)} was removed before it was read`, { cause });
      }
      if (cause instanceof SnapworkerError) throw cause;
      throw new SnapworkerError(`dir source: open ${showName(absPath)}: ${errorText(cause)}`, { cause });
    }
  }

  private warnVanished(relPath: string): void {
    this.skipped.vanished += 1;
    this.vanishedPaths.add(`data/${relPath}`);
    this.notices.add({ kind: 'vanished', path: showName(`data/${relPath}`), reason: 'removed while the snapshot ran' });
    this.options.onWarning?.(`dir source: skipped ${showName(path.join(this.root, relPath))}: removed while the snapshot ran`);
  }

  /** A file written to while it was read: stored as read, named as `changed`. */
  private warnChanged(relPath: string, reason: string): void {
    this.notices.add({ kind: 'changed', path: showName(`data/${relPath}`), reason });
    this.options.onWarning?.(`dir source: ${showName(path.join(this.root, relPath))}: ${reason}`);
  }

  /**
   * The one place a read error may be forgiven: with `skipUnreadable`, an entry the worker may
   * not read (or whose device fails) is reported as `unreadable` and left out (true); otherwise,
   * or for any other error, the caller fails the snapshot (false).
   */
  private leftOutUnreadable(relPath: string, cause: unknown): boolean {
    const code = unreadableCode(cause);
    if (!this.skipUnreadable || code === undefined) return false;
    this.notices.add({ kind: 'unreadable', path: showName(`data/${relPath}`), reason: errorText(cause) });
    return true;
  }
}


/**
 * The include selection over one walk, node by node: `take` says whether the node is selected;
 * the not-included directories above it that must come out first (so directories precede their
 * children) are then waiting in `pending`, outermost first, for the caller to emit and clear.
 */
class Selection {
  /** Directories seen but not yet emitted, outermost first; only ancestors of the current node. */
  readonly pending: WalkedNode[] = [];
  private readonly includes: { see(relPath: string): void; unmatched(): string[] } | undefined;

  constructor(
    private readonly filter: PathFilter,
    report: boolean,
  ) {
    this.includes = report ? filter.trackIncludes() : undefined;
  }

  take(node: WalkedNode): boolean {
    const { pending } = this;
    while (pending.length > 0 && !node.relPath.startsWith(`${pending[pending.length - 1]!.relPath}/`)) pending.pop();
    if (this.filter.isIncluded(node.relPath)) {
      this.includes?.see(node.relPath);
      return true;
    }
    if (node.stats.isDirectory()) pending.push(node);
    return false;
  }

  /** After the walk: include patterns that matched nothing. restic's way: not an error (the tree may simply lack those paths today), but never silent. */
  reportUnmatched(notices: NoticeSink): void {
    for (const pattern of this.includes?.unmatched() ?? []) {
      notices.add({ kind: 'unmatched', path: `include pattern ${JSON.stringify(pattern)}`, reason: 'no path under the source root matches it' });
    }
  }
}

/** Errors that mean "this entry cannot be read", as opposed to a broken source or worker. */
const UNREADABLE_CODES: ReadonlySet<string> = new Set(['EACCES', 'EPERM', 'EIO']);

/** The errno code when `cause` (or the error it wraps) is one of UNREADABLE_CODES. */
function unreadableCode(cause: unknown): string | undefined {
  const code = errnoCode(cause) ?? errnoCode((cause as { cause?: unknown } | undefined)?.cause);
  return code !== undefined && UNREADABLE_CODES.has(code) ? code : undefined;
}

/** What an incremental snapshot matches a file on (see FileIdentity). */
function identityOf(stats: BigIntStats): FileIdentity {
  return { ctimeNs: stats.ctimeNs, inode: stats.ino, device: stats.dev };
}

/** The header and identity of a listed regular file, as its entry will carry them. */
function fileHeader({ relPath, stats }: WalkedNode): EntryHeader & { identity: FileIdentity } {
  return {
    path: `data/${relPath}`,
    type: 'file',
    mode: Number(stats.mode & 0o7777n),
    mtime: new Date(Number(stats.mtimeMs)),
    mtimeNs: stats.mtimeNs,
    size: Number(stats.size),
    identity: identityOf(stats),
  };
}

/** The entry type of what `lstat` found; undefined for a socket. */
function entryType(stats: BigIntStats): EntryType | undefined {
  if (stats.isFile()) return 'file';
  if (stats.isDirectory()) return 'directory';
  if (stats.isSymbolicLink()) return 'symlink';
  if (stats.isFIFO()) return 'fifo';
  if (stats.isCharacterDevice()) return 'chardev';
  if (stats.isBlockDevice()) return 'blockdev';
  return undefined;
}

/**
 * Builds a `SourceFactory` for `dir:///abs/path` with tuned options (see `DirSourceOptions`).
 *
 * @throws InvalidInputError unless exactly one well-formed `dir:` URI is given;
 *   UnsafePathError (from `context.checkPath`) when the path is outside the allowed roots.
 */
export function createDirSourceFactory(options: DirSourceOptions = {}): SourceFactory<DirSourceParams> {
  return (uris: URL[], params: SourceParams & DirSourceParams, context: EndpointContext): Source => {
    const root = dirPathFromUris(uris, 'source');
    context.checkPath(root);
    return new DirSource(root, uris[0]!.href, params, options);
  };
}

/** The directory source with default tuning: `dir:///abs/path`, exactly one URI. */
export const createDirSource: SourceFactory<DirSourceParams> = createDirSourceFactory();
