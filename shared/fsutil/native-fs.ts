import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The filesystem calls an exact backup needs and `node:fs` does not offer: nanosecond times,
 * hole detection, device nodes, extended attributes. They live in our small N-API addon
 * (`native/fsx.c`, built by node-gyp at `npm install` into `build/Release/fsx.node`).
 *
 * Paths are strings or Buffers (Buffer for names that are not UTF-8; Linux names are bytes).
 * Every function is synchronous, like the `*Sync` calls of node:fs, and throws an `Error` whose
 * `code` is the errno name (`ENOENT`, `EPERM`, `ENOTSUP`, `ENODATA`, ...), with `errno` and
 * `syscall`, and whose message names the syscall and path; bad argument types throw a TypeError.
 * Linux only.
 */
interface Fsx {
  setTimes(path: string | Buffer, atimeSeconds: bigint, atimeNanos: number, mtimeSeconds: bigint, mtimeNanos: number, noFollow: boolean): void;
  seekData(fd: number, offset: number): number;
  seekHole(fd: number, offset: number): number;
  makeNode(path: string | Buffer, typeBits: number, mode: number, major: number, minor: number): void;
  listXattrs(path: string | Buffer, noFollow: boolean): string[];
  getXattr(path: string | Buffer, name: string, noFollow: boolean): Buffer;
  setXattr(path: string | Buffer, name: string, value: Buffer, noFollow: boolean): void;
  punchHole(fd: number, offset: number, length: number): void;
}

/** The addon sits in `build/Release` at the package root, from `shared/fsutil` here or `dist/shared/fsutil` when built. */
function loadAddon(): Fsx {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = path.join(dir, 'build', 'Release', 'fsx.node');
    if (existsSync(candidate)) return createRequire(import.meta.url)(candidate) as Fsx;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('native-fs: build/Release/fsx.node not found; run `npm install` (it builds the addon with node-gyp)');
    dir = parent;
  }
}

const fsx = loadAddon();

/**
 * Sets atime and mtime exactly (utimensat(2)); times are nanoseconds since the epoch, of any
 * range the filesystem holds (before 1970, after 2262). `noFollow` sets a symlink's own times
 * instead of its target's. A time the kernel cannot hold throws EINVAL or EOVERFLOW.
 */
export function setTimesNs(path: string | Buffer, atimeNs: bigint, mtimeNs: bigint, noFollow: boolean): void {
  const [atimeSeconds, atimeNanos] = splitNs(atimeNs);
  const [mtimeSeconds, mtimeNanos] = splitNs(mtimeNs);
  fsx.setTimes(path, atimeSeconds, atimeNanos, mtimeSeconds, mtimeNanos, noFollow);
}

/** Whole seconds (floored) and the nanoseconds after them (0..999999999). */
function splitNs(ns: bigint): [bigint, number] {
  let seconds = ns / 1_000_000_000n;
  let nanos = ns % 1_000_000_000n;
  if (nanos < 0n) {
    nanos += 1_000_000_000n;
    seconds -= 1n;
  }
  return [seconds, Number(nanos)];
}

/** lseek(fd, offset, SEEK_DATA): the next data offset at or after `offset` (bytes), or -1 when no data follows. */
export function seekData(fd: number, offset: number): number {
  return fsx.seekData(fd, offset);
}

/** lseek(fd, offset, SEEK_HOLE): the next hole at or after `offset` (the file size when there is none). */
export function seekHole(fd: number, offset: number): number {
  return fsx.seekHole(fd, offset);
}

const NODE_TYPE_BITS = { fifo: 0o010000, chardev: 0o020000, blockdev: 0o060000 } as const;

/**
 * mknod(2) of a FIFO or a character/block device with permission bits `mode` (& 0o7777; the umask
 * applies, as for mknod). Devices need CAP_MKNOD (EPERM otherwise); FIFOs need no privilege.
 */
export function makeNode(path: string | Buffer, type: keyof typeof NODE_TYPE_BITS, mode: number, major: number, minor: number): void {
  fsx.makeNode(path, NODE_TYPE_BITS[type], mode, major, minor);
}

/** Device major/minor numbers from a stat `rdev`, as glibc's gnu_dev_major/gnu_dev_minor split them. */
export function deviceNumbers(rdev: number | bigint): { major: number; minor: number } {
  const dev = BigInt(rdev);
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  return { major: Number(major & 0xffffffffn), minor: Number(minor & 0xffffffffn) };
}

/**
 * Names of the extended attributes of `path` (`user.x`, `security.selinux`, ...), in the order
 * the filesystem lists them; [] when the filesystem does not support them (ENOTSUP).
 * `noFollow` reads a symlink's own attributes (llistxattr).
 */
export function listXattrs(path: string | Buffer, noFollow: boolean): string[] {
  return fsx.listXattrs(path, noFollow);
}

/** The value of one extended attribute (lgetxattr with `noFollow`); throws ENODATA when it is not set. */
export function getXattr(path: string | Buffer, name: string, noFollow: boolean): Buffer {
  return fsx.getXattr(path, name, noFollow);
}

/** Sets one extended attribute, creating or replacing it (lsetxattr with `noFollow`). */
export function setXattr(path: string | Buffer, name: string, value: Buffer, noFollow: boolean): void {
  fsx.setXattr(path, name, value, noFollow);
}

/** Deallocates `length` bytes at `offset` (bytes) of an open file, keeping its size: the range reads as zeros (fallocate PUNCH_HOLE). */
export function punchHole(fd: number, offset: number, length: number): void {
  fsx.punchHole(fd, offset, length);
}
