import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, constants, fchmodSync, ftruncateSync, linkSync, mkdirSync, openSync, symlinkSync, writeSync } from 'node:fs';
import { lstat, mkdir, open, readdir, rename } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { entryMtimeNs, type EntryHeader } from '../../snapshot/entry.js';
import type { SnapshotManifest } from '../../snapshot/manifest.js';
import { AbortedError, IntegrityError, InvalidInputError, SnapworkerError, UnsafeEntryError, throwIfAborted } from '../../errors.js';
import { dirPathFromUris } from './dir-uri.js';
import { fsPath, showName as showPath } from '../../fsutil/byte-name.js';
import { assertCanCreateIn, cannotCreate } from '../../fsutil/cannot-create.js';
import { errnoCode, errorText } from '../../fsutil/errno.js';
import { fsyncPath } from '../../fsutil/fsync.js';
import { safePathSegments } from '../../fsutil/relative-path.js';
import { makeNode, setTimesNs } from '../../fsutil/native-fs.js';
import { removeTree } from '../../fsutil/remove-tree.js';
import { writeXattrs } from '../../fsutil/xattrs.js';
import { dataBytes, SparseCursor } from '../../snapshot/sparse-segments.js';
import type { Xattr } from '../../snapshot/xattr.js';
import { syncFilesystem } from '../../fsutil/sync-filesystem.js';
import type { EndpointContext } from '../source.js';
import type { RestoreOptions, RestoreResult, RestoreSession, RestoreTarget, TargetFactory } from '../restore-target.js';

/** Tuning of the directory target; every member is optional. */
export interface DirTargetOptions {
  /**
   * Make every restored file durable before the swap. Default true. Done with one `syncfs` of
   * the target's filesystem (see `syncFilesystem`) once every entry is staged: the same
   * guarantee as an fsync per file, at the cost of one journal commit instead of one per file.
   * Directories and the parent are made durable whatever this says.
   */
  fsyncFiles?: boolean;
  /** Staged directories given their metadata (and, without `fsyncFiles`, fsynced) at once during commit. Default 16. */
  syncConcurrency?: number;
  /**
   * Restore the setuid, setgid and sticky bits as archived. Default false: they are cleared, as
   * GNU tar does when it does not run as root (an archive should not hand out setuid programs
   * unless the operator chose so; config `SNAPWORKER_RESTORE_SETUID`).
   */
  restoreSetuid?: boolean;
  /** Told about problems that do not fail the restore (an old tree that could not be removed). */
  onWarning?: (message: string) => void;
}

export const DIR_TARGET_DEFAULTS = { fsyncFiles: true, syncConcurrency: 16, restoreSetuid: false } as const;

/** Permission bits kept when setuid, setgid and sticky bits are not restored. */
const PERMISSION_BITS = 0o777;

/** Mode of the restored root when the archive does not carry one and no old target lends its own. */
const DEFAULT_ROOT_MODE = 0o755;
/** Staged directories stay private and writable until commit gives them their archived modes. */
const STAGING_DIRECTORY_MODE = 0o700;
const CREATE_FILE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
const OPEN_DIRECTORY_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;

type TargetState = { kind: 'absent' } | { kind: 'empty-directory' | 'occupied'; mode: number };

/**
 * A local directory as restore target (`dir:///abs/path`). A restore is staged in a hidden
 * sibling directory, so it is on the same filesystem and goes live with one rename at commit;
 * until then the target is untouched.
 */
export class DirTarget implements RestoreTarget {
  readonly accepts: readonly string[] = ['dir'];
  private readonly options: Required<Omit<DirTargetOptions, 'onWarning'>> & Pick<DirTargetOptions, 'onWarning'>;

  /** @param targetPath absolute path, already checked against the allowed paths. */
  constructor(
    readonly targetPath: string,
    readonly uri: string,
    options: DirTargetOptions = {},
  ) {
    this.options = { ...DIR_TARGET_DEFAULTS, ...options };
    if (!Number.isSafeInteger(this.options.syncConcurrency) || this.options.syncConcurrency < 1) {
      throw new InvalidInputError(`dir target: syncConcurrency must be a positive integer, got ${this.options.syncConcurrency}`);
    }
  }

  /**
   * Checks the target and creates the staging directory.
   *
   * A snapshot of another kind never gets here (`openTarget` refuses it by `accepts`).
   * @throws InvalidInputError when the parent is missing, the
   *   target is a symlink, or the target holds something and `replace` is false.
   */
  async begin(manifest: SnapshotManifest, options: RestoreOptions): Promise<RestoreSession> {
    throwIfAborted(options.signal);
    const parent = path.dirname(this.targetPath);
    if (parent === this.targetPath) throw new InvalidInputError('restore: cannot restore onto / (it has no parent to stage in)');
    const parentStats = await lstat(parent).catch(() => undefined);
    if (!parentStats?.isDirectory()) {
      throw new InvalidInputError(`restore: parent ${parent} of target ${this.targetPath} does not exist or is not a directory`);
    }
    const state = await inspectTarget(this.targetPath);
    refuseUnlessReplaceable(this.targetPath, state, options.replace);
    // Staging and the swap both happen in the parent: say so now, not after the download.
    await assertCanCreateIn(parent, path.basename(this.targetPath));
    const staging = siblingPath(this.targetPath, 'staging');
    try {
      await mkdir(staging, { mode: STAGING_DIRECTORY_MODE });
    } catch (cause) {
      throw cannotCreate(parent, `staging directory ${path.basename(staging)}`, cause);
    }
    return new DirRestoreSession(this, staging, options, this.options);
  }
}

/** Metadata a staged directory gets at commit; undefined for parents created implicitly. */
type DirectoryMeta = { mode: number; mtimeNs: bigint; xattrs?: readonly Xattr[] } | undefined;

/** How many attributes that could not be restored are named in the result. */
const MAX_NAMED_XATTRS_NOT_RESTORED = 100;

class DirRestoreSession implements RestoreSession {
  private state: 'open' | 'committing' | 'committed' | 'aborted' = 'open';
  private entries = 0;
  private bytes = 0;
  /** Every directory created in staging (relative path, '' for the root), with its archived metadata. */
  private readonly directories = new Map<string, DirectoryMeta>([['', undefined]]);
  private inFlightWrite: Promise<void> = Promise.resolve();
  /** The body being written, so abort can end a write that waits for bytes that will not come. */
  private inFlightBody: Readable | undefined;
  private committing: Promise<RestoreResult> | undefined;
  private aborting: Promise<void> | undefined;
  /** Extended attributes the target could not keep (see `restoreXattrs`). */
  private readonly xattrsNotRestored = { count: 0, first: [] as string[] };

  constructor(
    private readonly target: DirTarget,
    private readonly staging: string,
    private readonly options: RestoreOptions,
    private readonly tuning: Required<Omit<DirTargetOptions, 'onWarning'>> & Pick<DirTargetOptions, 'onWarning'>,
  ) {
    // One listener for the session rather than one per file: a write stalled waiting for body
    // bytes ends when the job is aborted.
    options.signal.addEventListener('abort', this.onAbort, { once: true });
  }

  private readonly onAbort = (): void => {
    this.inFlightBody?.destroy(new AbortedError(`restore of ${this.target.targetPath} aborted: ${String(this.options.signal.reason ?? 'aborted')}`));
  };

  /**
   * Stages one entry. Only `data/...` paths are restored.
   *
   * @throws IntegrityError for a path outside `data/`, a duplicate entry, a body of the wrong
   *   length or a malformed header; UnsafeEntryError for absolute or `..` paths and for paths that
   *   would be written through a symlink or a file.
   */
  write(header: EntryHeader, body: Readable | undefined): Promise<void> {
    if (this.state !== 'open') {
      body?.resume();
      return Promise.reject(new SnapworkerError(`restore: write ${showPath(header.path)} after the restore was ${this.state}`));
    }
    this.inFlightBody = body;
    const writing = this.stage(header, body)
      .catch((err: unknown) => {
        // A refused entry's bytes are still drained so the archive reader is not left stalled.
        body?.resume();
        throw err;
      })
      .finally(() => {
        if (this.inFlightBody === body) this.inFlightBody = undefined;
      });
    this.inFlightWrite = writing.catch(() => {});
    return writing;
  }

  /** Stages a file from bytes in memory (see `write`): the same checks, and no stream to wait on. */
  writeBytes(header: EntryHeader, bytes: Buffer): Promise<void> {
    if (this.state !== 'open') return Promise.reject(new SnapworkerError(`restore: write ${showPath(header.path)} after the restore was ${this.state}`));
    const writing = this.stage(header, bytes);
    this.inFlightWrite = writing.catch(() => {});
    return writing;
  }

  /** Makes the staged tree the target (see class doc); idempotent: a second call returns the same result. */
  async commit(): Promise<RestoreResult> {
    if (this.committing) return this.committing;
    if (this.state === 'aborted') throw new SnapworkerError(`restore: commit of ${this.target.targetPath} after abort`);
    this.state = 'committing';
    this.committing = this.swapIn().finally(() => this.options.signal.removeEventListener('abort', this.onAbort));
    return this.committing;
  }

  /** Removes everything staged; the target stays as it was. Safe to call twice, and a no-op after commit. */
  async abort(): Promise<void> {
    // After commit started, commit owns the cleanup (it discards staging itself when it fails).
    if (this.committing) return;
    if (!this.aborting) {
      this.state = 'aborted';
      this.inFlightBody?.destroy(new AbortedError(`restore of ${this.target.targetPath} aborted`));
      this.aborting = this.discardStaging().finally(() => this.options.signal.removeEventListener('abort', this.onAbort));
    }
    return this.aborting;
  }

  private async stage(header: EntryHeader, body: Readable | Buffer | undefined): Promise<void> {
    throwIfAborted(this.options.signal);
    const segments = restorableSegments(header.path);
    checkHeader(header);
    const relPath = segments.join('/');
    if (relPath === '') {
      if (header.type !== 'directory') throw new IntegrityError(`restore: entry ${showPath(header.path)} must be a directory`);
      this.directories.set('', { mode: this.modeOf(header), mtimeNs: entryMtimeNs(header), xattrs: header.xattrs });
      this.entries += 1;
      return;
    }
    await this.ensureParentDirectories(segments, header.path);
    const absPath = path.join(this.staging, ...segments);
    switch (header.type) {
      case 'directory':
        await this.stageDirectory(relPath, absPath, header);
        drain(body);
        break;
      case 'symlink':
        await this.stageSymlink(absPath, header);
        drain(body);
        break;
      case 'file':
        await this.stageFile(absPath, header, body);
        break;
      case 'hardlink':
        this.stageHardLink(absPath, header);
        drain(body);
        break;
      case 'fifo':
      case 'chardev':
      case 'blockdev':
        this.stageNode(absPath, header);
        drain(body);
        break;
      default:
        throw new IntegrityError(`restore: entry ${showPath(header.path)} has unknown type ${String(header.type)}`);
    }
    this.entries += 1;
  }

  /**
   * Makes sure every ancestor of the entry is a real directory inside staging. Directories this
   * session created are known; anything else on the way (a symlink or file the archive planted)
   * is refused, so no entry can be written through a link out of staging.
   */
  private async ensureParentDirectories(segments: string[], entryPath: string): Promise<void> {
    for (let depth = 1; depth < segments.length; depth++) {
      const relDir = segments.slice(0, depth).join('/');
      if (this.directories.has(relDir)) continue;
      const absDir = path.join(this.staging, ...segments.slice(0, depth));
      try {
        mkdirSync(fsPath(absDir), STAGING_DIRECTORY_MODE);
      } catch (cause) {
        if (errnoCode(cause) === 'EEXIST') {
          throw new UnsafeEntryError(`restore: entry ${showPath(entryPath)} would be written through ${showPath(`data/${relDir}`)}, which is not a directory`, { cause });
        }
        throw new SnapworkerError(`restore: create directory ${showPath(`data/${relDir}`)}: ${errorText(cause)}`, { cause });
      }
      this.directories.set(relDir, undefined);
    }
  }

  private async stageDirectory(relPath: string, absPath: string, header: EntryHeader): Promise<void> {
    try {
      mkdirSync(fsPath(absPath), STAGING_DIRECTORY_MODE);
    } catch (cause) {
      // A directory created earlier as an implicit parent gets its metadata now; anything else is a clash.
      const implicit = errnoCode(cause) === 'EEXIST' && this.directories.has(relPath) && this.directories.get(relPath) === undefined;
      if (!implicit) throw entryFailure(header, 'create directory', cause);
    }
    // Attributes only at commit: a default ACL set now would be inherited by the children.
    this.directories.set(relPath, { mode: this.modeOf(header), mtimeNs: entryMtimeNs(header), xattrs: header.xattrs });
  }

  /** The archived mode, without setuid, setgid and sticky unless the worker allows them. */
  private modeOf(header: EntryHeader): number {
    return this.tuning.restoreSetuid ? header.mode : header.mode & PERMISSION_BITS;
  }

  /**
   * Creates the symlink exactly as archived, whatever it points to (absolute, out of the tree,
   * dangling): a link is data. It is never followed while restoring: entries below it are
   * refused (EntryTracker, ensureParentDirectories), files are created with O_EXCL|O_NOFOLLOW,
   * and times are set on the link itself.
   */
  private async stageSymlink(absPath: string, header: EntryHeader): Promise<void> {
    if (typeof header.linkTarget !== 'string' || header.linkTarget === '' || header.linkTarget.includes('\0')) {
      throw new IntegrityError(`restore: symlink entry ${showPath(header.path)} has no valid link target`);
    }
    try {
      // symlink(2) never follows an existing path: it fails with EEXIST instead.
      symlinkSync(fsPath(header.linkTarget), fsPath(absPath));
      this.restoreXattrs(absPath, header.path, header.xattrs);
      const mtimeNs = entryMtimeNs(header);
      setTimesNs(fsPath(absPath), mtimeNs, mtimeNs, true);
    } catch (cause) {
      throw entryFailure(header, 'create symlink', cause);
    }
  }

  /**
   * A further name of a file restored earlier. link(2) does not follow a symlink in the last
   * component of the old path, but would in the ones before it, so those must all be directories
   * this restore created (the archive reader already allows only earlier entries; this holds for
   * any caller).
   */
  private stageHardLink(absPath: string, header: EntryHeader): void {
    const targetSegments = restorableSegments(header.linkTarget ?? '');
    if (targetSegments.length === 0) throw new IntegrityError(`restore: hard link entry ${showPath(header.path)} has no valid link target`);
    for (let depth = 1; depth < targetSegments.length; depth++) {
      if (!this.directories.has(targetSegments.slice(0, depth).join('/'))) {
        throw new UnsafeEntryError(`restore: hard link entry ${showPath(header.path)}: target ${showPath(header.linkTarget!)} is not below directories of this restore`);
      }
    }
    try {
      linkSync(fsPath(path.join(this.staging, ...targetSegments)), fsPath(absPath));
    } catch (cause) {
      if (errnoCode(cause) === 'ENOENT') {
        throw new IntegrityError(`restore: hard link entry ${showPath(header.path)}: ${showPath(header.linkTarget!)} was not restored before it`, { cause });
      }
      throw entryFailure(header, 'create hard link', cause);
    }
  }

  /** A FIFO or device node. Devices need CAP_MKNOD (root); FIFOs need no privilege. */
  private stageNode(absPath: string, header: EntryHeader): void {
    const type = header.type as 'fifo' | 'chardev' | 'blockdev';
    const target = fsPath(absPath);
    try {
      makeNode(target, type, 0o600, header.devMajor ?? 0, header.devMinor ?? 0);
    } catch (cause) {
      if (errnoCode(cause) === 'EPERM' && type !== 'fifo') {
        const what = type === 'chardev' ? 'character device' : 'block device';
        throw new SnapworkerError(
          `restore: entry ${showPath(header.path)} is a ${what} (${header.devMajor}:${header.devMinor}); creating it needs the CAP_MKNOD capability, which this process lacks: run the worker (or the --local command) as root`,
          { cause },
        );
      }
      throw entryFailure(header, `create ${type}`, cause);
    }
    try {
      // mknod applies the umask, so the mode is set afterwards; chmod, setxattr and utimensat do not open the node.
      this.restoreXattrs(absPath, header.path, header.xattrs);
      chmodSync(target, this.modeOf(header));
      const mtimeNs = entryMtimeNs(header);
      setTimesNs(target, mtimeNs, mtimeNs, true);
    } catch (cause) {
      throw entryFailure(header, `set metadata of ${type}`, cause);
    }
  }

  /**
   * Creates and writes one file with synchronous calls on the event-loop thread, like tar: a
   * restore of many small files is bound by per-call overhead, and a thread-pool hop per
   * open/write/chmod/utimes/close cost several times the calls themselves (docs/benchmarks.md).
   * A call blocks for one write of at most one decompressed chunk (1 MiB).
   */
  private async stageFile(absPath: string, header: EntryHeader, body: Readable | Buffer | undefined): Promise<void> {
    if (body === undefined && header.size > 0) throw new IntegrityError(`restore: file entry ${showPath(header.path)} has no body`);
    let fd: number;
    const target = fsPath(absPath);
    try {
      // O_EXCL|O_NOFOLLOW: never reuse, and never follow, anything already at the path.
      fd = openSync(target, CREATE_FILE_FLAGS, 0o600);
    } catch (cause) {
      throw entryFailure(header, 'create file', cause);
    }
    try {
      const written = body === undefined ? 0 : Buffer.isBuffer(body) ? writeBytes(fd, body, header) : await writeBody(fd, body, header);
      // Content first (writing would change the mtime, and clears security.capability), then
      // attributes, mode and times.
      this.restoreXattrs(absPath, header.path, header.xattrs);
      fchmodSync(fd, this.modeOf(header));
      // By path, since utimensat has no fd form here: the staging tree is private and the file was just created with O_EXCL.
      const mtimeNs = entryMtimeNs(header);
      setTimesNs(target, mtimeNs, mtimeNs, true);
      this.bytes += written;
    } catch (err) {
      if (err instanceof SnapworkerError) throw err;
      throw entryFailure(header, 'write file', err);
    } finally {
      closeSync(fd);
    }
  }

  private async swapIn(): Promise<RestoreResult> {
    const targetPath = this.target.targetPath;
    let replaced: string | undefined;
    try {
      await this.inFlightWrite;
      throwIfAborted(this.options.signal);
      const state = await inspectTarget(targetPath);
      refuseUnlessReplaceable(targetPath, state, this.options.replace);
      await this.finishDirectories(state.kind === 'absent' ? DEFAULT_ROOT_MODE : state.mode);
      // Files and directories durable before the swap: one syncfs covers every staged inode.
      if (this.tuning.fsyncFiles) await syncFilesystem(this.staging);
      throwIfAborted(this.options.signal);
      if (state.kind === 'absent') {
        await renameOrFail(this.staging, targetPath);
      } else {
        replaced = await this.swapWithExisting(targetPath);
      }
    } catch (err) {
      this.state = 'aborted';
      await this.discardStaging();
      throw err;
    }
    this.state = 'committed';
    await fsyncPath(path.dirname(targetPath));
    if (replaced !== undefined) {
      // Only once the new tree is durably in place does the old one go.
      await removeTree(replaced).catch((cause: unknown) => {
        this.tuning.onWarning?.(`restore: could not remove the replaced tree ${replaced}: ${(cause as Error).message}`);
      });
    }
    const { xattrsNotRestored } = this;
    return { target: this.target.uri, entries: this.entries, bytes: this.bytes, ...(xattrsNotRestored.count > 0 ? { xattrsNotRestored } : {}) };
  }

  /**
   * Sets an entry's extended attributes. Those the target filesystem or the worker cannot keep
   * (no xattr support, `trusted.*` without CAP_SYS_ADMIN, `user.*` on a symlink, no room) do not
   * fail the restore: each is counted and named in the result (`xattrsNotRestored`) and told to
   * `onWarning`.
   */
  private restoreXattrs(absPath: string, entryPath: string, xattrs: readonly Xattr[] | undefined): void {
    if (!xattrs) return;
    writeXattrs(fsPath(absPath), xattrs, (name, reason) => {
      const what = `${showPath(entryPath)}: extended attribute ${name} not restored (${reason})`;
      this.xattrsNotRestored.count += 1;
      if (this.xattrsNotRestored.first.length < MAX_NAMED_XATTRS_NOT_RESTORED) this.xattrsNotRestored.first.push(what);
      this.tuning.onWarning?.(`restore: ${what}`);
    });
  }

  /** Moves the old target aside and the staged tree in; puts the old one back if the second rename fails. */
  private async swapWithExisting(targetPath: string): Promise<string> {
    const old = siblingPath(targetPath, 'old');
    await renameOrFail(targetPath, old);
    try {
      await renameOrFail(this.staging, targetPath);
    } catch (err) {
      await renameOrFail(old, targetPath);
      throw err;
    }
    return old;
  }

  /**
   * Gives every staged directory its archived mode and mtime and fsyncs it, deepest level first
   * and only now: creating children changes a directory's mtime, and a read-only directory
   * could not have received them. The root takes the archived root metadata when the archive has
   * it, else `rootMode` (the replaced target's mode, or 0o755).
   */
  private async finishDirectories(rootMode: number): Promise<void> {
    const byDepth = new Map<number, string[]>();
    for (const relDir of this.directories.keys()) {
      const depth = relDir === '' ? 0 : relDir.split('/').length;
      byDepth.set(depth, [...(byDepth.get(depth) ?? []), relDir]);
    }
    const depths = [...byDepth.keys()].sort((a, b) => b - a);
    for (const depth of depths) {
      const level = byDepth.get(depth)!;
      for (let i = 0; i < level.length; i += this.tuning.syncConcurrency) {
        await Promise.all(level.slice(i, i + this.tuning.syncConcurrency).map((relDir) => this.finishDirectory(relDir, rootMode)));
      }
    }
  }

  private async finishDirectory(relDir: string, rootMode: number): Promise<void> {
    const absDir = relDir === '' ? this.staging : path.join(this.staging, relDir);
    const meta = this.directories.get(relDir);
    const handle = await open(fsPath(absDir), OPEN_DIRECTORY_FLAGS);
    try {
      this.restoreXattrs(absDir, relDir === '' ? 'data' : `data/${relDir}`, meta?.xattrs);
      await handle.chmod(meta?.mode ?? (relDir === '' ? rootMode : DEFAULT_ROOT_MODE));
      if (meta) setTimesNs(fsPath(absDir), meta.mtimeNs, meta.mtimeNs, true);
      // With fsyncFiles the syncfs after this pass makes directories durable too.
      if (!this.tuning.fsyncFiles) await handle.sync();
    } catch (cause) {
      throw new SnapworkerError(`restore: finish directory ${showPath(`data/${relDir}`)}: ${errorText(cause)}`, { cause });
    } finally {
      await handle.close();
    }
  }

  private async discardStaging(): Promise<void> {
    await this.inFlightWrite;
    await removeTree(this.staging);
  }
}

/** The entry's path below `data/`, as safe segments. */
function restorableSegments(entryPath: string): string[] {
  if (entryPath !== 'data' && !entryPath.startsWith('data/')) {
    throw new IntegrityError(`restore: entry ${showPath(entryPath)} is not part of a directory payload (data/...)`);
  }
  try {
    return safePathSegments(entryPath.slice('data/'.length));
  } catch (cause) {
    throw new UnsafeEntryError(`restore: refused entry ${showPath(entryPath)}: absolute or leaves the target`, { cause });
  }
}

function checkHeader(header: EntryHeader): void {
  const validMode = Number.isInteger(header.mode) && header.mode >= 0 && header.mode <= 0o7777;
  const validTime = header.mtime instanceof Date && !Number.isNaN(header.mtime.getTime());
  const validSize = Number.isSafeInteger(header.size) && header.size >= 0;
  if (!validMode || !validTime || !validSize) {
    throw new IntegrityError(`restore: entry ${showPath(header.path)} has an invalid mode, mtime or size`);
  }
}

/**
 * Writes the body at its offsets as its chunks arrive and checks it is exactly as long as the
 * header says. A sparse file's body is only its data segments: the file is first given its
 * full length (all hole), then each piece is written where the map puts it, so holes stay
 * holes and nothing else is allocated. Zeros in a plain file are written like any other bytes,
 * so allocation comes back as it was. Returns the logical size. Listens for `data` rather
 * than iterating: an async iterator per file costs more than the small file's write.
 */
function writeBody(fd: number, body: Readable, header: EntryHeader): Promise<number> {
  const cursor = header.sparse && new SparseCursor(header.sparse, showPath(header.path));
  const expected = header.sparse ? dataBytes(header.sparse) : header.size;
  if (header.sparse) ftruncateSync(fd, header.size);
  return new Promise<number>((resolve, reject) => {
    let position = 0;
    const onData = (chunk: Buffer): void => {
      try {
        if (position + chunk.length > expected) {
          throw new IntegrityError(`restore: file entry ${showPath(header.path)} is longer than its header's ${expected} bytes`);
        }
        if (cursor) for (const piece of cursor.place(chunk)) writeAll(fd, piece.bytes, piece.position);
        else writeAll(fd, chunk, position);
        position += chunk.length;
      } catch (err) {
        body.destroy(err as Error);
      }
    };
    const onEnd = (): void => {
      cleanup();
      if (position !== expected) reject(new IntegrityError(`restore: file entry ${showPath(header.path)} ended after ${position} of ${expected} bytes`));
      else resolve(header.size);
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    const onClose = (): void => {
      cleanup();
      reject(new SnapworkerError(`restore: file entry ${showPath(header.path)}: body closed after ${position} of ${expected} bytes`));
    };
    const cleanup = (): void => {
      body.off('data', onData);
      body.off('end', onEnd);
      body.off('error', onError);
      body.off('close', onClose);
    };
    if (body.destroyed) return onClose();
    body.on('data', onData);
    body.once('end', onEnd);
    body.once('error', onError);
    body.once('close', onClose);
  });
}

/** Writes a whole body held in memory (not sparse: the reader hands only plain files over as bytes). Returns its size. */
function writeBytes(fd: number, bytes: Buffer, header: EntryHeader): number {
  if (header.sparse || bytes.length !== header.size) {
    throw new IntegrityError(`restore: file entry ${showPath(header.path)} has ${bytes.length} bytes in memory, its header says ${header.size}${header.sparse ? ' (sparse)' : ''}`);
  }
  writeAll(fd, bytes, 0);
  return bytes.length;
}

/** Lets a stream body nobody writes flow on, so the reader is not left waiting on it. */
function drain(body: Readable | Buffer | undefined): void {
  if (body !== undefined && !Buffer.isBuffer(body)) body.resume();
}

function writeAll(fd: number, chunk: Buffer, position: number): void {
  let done = 0;
  while (done < chunk.length) done += writeSync(fd, chunk, done, chunk.length - done, position + done);
}

async function inspectTarget(targetPath: string): Promise<TargetState> {
  let stats;
  try {
    stats = await lstat(targetPath);
  } catch (cause) {
    if (errnoCode(cause) === 'ENOENT') return { kind: 'absent' };
    throw new SnapworkerError(`restore: inspect target ${targetPath}: ${(cause as Error).message}`, { cause });
  }
  if (stats.isSymbolicLink()) {
    throw new InvalidInputError(`restore: target ${targetPath} is a symlink; restore to the directory it points to`);
  }
  if (!stats.isDirectory()) {
    // Never replaced, even with --replace: a directory where a file was is a different thing
    // to whatever uses that path, and the file is gone without anyone having named it.
    throw new InvalidInputError(`restore: target ${targetPath} is ${typeName(stats)}, not a directory; a directory snapshot restores only onto a directory (move it away first)`);
  }
  const mode = stats.mode & 0o7777;
  if ((await readdir(targetPath)).length === 0) return { kind: 'empty-directory', mode };
  return { kind: 'occupied', mode };
}

function typeName(stats: Stats): string {
  if (stats.isFile()) return 'a regular file';
  if (stats.isFIFO()) return 'a FIFO';
  if (stats.isSocket()) return 'a socket';
  if (stats.isCharacterDevice()) return 'a character device';
  if (stats.isBlockDevice()) return 'a block device';
  return 'not a directory';
}

function refuseUnlessReplaceable(targetPath: string, state: TargetState, replace: boolean): void {
  if (state.kind === 'occupied' && !replace) {
    throw new InvalidInputError(`restore: target ${targetPath} exists; replace it with --replace (job field "replace": true)`);
  }
}

/** `<parent>/.<name>.snapworker-<role>-<random>`: hidden, on the target's filesystem, unique. */
function siblingPath(targetPath: string, role: 'staging' | 'old'): string {
  const name = path.basename(targetPath);
  return path.join(path.dirname(targetPath), `.${name}.snapworker-${role}-${randomBytes(6).toString('hex')}`);
}

async function renameOrFail(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (cause) {
    throw new SnapworkerError(`restore: rename ${from} to ${to}: ${(cause as Error).message}`, { cause });
  }
}

function entryFailure(header: EntryHeader, operation: string, cause: unknown): SnapworkerError {
  if (errnoCode(cause) === 'EEXIST') return new IntegrityError(`restore: entry ${showPath(header.path)} appears twice in the archive`, { cause });
  if (cause instanceof SnapworkerError) return cause;
  return new SnapworkerError(`restore: ${operation} ${showPath(header.path)}: ${errorText(cause)}`, { cause });
}

/**
 * Builds a `TargetFactory` for `dir:///abs/path` with tuned options (see `DirTargetOptions`).
 *
 * @throws InvalidInputError unless exactly one well-formed `dir:` URI is given;
 *   UnsafePathError (from `context.checkPath`) when the path is outside the allowed roots.
 */
export function createDirTargetFactory(options: DirTargetOptions = {}): TargetFactory {
  return (uris: URL[], _params: object, context: EndpointContext): RestoreTarget => {
    const targetPath = dirPathFromUris(uris, 'target');
    context.checkPath(targetPath);
    return new DirTarget(targetPath, uris[0]!.href, { ...options, restoreSetuid: options.restoreSetuid ?? context.restoreSetuid ?? false });
  };
}

/** The directory restore target with default tuning: `dir:///abs/path`, exactly one URI. */
export const createDirTarget: TargetFactory = createDirTargetFactory();
