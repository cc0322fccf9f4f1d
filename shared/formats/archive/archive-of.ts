import type { SnapshotRecord } from '../../catalog/snapshot-record.js';
import { IntegrityError } from '../../errors.js';

/** The record's archive. @throws IntegrityError when an archive-format record has none. */
export function archiveOf(record: SnapshotRecord): NonNullable<SnapshotRecord['archive']> {
  if (!record.archive) throw new IntegrityError(`snapshot ${record.id}: archive record without an archive`);
  return record.archive;
}
