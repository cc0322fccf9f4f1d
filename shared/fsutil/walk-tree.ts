import type { Stats } from 'node:fs';
import { SnapworkerError, throwIfAborted } from '../errors.js';
import { errnoCode } from './errno.js';
import { mapOrdered } from './map-ordered.js';
import { Pacer } from './pacer.js';
import { asyncTreeIo, type TreeIo } from './tree-io.js';

/** One thing found under the walked root. */
export interface WalkedNode {
  /** POSIX path relative to the root, e.g. `etc/app.conf`; never empty. */
  relPath: string;
  absPath: string;
  /** `lstat` result: symlinks are reported, never followed. */
  stats: Stats;
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
    if (errnoCode(err) === 'ENOENT') {
      options.onVanished?.(relPath);
      return undefined;
    }
    throw new SnapworkerError(`walk: lstat ${absPath}: ${(err as Error).message}`, { cause: err });
  }
  if (node.stats.isDirectory() && (options.descend?.(node) ?? true)) {
    node.listing = listDirectory(absPath, relPath, options);
    // Awaited when the walk reaches the directory; an early failure must not count as unhandled.
    node.listing.catch(() => {});
  }
  return node;
}

/** The directory's names, sorted; undefined when a subdirectory vanished after it was listed. */
async function listDirectory(absDir: string, relDir: string, options: ResolvedOptions): Promise<string[] | undefined> {
  try {
    return (await options.io.readdir(absDir)).sort();
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' && relDir !== '') {
      options.onVanished?.(relDir);
      return undefined;
    }
    if (relDir !== '' && options.onUnlistable?.(relDir, err)) return undefined;
    throw new SnapworkerError(`walk: list ${absDir}: ${(err as Error).message}`, { cause: err });
  }
}
