import type { Stats } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import path from 'node:path';
import { SnapworkerError, throwIfAborted } from '../errors.js';
import { errnoCode } from './errno.js';
import { mapOrdered } from './map-ordered.js';

/** One thing found under the walked root. */
export interface WalkedNode {
  /** POSIX path relative to the root, e.g. `etc/app.conf`; never empty. */
  relPath: string;
  absPath: string;
  /** `lstat` result: symlinks are reported, never followed. */
  stats: Stats;
}

export interface WalkOptions {
  /** `lstat` calls in flight within one directory listing. Default 16. */
  statConcurrency?: number;
  /** Leave a child out (and, for a directory, its subtree) before it is even stat'ed. */
  skip?: (relPath: string) => boolean;
  /** Whether to list a directory that was yielded. Default: always. */
  descend?: (node: WalkedNode) => boolean;
  /** Called for a child that vanished between the listing and its `lstat`; it is left out. */
  onVanished?: (relPath: string) => void;
  signal?: AbortSignal;
}

/**
 * Walks the tree under `root` depth first, yielding every node (the root excepted) before its
 * children, children sorted by name (JavaScript string order, i.e. UTF-16 code units), so the
 * same tree always comes out in the same order. Memory holds one sorted listing per open
 * directory level and at most `statConcurrency` stat results ahead; never the whole tree.
 *
 * Errors other than a vanished child (a directory that cannot be listed, EACCES, EIO) end the walk
 * and carry the path that failed.
 */
export async function* walkTree(root: string, options: WalkOptions = {}): AsyncGenerator<WalkedNode> {
  yield* walkDirectory(root, '', { statConcurrency: 16, ...options });
}

async function* walkDirectory(
  absDir: string,
  relDir: string,
  options: WalkOptions & { statConcurrency: number },
): AsyncGenerator<WalkedNode> {
  throwIfAborted(options.signal);
  const names = await listDirectory(absDir, relDir, options);
  if (names === undefined) return;
  names.sort();
  const children = names.map((name) => (relDir === '' ? name : `${relDir}/${name}`)).filter((rel) => !options.skip?.(rel));
  const statted = mapOrdered(children, options.statConcurrency, async (relPath) => {
    const absPath = path.join(absDir, path.posix.basename(relPath));
    try {
      return { relPath, absPath, stats: await lstat(absPath) };
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') {
        options.onVanished?.(relPath);
        return undefined;
      }
      throw new SnapworkerError(`walk: lstat ${absPath}: ${(err as Error).message}`, { cause: err });
    }
  });
  for await (const node of statted) {
    if (node === undefined) continue;
    yield node;
    if (node.stats.isDirectory() && (options.descend?.(node) ?? true)) {
      yield* walkDirectory(node.absPath, node.relPath, options);
    }
  }
}

async function listDirectory(absDir: string, relDir: string, options: WalkOptions): Promise<string[] | undefined> {
  try {
    return await readdir(absDir);
  } catch (err) {
    // A subdirectory removed after it was listed is treated like any vanished child.
    if (errnoCode(err) === 'ENOENT' && relDir !== '') {
      options.onVanished?.(relDir);
      return undefined;
    }
    throw new SnapworkerError(`walk: list ${absDir}: ${(err as Error).message}`, { cause: err });
  }
}
