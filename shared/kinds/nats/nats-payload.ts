import type { PayloadLayout } from '../payload-layout.js';
import { fixedFilesLayout } from '../payload-rules.js';
import { BACKUP_METADATA_ENTRY, MAX_BACKUP_METADATA_BYTES, SNAPSHOT_DATA_ENTRY, parseBackupMetadata } from './stream-backup.js';

/** A stream snapshot: `backup.json` (parsed and checked, as restore parses it) and `stream.tar.s2`. */
export function natsPayload(): PayloadLayout {
  return {
    ...fixedFilesLayout('nats', [BACKUP_METADATA_ENTRY, SNAPSHOT_DATA_ENTRY]),
    contentLimit: (header) => (header.path === BACKUP_METADATA_ENTRY ? MAX_BACKUP_METADATA_BYTES : undefined),
    checkContent: (_header, bytes) => void parseBackupMetadata(bytes),
  };
}
