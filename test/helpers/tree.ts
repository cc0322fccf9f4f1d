/**
 * Build and compare file trees in tests.
 *
 *   await makeTree(root, {
 *     'a.txt': 'hello',
 *     bin: dir({ run: file('#!/bin/sh\n', { mode: 0o755 }) }, { mtime: new Date('2001-01-01') }),
 *     link: symlink('a.txt'),
 *   });
 *   await assertTreesEqual(root, restored);
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, lstat, lutimes, mkdir, open, readdir, readlink, symlink as createSymlink, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';

export interface FileNode {
  type: 'file';
  content: string | Buffer;
  mode?: number;
  mtime?: Date;
}
export interface DirNode {
  type: 'dir';
  children: TreeSpec;
  mode?: number;
  mtime?: Date;
}
export interface SymlinkNode {
  type: 'symlink';
  target: string;
  mtime?: Date;
}
/** A plain string or Buffer is a file with that content and default mode. */
export type TreeNode = string | Buffer | FileNode | DirNode | SymlinkNode;
export interface TreeSpec {
  [name: string]: TreeNode;
}

export function file(content: string | Buffer, meta: { mode?: number; mtime?: Date } = {}): FileNode {
  return { type: 'file', content, ...meta };
}
export function dir(children: TreeSpec = {}, meta: { mode?: number; mtime?: Date } = {}): DirNode {
  return { type: 'dir', children, ...meta };
}
export function symlink(target: string, meta: { mtime?: Date } = {}): SymlinkNode {
  return { type: 'symlink', target, ...meta };
}

/**
 * Creates `spec` under `root` (created if missing). Modes and mtimes are applied after content,
 * directories after their children, so the given values are what ends up on disk.
 */
export async function makeTree(root: string, spec: TreeSpec): Promise<void> {
  await mkdir(root, { recursive: true });
  for (const [name, node] of Object.entries(spec)) await makeNode(path.join(root, name), node);
}

async function makeNode(absPath: string, node: TreeNode): Promise<void> {
  if (typeof node === 'string' || Buffer.isBuffer(node)) node = file(node);
  switch (node.type) {
    case 'file':
      await writeFile(absPath, node.content);
      if (node.mode !== undefined) await chmod(absPath, node.mode);
      if (node.mtime) await utimes(absPath, node.mtime, node.mtime);
      break;
    case 'symlink':
      await createSymlink(node.target, absPath);
      if (node.mtime) await lutimes(absPath, node.mtime, node.mtime);
      break;
    case 'dir':
      await mkdir(absPath);
      await makeTree(absPath, node.children);
      if (node.mode !== undefined) await chmod(absPath, node.mode);
      if (node.mtime) await utimes(absPath, node.mtime, node.mtime);
      break;
  }
}

export interface CompareOptions {
  /** Compare mtimes at this resolution (1000 for formats that keep whole seconds). Default 1 ms. */
  mtimeResolutionMs?: number;
}

interface NodeFacts {
  type: 'file' | 'dir' | 'symlink' | 'other';
  mode?: number;
  size?: number;
  sha256?: string;
  linkTarget?: string;
  mtime: number;
}

/**
 * Asserts that the trees below `a` and `b` are the same: the same relative paths, and for each
 * the type, permission bits (not for symlinks, whose mode Linux fixes), content (by SHA-256,
 * streamed, so big files are fine), link target and mtime of files, symlinks AND directories.
 * The roots themselves are not compared. The failure names the first differing path.
 */
export async function assertTreesEqual(a: string, b: string, options: CompareOptions = {}): Promise<void> {
  const resolution = options.mtimeResolutionMs ?? 1;
  const [left, right] = await Promise.all([describeTree(a, resolution), describeTree(b, resolution)]);
  assert.deepEqual([...right.keys()], [...left.keys()], `trees ${a} and ${b} hold different paths`);
  for (const [relPath, facts] of left) {
    assert.deepEqual(right.get(relPath), facts, `trees differ at ${relPath}`);
  }
}

/** Every path under `root` (sorted, depth first) with the facts compared. */
export async function describeTree(root: string, mtimeResolutionMs = 1): Promise<Map<string, NodeFacts>> {
  const facts = new Map<string, NodeFacts>();
  const visit = async (relDir: string): Promise<void> => {
    const names = (await readdir(path.join(root, relDir))).sort();
    for (const name of names) {
      const relPath = relDir === '' ? name : `${relDir}/${name}`;
      const absPath = path.join(root, relPath);
      const stats = await lstat(absPath);
      // Node hands mtimes out as Dates rounded to the millisecond; compare at that precision, then
      // truncate to the resolution (formats keeping whole seconds truncate too).
      const mtime = Math.floor(Math.round(stats.mtimeMs) / mtimeResolutionMs);
      if (stats.isSymbolicLink()) {
        facts.set(relPath, { type: 'symlink', linkTarget: await readlink(absPath), mtime });
      } else if (stats.isFile()) {
        facts.set(relPath, { type: 'file', mode: stats.mode & 0o7777, size: stats.size, sha256: await sha256File(absPath), mtime });
      } else if (stats.isDirectory()) {
        facts.set(relPath, { type: 'dir', mode: stats.mode & 0o7777, mtime });
        await visit(relPath);
      } else {
        facts.set(relPath, { type: 'other', mode: stats.mode & 0o7777, mtime });
      }
    }
  };
  await visit('');
  return facts;
}

/** Hex SHA-256 of a file, streamed. */
export async function sha256File(absPath: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(absPath, { highWaterMark: 1024 * 1024 }), hash);
  return hash.digest('hex');
}

/** A file of incompressible bytes, written in 4 MiB chunks so the test never holds it in memory. */
export async function writeRandomFile(filePath: string, bytes: number): Promise<void> {
  const handle = await open(filePath, 'w');
  try {
    for (let written = 0; written < bytes; written += 4 << 20) await handle.write(randomBytes(Math.min(4 << 20, bytes - written)));
  } finally {
    await handle.close();
  }
}
