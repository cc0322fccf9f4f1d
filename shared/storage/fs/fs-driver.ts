import { createHash, randomBytes } from 'node:crypto';
import type { Dir } from 'node:fs';
import { mkdir, open, opendir, rename, rmdir, stat, unlink } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, sep } from 'node:path';
import { addAbortSignal, PassThrough, Readable } from 'node:stream';

import { AbortedError, IntegrityError, InvalidInputError, NoSpaceError, NotFoundError, SnapworkerError, throwIfAborted } from '../../errors.js';
import { errnoCode, isNoSpaceError } from '../../fsutil/errno.js';
import {
  nullStorageObserver,
  type GetOptions,
  type ObjectInfo,
  type PutOptions,
  type PutResult,
  type RenameOptions,
  type SignalOptions,
  type StorageDriver,
  type StorageObserver,
} from '../storage-driver.js';
import { bodyChunks } from '../body-chunks.js';
import { fsyncPath } from '../../fsutil/fsync.js';
import { closeFd, fsyncFd, openFd, writeFd } from '../../fsutil/fd.js';
import { assertValidKey, assertValidPrefix, assertValidRange } from '../storage-input.js';
import { sweepLeftovers } from './sweep-leftovers.js';

/** Name prefix of in-progress writes; `list` skips such files and keys may not use it. */
export const FS_TEMP_PREFIX = '.tmp-';
const TEMP_NAME = /^\.tmp-[0-9a-f]{16}$/;

export interface FsDriverOptions {
  /** Absolute directory that holds every key. Created on the first put if missing. */
  root: string;
  /** Receives request outcomes and byte counts for metrics. Default: drops them. */
  observer?: StorageObserver;
}

/**
 * Stores objects as files under `root`, the way Litestream's file replica does: a put writes a
 * temp file in the target directory while hashing it, fsyncs it, renames it over the key and
 * fsyncs the directory, so a crash leaves the old object or the new one, never a torn one.
 *
 * Errors: `NotFoundError` for missing objects, `InvalidInputError` for bad keys and ranges,
 * `IntegrityError` when a put's body does not have its declared size, `AbortedError` when the
 * signal fires; anything else as `SnapworkerError` `fs: <op> <key>: …` with the cause.
 */
export class FsDriver implements StorageDriver {
  readonly kind = 'fs';
  private readonly root: string;
  private readonly observer: StorageObserver;

  constructor(options: FsDriverOptions) {
    if (!isAbsolute(options.root)) throw new InvalidInputError(`fs: root must be an absolute path, got ${JSON.stringify(options.root)}`);
    this.root = options.root;
    this.observer = options.observer ?? nullStorageObserver;
  }

  async put(key: string, body: Readable, options: PutOptions = {}): Promise<PutResult> {
    const path = this.pathOf('put', key);
    return this.observed('put', key, async () => {
      throwIfAborted(options.signal);
      const tempName = `${FS_TEMP_PREFIX}${randomBytes(8).toString('hex')}`;
      const tempPath = join(dirname(path), tempName);
      let fd: number | undefined;
      try {
        // No `onUploadStarted` for the temp file: what a dead process leaves is found without
        // being recorded (a temp name in the key's folder; `sweepLeftovers` of that folder removes
        // it, as a retried snapshot does first), which spares the caller a write per put (the
        // queue worker's was a Redis round trip).
        fd = await openTemp(tempPath);
        const { size, sha256 } = await this.writeBody(fd, key, body, options);
        if (options.size !== undefined && options.size !== size) {
          throw new IntegrityError(`fs: put ${key}: body has ${size} bytes, ${options.size} were declared`);
        }
        await fsyncFd(fd);
        const opened = fd;
        fd = undefined;
        await closeFd(opened);
        await rename(tempPath, path);
        await fsyncPath(dirname(path));
        return { key, size, sha256 };
      } catch (err) {
        if (fd !== undefined) await closeFd(fd).catch(() => {});
        await unlink(tempPath).catch(() => {});
        body.destroy();
        // No empty `snapshots/<id>/` is left for a failed put: nothing would ever list it.
        await this.removeEmptyParents(dirname(path));
        throw err;
      }
    });
  }

  async get(key: string, options: GetOptions = {}): Promise<Readable> {
    const path = this.pathOf('get', key);
    assertValidRange(this.kind, key, options.range);
    return this.observed('get', key, async () => {
      throwIfAborted(options.signal);
      // Opening first turns a missing object into NotFoundError here rather than a stream error later.
      const handle = await open(path, 'r');
      let size: number;
      try {
        const info = await handle.stat();
        if (!info.isFile()) throw Object.assign(new Error('not a regular file'), { code: 'ENOENT' });
        size = info.size;
      } catch (err) {
        await handle.close();
        throw err;
      }
      const start = options.range?.start ?? 0;
      const end = Math.min(options.range?.end ?? Infinity, size - 1);
      if (end < start) {
        await handle.close();
        return Readable.from([]);
      }
      return this.meteredDownload(key, handle.createReadStream({ start, end }), end - start + 1, options);
    });
  }

  async head(key: string, options: SignalOptions = {}): Promise<ObjectInfo> {
    const path = this.pathOf('head', key);
    return this.observed('head', key, async () => {
      throwIfAborted(options.signal);
      const info = await stat(path);
      if (!info.isFile()) throw Object.assign(new Error('not a regular file'), { code: 'ENOENT' });
      return { key, size: info.size, modifiedAt: info.mtime };
    });
  }

  async *list(prefix: string, options: SignalOptions = {}): AsyncIterable<ObjectInfo> {
    assertValidPrefix(this.kind, prefix);
    const startDir = join(this.root, prefix.slice(0, prefix.lastIndexOf('/') + 1));
    try {
      for await (const info of this.walk(startDir, options.signal)) {
        if (info.key.startsWith(prefix)) yield info;
      }
      this.observer.request('list', 'ok');
    } catch (err) {
      this.observer.request('list', 'error');
      throw this.wrap('list', prefix, err);
    }
  }

  async delete(key: string, options: SignalOptions = {}): Promise<void> {
    const path = this.pathOf('delete', key);
    await this.observed('delete', key, async () => {
      throwIfAborted(options.signal);
      try {
        await unlink(path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
      await this.removeEmptyParents(dirname(path));
    });
  }

  /**
   * Renames within the root (making the destination's folder first if missing), then, unless
   * `options.durable` is false, fsyncs the destination's folder, as a put ends. The source's
   * folder is left even when emptied: the catalog index renames pending commits out of
   * `pending/` and puts the next one there.
   */
  async rename(from: string, to: string, options: RenameOptions = {}): Promise<void> {
    const fromPath = this.pathOf('rename', from);
    const toPath = this.pathOf('rename', to);
    await this.observed('rename', from, async () => {
      throwIfAborted(options.signal);
      try {
        await rename(fromPath, toPath);
      } catch (err) {
        // ENOENT: the source is gone, or the destination's folder is missing (made again below).
        if (errnoCode(err) !== 'ENOENT') throw err;
        // A concurrent delete may prune the folder again between mkdir and rename: try again.
        for (let attempt = 1; ; attempt++) {
          await mkdir(dirname(toPath), { recursive: true }).catch((mkdirErr: unknown) => {
            if (errnoCode(mkdirErr) !== 'ENOENT') throw mkdirErr;
          });
          try {
            await rename(fromPath, toPath);
            break;
          } catch (retryErr) {
            if (errnoCode(retryErr) !== 'ENOENT' || attempt >= FOLDER_RACE_ATTEMPTS) throw retryErr;
            // The source gone is final (NotFoundError); only a pruned destination folder is retried.
            if (!(await stat(fromPath).then(() => true, () => false))) throw retryErr;
            await new Promise((resolve) => setImmediate(resolve));
          }
        }
      }
      if (options.durable !== false) await fsyncPath(dirname(toPath));
    });
  }

  /**
   * Removes the temp file a crashed put of `key` left behind (`uploadId` is the temp file's name,
   * as earlier versions passed it to `onUploadStarted`; queued jobs may still hold such tokens). A
   * missing file is fine: the put finished or was cleaned up.
   */
  async abortUpload(key: string, uploadId: string): Promise<void> {
    const path = this.pathOf('abort_upload', key);
    if (!TEMP_NAME.test(uploadId)) throw new InvalidInputError(`fs: abort upload ${key}: ${JSON.stringify(uploadId)} is not a temp file name`);
    await this.observed('abort_upload', key, async () => {
      await unlink(join(dirname(path), uploadId)).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
    });
  }

  async sweepLeftovers(prefix: string, olderThan: Date, options: SignalOptions = {}): Promise<string[]> {
    assertValidPrefix(this.kind, prefix);
    const start = join(this.root, prefix.slice(0, prefix.lastIndexOf('/') + 1));
    try {
      const removed = await sweepLeftovers({ root: this.root, start, olderThan, isTempName: (name) => TEMP_NAME.test(name), signal: options.signal });
      this.observer.request('list', 'ok');
      return removed;
    } catch (err) {
      this.observer.request('list', 'error');
      throw this.wrap('list', prefix, err);
    }
  }

  async close(): Promise<void> {}

  private pathOf(operation: string, key: string): string {
    assertValidKey(this.kind, operation, key);
    if (key.split('/').some((segment) => segment.startsWith(FS_TEMP_PREFIX))) {
      throw new InvalidInputError(`fs: ${operation} ${key}: invalid key: segments starting with "${FS_TEMP_PREFIX}" are reserved`);
    }
    return join(this.root, ...key.split('/'));
  }

  /** Copies the body into the temp file, hashing and counting on the way. */
  private async writeBody(fd: number, key: string, body: Readable, options: PutOptions): Promise<{ size: number; sha256: string }> {
    const hash = createHash('sha256');
    let size = 0;
    for await (const bytes of bodyChunks(body, options.signal)) {
      hash.update(bytes);
      try {
        // A write may be partial; loop until the chunk is on its way to disk.
        for (let offset = 0; offset < bytes.length; ) {
          const { bytesWritten } = await writeFd(fd, bytes, offset, bytes.length - offset);
          offset += bytesWritten;
        }
      } catch (err) {
        throw failBody(body, this.wrap('put', key, err));
      }
      size += bytes.length;
      this.observer.uploaded(bytes.length);
      options.onProgress?.({ loaded: size, total: options.size });
    }
    throwIfAborted(options.signal);
    return { size, sha256: hash.digest('hex') };
  }

  /** Counts bytes for progress and metrics and ties the stream to the caller's signal. */
  private meteredDownload(key: string, file: Readable, total: number, options: GetOptions): Readable {
    let loaded = 0;
    const out = new PassThrough();
    out.on('data', (chunk: Buffer) => {
      loaded += chunk.length;
      this.observer.downloaded(chunk.length);
      options.onProgress?.({ loaded, total });
    });
    file.on('error', (err) => out.destroy(this.wrap('get', key, err)));
    out.on('close', () => file.destroy());
    file.pipe(out);
    if (options.signal) addAbortSignal(options.signal, out);
    return out;
  }

  private async *walk(dir: string, signal: AbortSignal | undefined): AsyncGenerator<ObjectInfo> {
    let handle: Dir;
    try {
      handle = await opendir(dir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return;
      throw err;
    }
    for await (const entry of handle) {
      throwIfAborted(signal);
      if (entry.name.startsWith(FS_TEMP_PREFIX)) continue;
      const path = join(dir, entry.name);
      if (entry.isDirectory()) {
        yield* this.walk(path, signal);
      } else if (entry.isFile()) {
        const info = await stat(path).catch((err: NodeJS.ErrnoException) => {
          if (err.code === 'ENOENT') return undefined; // deleted while listing
          throw err;
        });
        if (info) yield { key: relative(this.root, path).split(sep).join('/'), size: info.size, modifiedAt: info.mtime };
      }
    }
  }

  /** Removes directories left empty by a delete, up to (not including) the root. */
  private async removeEmptyParents(dir: string): Promise<void> {
    while (dir !== this.root && dir.startsWith(this.root + sep)) {
      try {
        await rmdir(dir);
      } catch {
        return; // not empty, already gone, or in use by a concurrent put: leave it
      }
      dir = dirname(dir);
    }
  }

  private async observed<T>(operation: string, key: string, action: () => Promise<T>): Promise<T> {
    try {
      const result = await action();
      this.observer.request(operation, 'ok');
      return result;
    } catch (err) {
      this.observer.request(operation, 'error');
      throw this.wrap(operation, key, err);
    }
  }

  private wrap(operation: string, key: string, err: unknown): Error {
    if (err instanceof SnapworkerError) return err;
    if (isNoSpaceError(err)) {
      const why = errnoCode(err) === 'EDQUOT' ? 'disk quota exceeded' : 'no space left on device';
      return new NoSpaceError(`fs: ${operation} ${key}: ${why} in repository file://${this.root}`, { cause: err });
    }
    const message = `fs: ${operation} ${key}: ${err instanceof Error ? err.message : String(err)}`;
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && operation !== 'put') return new NotFoundError(message, { cause: err });
    if ((err as Error).name === 'AbortError') return new AbortedError(message, { cause: err });
    return new SnapworkerError(message, { cause: err });
  }
}

/**
 * Destroys the body with the put's own error when its producer listens for errors (the archive
 * writer does), so the producer fails with the cause (a full disk) instead of an echo ("output
 * stream closed"); a body nobody listens to is destroyed plainly, as an unheard error would
 * crash the process. Returns the error for the caller to throw.
 */
function failBody(body: Readable, failure: Error): Error {
  body.destroy(body.listenerCount('error') > 0 ? failure : undefined);
  return failure;
}

/**
 * How often a put or rename makes a missing folder again when a concurrent delete keeps pruning
 * it (deletes remove emptied parents): many writers committing into one lineage folder while
 * compactions empty it meet this under load.
 */
const FOLDER_RACE_ATTEMPTS = 20;

/**
 * Creates the temp file, making its directory only when it is missing (most puts go into a folder
 * that exists: a snapshot's record beside its archive, an index object into its lineage); retried
 * when a concurrent delete pruned the folder meanwhile.
 */
async function openTemp(tempPath: string): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await openFd(tempPath, 'wx');
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT' || attempt >= FOLDER_RACE_ATTEMPTS) throw err;
    }
    // Let the deleting side finish its walk up before making the folder again.
    if (attempt > 1) await new Promise((resolve) => setImmediate(resolve));
    // A concurrent delete may remove an emptied parent while mkdir walks down: the loop tries again.
    await mkdir(dirname(tempPath), { recursive: true }).catch((err: unknown) => {
      if (errnoCode(err) !== 'ENOENT') throw err;
    });
  }
}
