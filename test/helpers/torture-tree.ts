/**
 * The "torture tree": one directory holding every kind of entry a Linux filesystem can hold
 * that snapshots must keep exactly (issue 11), built at test time in a temp dir, and a
 * comparer that walks two trees by name bytes.
 *
 *   const tree = await makeTortureTree(path.join(tmp, 'src'));
 *   ... snapshot tree.root, restore it to `restored` ...
 *   assert.deepEqual(await compareTrees(tree.root, restored, { ignore: tree.unsupported }), []);
 *
 * Cases are small builder functions in `TORTURE_CASES`; a new kind of entry is one more builder
 * (`addSparse` and `addXattrs` hold sparse files and extended attributes). Builders create entries
 * with raw Buffer paths and register the nanosecond times to set in `ctx.times`: times are set
 * last, deepest first, so creating children does not change them again.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  closeSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readlinkSync,
  readSync,
  symlinkSync,
  writeFileSync,
  chmodSync,
  ftruncateSync,
  writeSync,
  type BigIntStats,
} from 'node:fs';
import { deviceNumbers, makeNode, setTimesNs, setXattr } from '../../shared/fsutil/native-fs.js';
import { readXattrs as readEntryXattrs } from '../../shared/fsutil/xattrs.js';

/** What a builder gets: where to build, and whether the process may create device nodes. */
export interface TortureContext {
  /** The tree's root as bytes. */
  root: Buffer;
  /** Running as root (devices can be created, modes need no care). */
  isRoot: boolean;
  /** Times to set once everything exists: [path, atimeNs, mtimeNs]. Applied deepest path first. */
  times: Array<[Buffer, bigint]>;
  /** Relative paths (bytes) of entries that no snapshot can keep (sockets): reported, never restored. */
  unsupported: Buffer[];
}

export type CaseBuilder = (ctx: TortureContext) => void | Promise<void>;

export interface TortureTree {
  root: string;
  /** Relative paths (bytes) a snapshot reports as unsupported instead of storing. */
  unsupported: Buffer[];
}

/** `root/parts...` as bytes: parts may be Buffers holding any byte but `/` and NUL. */
export function bytesPath(root: Buffer | string, ...parts: Array<Buffer | string>): Buffer {
  const pieces: Buffer[] = [typeof root === 'string' ? Buffer.from(root) : root];
  for (const part of parts) pieces.push(Buffer.from('/'), typeof part === 'string' ? Buffer.from(part) : part);
  return Buffer.concat(pieces);
}

const ns = (iso: string, extraNs = 0n): bigint => BigInt(Date.parse(iso)) * 1_000_000n + extraNs;

/** Names that are bytes, not text: non-UTF-8, control characters, backslash, dashes, spaces, UTF-8. */
export const addNames: CaseBuilder = ({ root }) => {
  mkdirSync(bytesPath(root, 'names'));
  const names = [
    Buffer.from('caf\xe9.txt', 'latin1'),
    Buffer.from('new\nline'),
    Buffer.from('back\\slash'),
    Buffer.from('-leading-dash'),
    Buffer.from(' spaces  around '),
    Buffer.from('tab\there\r'),
    Buffer.from('café-ü-日本.txt'),
    Buffer.from([0xed, 0xa0, 0x80, 0x21]), // an encoded UTF-16 surrogate: not valid UTF-8
    Buffer.from([0xef, 0xbf, 0xbd]), // U+FFFD itself, valid UTF-8
    Buffer.from('*?[glob]'),
  ];
  names.forEach((name, i) => writeFileSync(bytesPath(root, 'names', name), `name ${i}\n`));
  mkdirSync(bytesPath(root, 'names', Buffer.from('d\xff', 'latin1')));
  writeFileSync(bytesPath(root, 'names', Buffer.from('d\xff', 'latin1'), 'x'), 'inside a non-UTF-8 directory\n');
};

/** Modification times outside 1970–2038 and with nanoseconds, on files, directories and symlinks. */
export const addTimes: CaseBuilder = ({ root, times }) => {
  const dir = bytesPath(root, 'times');
  mkdirSync(dir);
  const cases: Array<[string, bigint]> = [
    ['1960-05-01', ns('1960-05-01T00:00:00Z')],
    ['before-epoch-half', ns('1969-12-31T23:59:58.5Z')],
    ['2040-01-01', ns('2040-01-01T00:00:00Z')],
    ['2100-06-01.250', ns('2100-06-01T00:00:00.250Z')],
    // Past 2262-04-11, where nanoseconds since the epoch no longer fit a signed 64-bit integer.
    ['2300-01-01.000000001', ns('2300-01-01T00:00:00Z', 1n)],
    ['ms-1795961425.919', 1795961425_919_000_000n],
    ['ns-123456789', 1_700_000_000_123_456_789n],
    ['whole-second', 1_600_000_000_000_000_000n],
  ];
  for (const [name, mtimeNs] of cases) {
    const filePath = bytesPath(dir, name);
    writeFileSync(filePath, `${name}\n`);
    times.push([filePath, mtimeNs]);
  }
  const oldDir = bytesPath(dir, 'dir-1960');
  mkdirSync(oldDir);
  writeFileSync(bytesPath(oldDir, 'child'), 'child\n');
  times.push([oldDir, ns('1960-05-01T00:00:00Z', 7n)]);
  const link = bytesPath(dir, 'link-2100');
  symlinkSync('2040-01-01', link);
  times.push([link, ns('2100-06-01T00:00:00.250Z', 1n)]);
  times.push([dir, 1_234_567_890_987_654_321n]);
};

/** Symlinks are data: absolute, escaping, dangling, non-UTF-8 and to directories. */
export const addSymlinks: CaseBuilder = ({ root }) => {
  const dir = bytesPath(root, 'links');
  mkdirSync(dir);
  const links: Array<[string, Buffer | string]> = [
    ['absolute', '/etc/passwd'],
    ['escaping', '../../../outside/of/the/tree'],
    ['dangling', 'does-not-exist'],
    ['to-dir', '../names'],
    ['non-utf8', Buffer.from('../names/caf\xe9.txt', 'latin1')],
    ['dot', '.'],
    ['newline-target', 'a\nb'],
  ];
  for (const [name, target] of links) symlinkSync(target, bytesPath(dir, name));
};

/** Hard links: groups within a directory, across directories, and one of three names. */
export const addHardLinks: CaseBuilder = ({ root }) => {
  const dir = bytesPath(root, 'hardlinks');
  mkdirSync(dir);
  mkdirSync(bytesPath(dir, 'sub'));
  writeFileSync(bytesPath(dir, 'a'), 'shared bytes\n');
  linkSync(bytesPath(dir, 'a'), bytesPath(dir, 'b'));
  linkSync(bytesPath(dir, 'a'), bytesPath(dir, 'sub', Buffer.from('c\xe9', 'latin1')));
  writeFileSync(bytesPath(dir, 'sub', 'first'), 'another group\n');
  linkSync(bytesPath(dir, 'sub', 'first'), bytesPath(dir, 'z-second'));
  writeFileSync(bytesPath(dir, 'empty'), '');
  linkSync(bytesPath(dir, 'empty'), bytesPath(dir, 'empty-too'));
};

/** FIFOs always; character and block devices when root; a socket (reported, not stored). */
export const addSpecialFiles: CaseBuilder = async ({ root, isRoot, unsupported }) => {
  const dir = bytesPath(root, 'special');
  mkdirSync(dir);
  makeNode(bytesPath(dir, 'fifo'), 'fifo', 0o640, 0, 0);
  if (isRoot) {
    const { major, minor } = deviceNumbers(lstatSync('/dev/null').rdev);
    makeNode(bytesPath(dir, 'null-copy'), 'chardev', 0o666, major, minor);
    makeNode(bytesPath(dir, 'loop-copy'), 'blockdev', 0o660, 7, 0);
  }
  await makeSocket(bytesPath(dir, 'socket').toString());
  unsupported.push(Buffer.from('special/socket'));
};

/**
 * Leaves a UNIX socket file at `socketPath`: a child Node process binds it and exits at once,
 * which leaves the file (closing the server would unlink it).
 */
export async function makeSocket(socketPath: string): Promise<void> {
  const script = "require('net').createServer().listen(process.argv[1], () => process.exit(0))";
  execFileSync(process.execPath, ['-e', script, socketPath]);
  if (!lstatSync(socketPath).isSocket()) throw new Error(`makeSocket: ${socketPath} is not a socket`);
}

/** Long names: a 255-byte component (NAME_MAX), a path of about 1,800 bytes, odd modes. */
export const addLongNames: CaseBuilder = ({ root }) => {
  const dir = bytesPath(root, 'long');
  mkdirSync(dir);
  writeFileSync(bytesPath(dir, 'n'.repeat(255)), 'NAME_MAX\n');
  writeFileSync(bytesPath(dir, Buffer.concat([Buffer.from('\xe9', 'latin1'), Buffer.alloc(254, 0x6d)])), 'NAME_MAX, non-UTF-8\n');
  let deep = dir;
  for (let i = 0; i < 9; i++) {
    deep = bytesPath(deep, `${i}${'d'.repeat(199)}`);
    mkdirSync(deep);
  }
  writeFileSync(bytesPath(deep, 'leaf'), 'deep\n');
  const modes = bytesPath(root, 'modes');
  mkdirSync(modes);
  writeFileSync(bytesPath(modes, 'no-permissions'), 'x\n');
  chmodSync(bytesPath(modes, 'no-permissions'), 0o000);
  writeFileSync(bytesPath(modes, 'group-exec'), 'x\n');
  chmodSync(bytesPath(modes, 'group-exec'), 0o710);
  mkdirSync(bytesPath(modes, 'read-only-dir'));
  writeFileSync(bytesPath(modes, 'read-only-dir', 'inside'), 'x\n');
  chmodSync(bytesPath(modes, 'read-only-dir'), 0o555);
  writeFileSync(bytesPath(modes, 'empty'), '');
  mkdirSync(bytesPath(modes, 'empty-dir'));
};

/** Writes `blockBytes` bytes of `fill` at each offset of a file truncated to `size` (the rest stays hole). */
function writeSparseFile(file: Buffer, size: number, offsets: number[], blockBytes = 4096, fill = 0x5a): void {
  const fd = openSync(file, 'w');
  try {
    ftruncateSync(fd, size);
    for (const offset of offsets) writeSync(fd, Buffer.alloc(blockBytes, fill), 0, blockBytes, offset);
  } finally {
    closeSync(fd);
  }
}

const [ACL_USER_OBJ, ACL_USER, ACL_GROUP_OBJ, ACL_MASK, ACL_OTHER] = [0x01, 0x02, 0x04, 0x10, 0x20];

/** A POSIX ACL as its xattr value (linux/posix_acl_xattr.h): version 2, then (tag, perm, id) entries, little-endian. */
function posixAcl(entries: Array<[tag: number, perm: number, id?: number]>): Buffer {
  const value = Buffer.alloc(4 + 8 * entries.length);
  value.writeUInt32LE(2, 0);
  entries.forEach(([tag, perm, id = 0xffffffff], i) => {
    value.writeUInt16LE(tag, 4 + 8 * i);
    value.writeUInt16LE(perm, 6 + 8 * i);
    value.writeUInt32LE(id, 8 + 8 * i);
  });
  return value;
}

/**
 * Sparse files (holes must stay holes: the comparer checks allocated blocks): many data blocks
 * in a big hole, a file ending in a hole, one that is all hole, data at an unaligned offset
 * after a hole, a hard-linked sparse file under a non-UTF-8 name, and a dense file of zeros
 * (allocated, and must stay allocated).
 */
export const addSparse: CaseBuilder = ({ root }) => {
  const dir = bytesPath(root, 'sparse');
  mkdirSync(dir);
  const MiB = 1024 * 1024;
  writeSparseFile(bytesPath(dir, 'fifty-blocks'), 32 * MiB, Array.from({ length: 50 }, (_, i) => i * 640 * 1024));
  writeSparseFile(bytesPath(dir, 'ends-in-hole'), 8 * MiB, [0, 4096]);
  writeSparseFile(bytesPath(dir, 'all-hole'), 16 * MiB, []);
  writeSparseFile(bytesPath(dir, 'tail-unaligned'), 5 * MiB + 100, [5 * MiB + 90], 10);
  const named = bytesPath(dir, Buffer.from('spars\xe9', 'latin1'));
  writeSparseFile(named, 4 * MiB, [MiB]);
  linkSync(named, bytesPath(dir, 'sparse-hard-link'));
  writeFileSync(bytesPath(dir, 'dense-zeros'), Buffer.alloc(256 * 1024));
};

/**
 * Extended attributes: `user.*` on files, directories, a non-UTF-8 name, a hard-linked file and
 * a sparse file; binary values (NUL, 0xff, newline, `=`), an empty value, a large value, names
 * holding `=` and `%`; POSIX access and default ACLs; as root also `trusted.*` on a symlink, a FIFO and a directory (user.* is
 * not allowed on those by Linux).
 */
export const addXattrs: CaseBuilder = ({ root, isRoot }) => {
  const dir = bytesPath(root, 'xattrs');
  mkdirSync(dir);
  const file = bytesPath(dir, 'file');
  writeFileSync(file, 'attributes\n');
  setXattr(file, 'user.binary', Buffer.from([0, 0xff, 0x0a, 0x3d, 0x80, 0]), true);
  setXattr(file, 'user.empty', Buffer.alloc(0), true);
  setXattr(file, 'user.name=with%odd', Buffer.from('v'), true);
  setXattr(file, 'user.large', Buffer.alloc(3000, 0x61), true);
  const sub = bytesPath(dir, Buffer.from('d\xff', 'latin1'));
  mkdirSync(sub);
  setXattr(sub, 'user.dir', Buffer.from('directory'), true);
  const named = bytesPath(sub, Buffer.from('caf\xe9', 'latin1'));
  writeFileSync(named, 'x');
  setXattr(named, 'user.mime_type', Buffer.from('text/plain'), true);
  setXattr(bytesPath(root, 'hardlinks', 'a'), 'user.shared', Buffer.from('one inode'), true);
  setXattr(bytesPath(root, 'sparse', 'fifty-blocks'), 'user.sparse', Buffer.from('holes'), true);
  // POSIX ACLs are the system.posix_acl_* attributes: an access ACL naming uid 1000, and a
  // default ACL on a directory whose child was created before it (so inherits nothing).
  const aclFile = bytesPath(dir, 'acl-file');
  writeFileSync(aclFile, 'acl\n');
  setXattr(aclFile, 'system.posix_acl_access', posixAcl([[ACL_USER_OBJ, 6], [ACL_USER, 4, 1000], [ACL_GROUP_OBJ, 4], [ACL_MASK, 4], [ACL_OTHER, 0]]), true);
  const aclDir = bytesPath(dir, 'acl-dir');
  mkdirSync(aclDir);
  writeFileSync(bytesPath(aclDir, 'child'), 'no inherited ACL\n');
  setXattr(aclDir, 'system.posix_acl_default', posixAcl([[ACL_USER_OBJ, 7], [ACL_GROUP_OBJ, 5], [ACL_OTHER, 0]]), true);
  if (isRoot) {
    symlinkSync('file', bytesPath(dir, 'link'));
    setXattr(bytesPath(dir, 'link'), 'trusted.link', Buffer.from([1, 2, 3]), true);
    setXattr(bytesPath(root, 'special', 'fifo'), 'trusted.fifo', Buffer.from('f'), true);
    setXattr(sub, 'trusted.dir', Buffer.from('t'), true);
  }
};

/** Every case, in the order they are built. */
export const TORTURE_CASES: readonly CaseBuilder[] = [addNames, addTimes, addSymlinks, addHardLinks, addSpecialFiles, addLongNames, addSparse, addXattrs];

/** Builds the torture tree under `root` (created; must not exist). */
export async function makeTortureTree(root: string, cases: readonly CaseBuilder[] = TORTURE_CASES): Promise<TortureTree> {
  mkdirSync(root, { recursive: true });
  const ctx: TortureContext = { root: Buffer.from(root), isRoot: process.getuid?.() === 0, times: [], unsupported: [] };
  for (const build of cases) await build(ctx);
  // Deepest first, so setting a child's time never changes a parent's afterwards.
  const byDepth = [...ctx.times].sort((a, b) => slashes(b[0]) - slashes(a[0]));
  for (const [target, mtimeNs] of byDepth) setTimesNs(target, mtimeNs, mtimeNs, true);
  return { root, unsupported: ctx.unsupported };
}

function slashes(bytes: Buffer): number {
  let count = 0;
  for (const byte of bytes) if (byte === 0x2f) count += 1;
  return count;
}

/** What the comparer records per entry. */
export interface EntryFacts {
  type: 'file' | 'directory' | 'symlink' | 'fifo' | 'chardev' | 'blockdev' | 'socket';
  mode: number;
  size: bigint;
  mtimeNs: bigint;
  /** Symlink target bytes (hex), file content SHA-256, device numbers. */
  content: string;
  /** Allocated 512-byte blocks (files only: directories' allocation depends on their history). */
  blocks: bigint;
  /** Relative paths of the other names of this inode (sorted), for files with nlink > 1. */
  hardLinkGroup: string;
  /** name → hex value, filled by `readXattrs`. */
  xattrs: Record<string, string>;
}

/** The attributes to compare for one entry: name → hex value, every namespace the process can read. */
export let readXattrs: (absPath: Buffer) => Record<string, string> = (absPath) =>
  Object.fromEntries((readEntryXattrs(absPath) ?? []).map(({ name, value }) => [name, value.toString('hex')]));
export function setXattrReader(reader: (absPath: Buffer) => Record<string, string>): void {
  readXattrs = reader;
}

/**
 * Every entry under `root` by relative path bytes (hex keys, for exactness), with the facts the
 * comparer checks. The root's own mode and mtime are left out (a restore target's root is the
 * caller's choice).
 */
export function describeTortureTree(root: string): Map<string, EntryFacts> {
  const facts = new Map<string, EntryFacts>();
  const inodes = new Map<bigint, string[]>();
  const visit = (absDir: Buffer, relDir: Buffer | undefined): void => {
    for (const name of readdirSync(absDir, { encoding: 'buffer' })) {
      const rel = relDir ? Buffer.concat([relDir, Buffer.from('/'), name]) : name;
      const abs = Buffer.concat([absDir, Buffer.from('/'), name]);
      const stats = lstatSync(abs, { bigint: true });
      const key = rel.toString('hex');
      facts.set(key, describeEntry(abs, stats));
      if (stats.isFile() && stats.nlink > 1n) inodes.set(stats.ino, [...(inodes.get(stats.ino) ?? []), key]);
      if (stats.isDirectory()) visit(abs, rel);
    }
  };
  visit(Buffer.from(root), undefined);
  for (const group of inodes.values()) {
    const sorted = group.sort().map((hex) => Buffer.from(hex, 'hex').toString('latin1'));
    for (const key of group) facts.get(key)!.hardLinkGroup = sorted.join(' | ');
  }
  return facts;
}

function describeEntry(abs: Buffer, stats: BigIntStats): EntryFacts {
  const base = { mode: Number(stats.mode & 0o7777n), mtimeNs: stats.mtimeNs, size: 0n, content: '', blocks: 0n, hardLinkGroup: '', xattrs: readXattrs(abs) };
  if (stats.isFile()) return { ...base, type: 'file', size: stats.size, blocks: stats.blocks, content: sha256OfFile(abs) };
  if (stats.isDirectory()) return { ...base, type: 'directory' };
  if (stats.isSymbolicLink()) return { ...base, type: 'symlink', content: readlinkSync(abs, { encoding: 'buffer' }).toString('hex') };
  if (stats.isFIFO()) return { ...base, type: 'fifo' };
  const { major, minor } = deviceNumbers(stats.rdev);
  if (stats.isCharacterDevice()) return { ...base, type: 'chardev', content: `${major}:${minor}` };
  if (stats.isBlockDevice()) return { ...base, type: 'blockdev', content: `${major}:${minor}` };
  return { ...base, type: 'socket' };
}

function sha256OfFile(abs: Buffer): string {
  const hash = createHash('sha256');
  const fd = openSync(abs, 'r');
  try {
    const chunk = Buffer.allocUnsafe(1024 * 1024);
    for (let n = readSync(fd, chunk); n > 0; n = readSync(fd, chunk)) hash.update(chunk.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

export interface CompareTreesOptions {
  /** Relative paths (bytes) expected in `expected` but not in `actual` (sockets). */
  ignore?: readonly Buffer[];
  /** Fields not compared (e.g. `blocks` after a tool that does not keep holes). */
  skipFields?: ReadonlyArray<keyof EntryFacts>;
}

/**
 * Compares two trees by name bytes, type, mode, size, content, link target, nanosecond mtime,
 * hard-link groups, allocated blocks (files) and xattrs. Returns one readable line per
 * difference (names shown with non-printable bytes escaped); [] when they match.
 */
export function compareTrees(expectedRoot: string, actualRoot: string, options: CompareTreesOptions = {}): string[] {
  // ext4's delayed allocation counts blocks differently until written back: settle both trees.
  execFileSync('sync', ['-f', expectedRoot, actualRoot]);
  const expected = describeTortureTree(expectedRoot);
  const actual = describeTortureTree(actualRoot);
  const ignored = new Set((options.ignore ?? []).map((rel) => rel.toString('hex')));
  const skip = new Set(options.skipFields ?? []);
  const show = (hex: string): string => JSON.stringify(Buffer.from(hex, 'hex').toString('latin1'));
  const problems: string[] = [];
  for (const [key, facts] of expected) {
    if (ignored.has(key)) {
      if (actual.has(key)) problems.push(`${show(key)}: should have been left out`);
      continue;
    }
    const other = actual.get(key);
    if (!other) {
      problems.push(`${show(key)}: missing`);
      continue;
    }
    for (const field of Object.keys(facts) as Array<keyof EntryFacts>) {
      if (skip.has(field)) continue;
      const a = JSON.stringify(facts[field], (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
      const b = JSON.stringify(other[field], (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
      if (a !== b) problems.push(`${show(key)}: ${field} ${a} != ${b}`);
    }
  }
  for (const key of actual.keys()) if (!expected.has(key)) problems.push(`${show(key)}: unexpected`);
  return problems;
}
