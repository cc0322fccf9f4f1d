import type { IntegrityError } from '../errors.js';
import type { SignalOptions, StorageDriver } from '../storage/storage-driver.js';
import type { SnapshotRecord } from './snapshot-record.js';

/** Told about a record that is not a valid record (and then left out). */
export type OnDamagedRecord = (id: string, err: IntegrityError) => void;

/**
 * What the catalog index needs of a repository: its records, the truth the index is built from.
 * `Repository` is one; the index depends on this shape only, so the two do not import each other.
 */
export interface RecordStore {
  readonly name: string;
  readonly driver: StorageDriver;
  recordKey(id: string): string;
  /**
   * @throws NotFoundError when the snapshot has no record.
   * @throws IntegrityError when the stored record is not a valid record.
   */
  getRecord(id: string, options?: SignalOptions): Promise<SnapshotRecord>;
  /** True when snapshot `id` has a record (one HEAD, nothing read). */
  hasRecord(id: string, options?: SignalOptions): Promise<boolean>;
  /** Every record, oldest first; damaged ones go to `onDamaged` (or throw without it). */
  records(options?: SignalOptions & { onDamaged?: OnDamagedRecord }): AsyncIterable<SnapshotRecord>;
}
