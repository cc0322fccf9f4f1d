import { IntegrityError } from '../../errors.js';
import { BACKUP_METADATA_ENTRY, MAX_BACKUP_METADATA_BYTES, SNAPSHOT_DATA_ENTRY, parseBackupMetadata } from '../../kinds/nats/stream-backup.js';
import { DATABASE_ENTRY_PREFIX } from '../../kinds/sqlite/sqlite-uri.js';
import { postgresPayloadLayout } from '../../kinds/postgres/dump-layout.js';
import type { EntryHeader } from './archive-entry.js';
import type { Manifest } from './manifest.js';
import { showPath } from './safe-path.js';

/**
 * The structure of one kind's payload (docs/archive-format.md, "Payload per source kind"): which
 * entries may appear, of which type, and which must. `verify` and `restore` both read through
 * it, so an archive one of them refuses the other refuses too.
 */
export interface PayloadLayout {
  /** @throws IntegrityError for an entry this kind's payload cannot hold. */
  check(header: EntryHeader): void;
  /** After the last payload entry. @throws IntegrityError for a required entry that never came. */
  end(): void;
  /**
   * For a small file whose content restore parses (NATS `backup.json`): the most bytes it may
   * have. The reader then refuses a bigger one and hands the bytes to `checkContent`.
   */
  contentLimit?(header: EntryHeader): number | undefined;
  /** @throws IntegrityError when the content is not what restore accepts. */
  checkContent?(header: EntryHeader, bytes: Buffer): void;
}

/** Source kinds whose archives this version can restore. */
export const PAYLOAD_KINDS = ['dir', 'nats', 'sqlite', 'postgres'] as const;

/**
 * The layout for the manifest's source kind.
 * @throws IntegrityError for a kind this version does not know (a newer writer, or tampering):
 *   verifying what could never be restored would report a false OK.
 */
export function payloadLayout(manifest: Manifest): PayloadLayout {
  const kind = manifest.source.kind;
  switch (kind) {
    case 'dir':
      return dirLayout();
    case 'nats':
      return {
        ...fixedFilesLayout('nats', [BACKUP_METADATA_ENTRY, SNAPSHOT_DATA_ENTRY]),
        contentLimit: (header) => (header.path === BACKUP_METADATA_ENTRY ? MAX_BACKUP_METADATA_BYTES : undefined),
        checkContent: (_header, bytes) => void parseBackupMetadata(bytes),
      };
    case 'sqlite':
      return sqliteLayout();
    case 'postgres':
      return postgresPayloadLayout();
    default:
      throw new IntegrityError(`archive: manifest.json: unknown source kind ${JSON.stringify(kind)} (known: ${PAYLOAD_KINDS.join(', ')})`);
  }
}

function refuse(kind: string, header: EntryHeader, expected: string): never {
  throw new IntegrityError(`archive: entry ${showPath(header.path)}: a ${header.type} does not belong in a ${kind} archive (expected ${expected})`);
}

/** `data` (a directory: the restored root) and everything below `data/`. */
function dirLayout(): PayloadLayout {
  return {
    check(header) {
      if (header.path === 'data') {
        if (header.type !== 'directory') refuse('dir', header, 'data/ as a directory');
      } else if (!header.path.startsWith('data/')) {
        refuse('dir', header, 'entries under data/');
      }
    },
    end() {},
  };
}

/** Exactly these regular files, each once. */
function fixedFilesLayout(kind: string, names: readonly string[]): PayloadLayout {
  const seen = new Set<string>();
  return {
    check(header) {
      if (header.type !== 'file' || !names.includes(header.path)) refuse(kind, header, `the files ${names.join(', ')}`);
      if (seen.has(header.path)) throw new IntegrityError(`archive: entry ${showPath(header.path)}: appears twice`);
      seen.add(header.path);
    },
    end() {
      const missing = names.find((name) => !seen.has(name));
      if (missing) throw new IntegrityError(`archive: a ${kind} archive needs ${missing}, which is missing`);
    },
  };
}

/** One or more regular files `databases/<name>`. */
function sqliteLayout(): PayloadLayout {
  let databases = 0;
  return {
    check(header) {
      const name = header.path.startsWith(DATABASE_ENTRY_PREFIX) ? header.path.slice(DATABASE_ENTRY_PREFIX.length) : '';
      if (header.type !== 'file' || name === '' || name.includes('/')) refuse('sqlite', header, `${DATABASE_ENTRY_PREFIX}<name> files`);
      databases += 1;
    },
    end() {
      if (databases === 0) throw new IntegrityError('archive: a sqlite archive needs at least one database, and holds none');
    },
  };
}
