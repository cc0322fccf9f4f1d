import { z } from 'zod';
import { IntegrityError } from '../../errors.js';
import type { EntryHeader, EntryType, FileIdentity } from '../../snapshot/entry.js';
import { MAX_SPARSE_SEGMENTS } from '../../snapshot/sparse-segments.js';

/*
 * Tree objects of the chunked format (docs/chunked-format.md, "Trees"): one per directory, stored
 * as a `tree` blob, holding that directory's entries in the order the source yielded them (sorted
 * by name for directories). Canonical JSON: the same directory content gives the same bytes, so
 * the same blob id, and an unchanged subtree is stored once across every snapshot.
 */

/** Tree objects this version writes and reads. */
export const TREE_VERSION = 1;

const hex64 = z.string().regex(/^[0-9a-f]{64}$/);
const decimal = z.string().regex(/^-?\d{1,20}$/);

const nodeSchema = z.strictObject({
  /** One path component (the lossless string form of its bytes, see fsutil/byte-name.ts). */
  name: z.string().min(1).max(4096).refine((name) => !name.includes('/') && name !== '.' && name !== '..', 'not a single path component'),
  /** An entry type, or `implied` for a directory the snapshot holds entries under but no entry of its own (`data/`). */
  type: z.enum(['file', 'directory', 'symlink', 'hardlink', 'fifo', 'chardev', 'blockdev', 'implied']),
  mode: z.number().int().min(0).max(0o7777),
  /** Nanoseconds since the epoch, decimal (beyond 2^53). */
  mtimeNs: decimal,
  size: z.number().int().nonnegative(),
  linkTarget: z.string().min(1).max(16384).optional(),
  /** Sparse files: data segments as `[offset, length]`. */
  sparse: z.array(z.tuple([z.number().int().nonnegative(), z.number().int().positive()])).max(MAX_SPARSE_SEGMENTS).optional(),
  /** Extended attributes, value in base64. */
  xattrs: z.array(z.strictObject({ name: z.string().min(1).max(255), value: z.string() })).optional(),
  devMajor: z.number().int().nonnegative().optional(),
  devMinor: z.number().int().nonnegative().optional(),
  /** Files: the ids of the `data` blobs that hold the stored bytes, in order. */
  chunks: z.array(hex64).optional(),
  /** Files: hex SHA-256 of the whole logical content (holes as zeros), as `sha256sum` prints it. */
  sha256: hex64.optional(),
  /** Files: what incremental snapshots match on (decimal; absent when the source has no such facts). */
  ctimeNs: decimal.optional(),
  inode: decimal.optional(),
  device: decimal.optional(),
  /** Directories (also implied ones): the id of the subtree's `tree` blob. */
  tree: hex64.optional(),
});

const treeSchema = z.strictObject({ v: z.literal(TREE_VERSION), nodes: z.array(nodeSchema) });

/** One entry of a tree object, as stored. */
export type TreeNode = z.infer<typeof nodeSchema>;

/**
 * The bytes of a tree object. Keys in one fixed order (the order `nodeFrom` builds them), no
 * whitespace, so equal directories give equal bytes.
 */
export function encodeTree(nodes: readonly TreeNode[]): Buffer {
  return Buffer.from(JSON.stringify({ v: TREE_VERSION, nodes }));
}

/**
 * Parses a tree object loaded from the repository (untrusted): shape, names unique within it,
 * files with chunks and a digest, directories with a subtree.
 * @throws IntegrityError naming `where` and the first problem.
 */
export function decodeTree(bytes: Buffer, where: string): TreeNode[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new IntegrityError(`chunked: ${where}: tree is not JSON`, { cause: err });
  }
  const result = treeSchema.safeParse(parsed);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new IntegrityError(`chunked: ${where}: invalid tree: ${issue?.path.join('.')}: ${issue?.message}`);
  }
  const names = new Set<string>();
  for (const node of result.data.nodes) {
    if (names.has(node.name)) throw new IntegrityError(`chunked: ${where}: duplicate name ${JSON.stringify(node.name)}`);
    names.add(node.name);
    const problem = nodeProblem(node);
    if (problem) throw new IntegrityError(`chunked: ${where}: entry ${JSON.stringify(node.name)}: ${problem}`);
  }
  return result.data.nodes;
}

function nodeProblem(node: TreeNode): string | undefined {
  const container = node.type === 'directory' || node.type === 'implied';
  if (container !== (node.tree !== undefined)) return container ? 'a directory without a subtree' : `a ${node.type} with a subtree`;
  if (node.type === 'file') {
    if (node.chunks === undefined || node.sha256 === undefined) return 'a file without chunks or digest';
  } else if (node.chunks !== undefined || node.sha256 !== undefined || node.size !== 0) return `a ${node.type} with data`;
  if ((node.type === 'symlink' || node.type === 'hardlink') !== (node.linkTarget !== undefined)) return 'link target where none belongs, or missing';
  if (node.sparse && node.type !== 'file') return `a ${node.type} with a sparse map`;
  return undefined;
}

/** What a file node keeps of its content. */
export interface FileContent {
  chunks: string[];
  sha256: string;
  /** Set when the data was stored sparse (only these segments' bytes are in the chunks). */
  sparse?: readonly { offset: number; length: number }[];
}

/**
 * The tree node of one entry; `name` is the entry's last path component. `content` for files,
 * `tree` for directories. Keys are added in the one canonical order.
 */
export function nodeFrom(name: string, header: EntryHeader & { identity?: FileIdentity }, extra: { content?: FileContent; tree?: string; implied?: boolean }): TreeNode {
  const node: TreeNode = {
    name,
    type: extra.implied ? 'implied' : header.type,
    mode: header.mode & 0o7777,
    mtimeNs: (header.mtimeNs ?? BigInt(header.mtime.getTime()) * 1_000_000n).toString(),
    size: header.type === 'file' ? header.size : 0,
  };
  if (header.linkTarget !== undefined && (header.type === 'symlink' || header.type === 'hardlink')) node.linkTarget = header.linkTarget;
  const sparse = extra.content?.sparse;
  if (sparse) node.sparse = sparse.map(({ offset, length }) => [offset, length] as [number, number]);
  if (header.xattrs && header.xattrs.length > 0) node.xattrs = header.xattrs.map(({ name: key, value }) => ({ name: key, value: value.toString('base64') }));
  if (header.type === 'chardev' || header.type === 'blockdev') {
    node.devMajor = header.devMajor ?? 0;
    node.devMinor = header.devMinor ?? 0;
  }
  if (extra.content) {
    node.chunks = extra.content.chunks;
    node.sha256 = extra.content.sha256;
    if (header.identity) {
      node.ctimeNs = header.identity.ctimeNs.toString();
      node.inode = header.identity.inode.toString();
      node.device = header.identity.device.toString();
    }
  }
  if (extra.tree !== undefined) node.tree = extra.tree;
  return node;
}

/** The entry header a node stands for, at `path`. Not for implied directories. */
export function headerOf(path: string, node: TreeNode): EntryHeader {
  const mtimeNs = BigInt(node.mtimeNs);
  const header: EntryHeader = {
    path,
    type: node.type as EntryType,
    mode: node.mode,
    mtime: new Date(Number(mtimeNs / 1_000_000n)),
    mtimeNs,
    size: node.size,
  };
  if (node.linkTarget !== undefined) header.linkTarget = node.linkTarget;
  if (node.sparse) header.sparse = node.sparse.map(([offset, length]) => ({ offset, length }));
  if (node.xattrs) header.xattrs = node.xattrs.map(({ name, value }) => ({ name, value: Buffer.from(value, 'base64') }));
  if (node.devMajor !== undefined) header.devMajor = node.devMajor;
  if (node.devMinor !== undefined) header.devMinor = node.devMinor;
  return header;
}
