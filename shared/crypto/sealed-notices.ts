import { InvalidInputError } from '../errors.js';
import type { Repository } from '../catalog/repository.js';
import type { SnapshotRecord } from '../catalog/snapshot-record.js';
import { NOTICE_KINDS } from '../kinds/notices.js';
import { z } from 'zod';
import { aeadOpen, aeadSeal } from './aead.js';
import { unlockRepository } from './repository-keys.js';

/**
 * The paths a record's notices name (`notices.first`), kept out of the plaintext record of an
 * encrypted repository: the record must stay readable without a key (listing, prune), yet no file
 * name may be stored in the clear (docs/encryption.md). In the stored record `first` is empty and
 * `sealed` holds the named notices as JSON under the repository data key (AES-256-GCM, `aead.ts`),
 * bound to the snapshot id; `show`, with the key, opens them again. Counts and kinds stay plain.
 */
type Notices = NonNullable<SnapshotRecord['notices']>;

const namedNotices = z.array(z.object({ kind: z.enum(NOTICE_KINDS), path: z.string(), reason: z.string() }));

/** `record` as an encrypted repository stores it: named notices sealed; unchanged when there are none or the record is not encrypted. */
export async function sealRecordNotices(repository: Repository, record: SnapshotRecord, signal?: AbortSignal): Promise<SnapshotRecord> {
  const notices = record.notices;
  if (record.keyId === undefined || !notices || notices.first.length === 0) return record;
  const key = await unlockRepository(repository, { signal });
  if (!key) throw new InvalidInputError(`repository ${repository.name}: snapshot ${record.id} is encrypted, the repository is not`);
  const sealed = aeadSeal(key.dataKey, Buffer.from(JSON.stringify(notices.first)), aad(record.id)).toString('base64');
  return { ...record, notices: { ...notices, first: [], sealed } };
}

/**
 * `record` with its sealed notices opened (for `show` and copies).
 * `ifUnlockable`: a host without the repository's key gets the record as stored (sealed), instead
 * of the error; the record is readable without a key, only these names are not.
 * @throws IntegrityError when the sealed notices were tampered with; InvalidInputError when the
 *   repository cannot be unlocked (`unlockRepository`) and `ifUnlockable` is not set.
 */
export async function openRecordNotices(repository: Repository, record: SnapshotRecord, options: { signal?: AbortSignal; ifUnlockable?: boolean } = {}): Promise<SnapshotRecord> {
  const notices = record.notices;
  if (notices?.sealed === undefined) return record;
  const unlocking = unlockRepository(repository, { signal: options.signal });
  const key = options.ifUnlockable ? await unlocking.catch((err: unknown) => (err instanceof InvalidInputError ? undefined : Promise.reject(err))) : await unlocking;
  if (!key) return record;
  const opened = aeadOpen(key.dataKey, Buffer.from(notices.sealed, 'base64'), aad(record.id), `snapshot ${record.id}: sealed notices`);
  const { sealed: _sealed, ...rest } = notices;
  const first: Notices['first'] = namedNotices.parse(JSON.parse(opened.toString('utf8')));
  return { ...record, notices: { ...rest, first } };
}

function aad(snapshotId: string): Buffer {
  return Buffer.from(`snapworker notices ${snapshotId}`);
}
