/*
 * TEMPORARY: the planned API of shared/formats/chunked/store/ (branch chunked-store), declared
 * here until it lands; replaced by imports from './store/index.js' on merge.
 */
import type { Readable } from 'node:stream';
import type { Repository } from '../../catalog/repository.js';
import type { SignalOptions } from '../../storage/storage-driver.js';

export type BlobType = 'data' | 'tree';

export interface BlobStore {
  save(type: BlobType, plaintext: Buffer, options?: SignalOptions): Promise<{ id: string; stored: boolean; storedBytes: number }>;
  has(id: string): boolean;
  size(id: string): number | undefined;
  load(id: string, options?: SignalOptions): Promise<Buffer>;
  loadMany(ids: Iterable<string> | AsyncIterable<string>, options?: SignalOptions & { concurrency?: number }): AsyncIterable<{ id: string; data: Buffer }>;
  flush(options?: SignalOptions): Promise<void>;
  close(): Promise<void>;
}

export declare function chunkStream(source: Readable | AsyncIterable<Buffer>): AsyncIterable<Buffer>;
export declare function openBlobStore(repository: Repository, options: SignalOptions): Promise<BlobStore>;
export declare function collectGarbage(repository: Repository, options: SignalOptions & { live: (id: string) => boolean; olderThan: Date; dryRun: boolean }): Promise<string[]>;
