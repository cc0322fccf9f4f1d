import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import type { WalFile } from './wal-reader.js';

/**
 * A WAL file read with synchronous calls behind the promise-returning `WalFile` shape, for the
 * moments the replicator holds the database's write lock. Its promises are already settled, so
 * awaiting them runs only microtasks: no timer or I/O callback of this process runs until the
 * lock is released. An application writing from the same process (a replicator in-process, or
 * a test) would otherwise get its turn while we hold the lock, wait for it in SQLite's busy
 * handler, which blocks the event loop, and never see it released (`database is locked`).
 */
export class SyncWalFile implements WalFile {
  private constructor(private readonly fd: number) {}

  /** The open `-wal` of `dbPath`, or undefined when there is none. */
  static open(dbPath: string): SyncWalFile | undefined {
    try {
      return new SyncWalFile(openSync(`${dbPath}-wal`, 'r'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }> {
    try {
      return Promise.resolve({ bytesRead: readSync(this.fd, buffer, offset, length, position) });
    } catch (err) {
      return Promise.reject(err);
    }
  }

  stat(): Promise<{ size: number }> {
    try {
      return Promise.resolve({ size: fstatSync(this.fd).size });
    } catch (err) {
      return Promise.reject(err);
    }
  }

  close(): void {
    closeSync(this.fd);
  }
}
