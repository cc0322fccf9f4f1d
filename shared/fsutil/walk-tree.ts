import type { BigIntStats } from 'node:fs';
import { SnapworkerError, throwIfAborted } from '../errors.js';
import { showName } from './byte-name.js';
import { errnoCode, errorText } from './errno.js';
import { mapOrdered } from './map-ordered.js';
import { Pacer } from './pacer.js';
import { asyncTreeIo, type SyncTreeCalls, type TreeIo } from './tree-io.js';

/** One thing found under the walked root. */
export interface WalkedNode {
  /** POSIX path relative to the root, e.g. `etc/app.conf`; never empty. Lossless form of byte-name.ts. */
  relPath: string;
  /** Same form; pass it to fs calls through `fsPath`. */
  absPath: string;
  /** `lstat` result (bigint: nanosecond times): symlinks are reported, never followed. */
  stats: BigIntStats;
}

export interface WalkOptions {
  /**
   * `lstat` calls in flight within one directory listing; as many subdirectory listings are
   * read ahead, so the walk does not wait for one `readdir` per directory in turn. Default 16.
   */
  statConcurrency?: number;
  /** Leave a child out (and, for a directory, its subtree) before it is even stat'ed. */
  skip?: (relPath: string) => boolean;
  /**
   * Whether to list a directory (called as soon as it is stat'ed, possibly before earlier
   * nodes were consumed, so it must depend on the node alone). Default: always.
   */
  descend?: (node: WalkedNode) => boolean;
  /** Called for a child that vanished between the listing and its `lstat`; it is left out. */
  onVanished?: (relPath: string) => void;
  /**
   * Called when a directory below the root cannot be listed (EACCES, EIO, ...): return true to
   * keep the directory as an empty one and go on, false to fail the walk. Default: fail.
   */
  onUnlistable?: (relPath: string, err: unknown) => boolean;
  /** How the calls are made. Default `asyncTreeIo`. */
  io?: TreeIo;
  /** With synchronous `io`, the longest stretch of blocking calls before the event loop gets a turn. Default 10 ms. */
  burstMs?: number;
  signal?: AbortSignal;
}

type ResolvedOptions = WalkOptions & { statConcurrency: number; io: TreeIo; pacer: Pacer | undefined };

/** A stat'ed child, with its own listing already under way when it is a directory to descend into. */
interface PendingNode extends WalkedNode {
  listing?: Promise<string[] | undefined>;
}

/**
 * Walks the tree under `root` depth first, yielding every node (the root excepted) before its
 * children, children sorted by name (JavaScript string order, i.e. UTF-16 code units), so the
 * same tree always comes out in the same order. Memory holds, per open directory level, one
 * sorted listing plus at most `statConcurrency` stat results and read-ahead listings of
 * subdirectories; never the whole tree.
 *
 * Errors other than a vanished child (a directory that cannot be listed, EACCES, EIO) end the walk
 * and carry the path that failed.
 */
export async function* walkTree(root: string, options: WalkOptions = {}): AsyncGenerator<WalkedNode> {
  const io = options.io ?? asyncTreeIo;
  const pacer = io.kind === 'sync' ? new Pacer(options.burstMs ?? 10) : undefined;
  const resolved: ResolvedOptions = { statConcurrency: 16, ...options, io, pacer };
  yield* walkDirectory(root, '', listDirectory(root, '', resolved), resolved);
}

async function* walkDirectory(
  absDir: string,
  relDir: string,
  listing: Promise<string[] | undefined>,
  options: ResolvedOptions,
): AsyncGenerator<WalkedNode> {
  throwIfAborted(options.signal);
  const names = await listing;
  if (names === undefined) return;
  // Plain concatenation: names never hold a '/', and path.join per child shows in profiles.
  const absPrefix = absDir.endsWith('/') ? absDir : `${absDir}/`;
  const relPrefix = relDir === '' ? '' : `${relDir}/`;
  const children = names.map((name) => ({ relPath: relPrefix + name, absPath: absPrefix + name })).filter((c) => !options.skip?.(c.relPath));
  const statted = mapOrdered(children, options.statConcurrency, (child) => statChild(child.absPath, child.relPath, options));
  for await (const node of statted) {
    if (node === undefined) continue;
    const { listing: childListing, ...walked } = node;
    yield walked;
    await options.pacer?.pace();
    if (childListing) yield* walkDirectory(node.absPath, node.relPath, childListing, options);
  }
}

async function statChild(absPath: string, relPath: string, options: ResolvedOptions): Promise<PendingNode | undefined> {
  let node: PendingNode;
  try {
    node = { relPath, absPath, stats: await options.io.lstat(absPath) };
  } catch (err) {
    return statFailed(err, absPath, relPath, options);
  }
  if (node.stats.isDirectory() && (options.descend?.(node) ?? true)) {
    node.listing = listDirectory(absPath, relPath, options);
    // Awaited when the walk reaches the directory; an early failure must not count as unhandled.
    node.listing.catch(() => {});
  }
  return node;
}

/** A child that vanished is reported and left out (undefined); any other lstat error ends the walk. */
function statFailed(err: unknown, absPath: string, relPath: string, options: WalkOptions): undefined {
  if (errnoCode(err) === 'ENOENT') {
    options.onVanished?.(relPath);
    return undefined;
  }
  throw new SnapworkerError(`walk: lstat ${showName(absPath)}: ${errorText(err)}`, { cause: err });
}

/** The directory's names, sorted; undefined when a subdirectory vanished after it was listed. */
async function listDirectory(absDir: string, relDir: string, options: ResolvedOptions): Promise<string[] | undefined> {
  try {
    return (await options.io.readdir(absDir)).sort();
  } catch (err) {
    return listFailed(err, absDir, relDir, options);
  }
}

/** A subdirectory that vanished, or that `onUnlistable` forgives, lists as nothing (undefined); otherwise the walk fails. */
function listFailed(err: unknown, absDir: string, relDir: string, options: WalkOptions): undefined {
  if (errnoCode(err) === 'ENOENT' && relDir !== '') {
    options.onVanished?.(relDir);
    return undefined;
  }
  if (relDir !== '' && options.onUnlistable?.(relDir, err)) return undefined;
  throw new SnapworkerError(`walk: list ${showName(absDir)}: ${errorText(err)}`, { cause: err });
}

/** One open directory of the synchronous walk: its sorted names and the next one to visit. */
interface OpenDirectory {
  absPrefix: string;
  relPrefix: string;
  names: string[];
  next: number;
}

/**
 * The same walk as `walkTree` (same order, same options, same errors), made with blocking calls
 * on the calling thread and no promise per node: for trees of small files on a warm cache this
 * is where a snapshot's per-entry time goes (tar walks this way too). The consumer keeps the
 * event loop responsive by giving it a turn between nodes now and then (see pacer.ts); the
 * signal is checked per directory. A directory is listed when the walk reaches it, after its
 * node was consumed. Memory holds one sorted listing per open directory level.
 */
export function* walkTreeSync(root: string, calls: SyncTreeCalls, options: Omit<WalkOptions, 'io' | 'statConcurrency' | 'burstMs'> = {}): Generator<WalkedNode> {
  const open: OpenDirectory[] = [];
  const enter = (absDir: string, relDir: string): void => {
    throwIfAborted(options.signal);
    let names: string[];
    try {
      names = calls.readdir(absDir).sort();
    } catch (err) {
      listFailed(err, absDir, relDir, options);
      return;
    }
    // Plain concatenation: names never hold a '/', and path.join per child shows in profiles.
    open.push({ absPrefix: absDir.endsWith('/') ? absDir : `${absDir}/`, relPrefix: relDir === '' ? '' : `${relDir}/`, names, next: 0 });
  };
  enter(root, '');
  while (open.length > 0) {
    const dir = open[open.length - 1]!;
    if (dir.next === dir.names.length) {
      open.pop();
      continue;
    }
    const name = dir.names[dir.next]!;
    dir.next += 1;
    const relPath = dir.relPrefix + name;
    if (options.skip?.(relPath)) continue;
    const absPath = dir.absPrefix + name;
    let stats: BigIntStats;
    try {
      stats = calls.lstat(absPath);
    } catch (err) {
      statFailed(err, absPath, relPath, options);
      continue;
    }
    const node: WalkedNode = { relPath, absPath, stats };
    yield node;
    if (stats.isDirectory() && (options.descend?.(node) ?? true)) enter(absPath, relPath);
  }
}
