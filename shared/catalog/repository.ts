import { Readable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { IntegrityError, NotFoundError, InvalidInputError, RepositoryMissingError, SnapworkerError } from '../errors.js';
import { isSnapshotId, isSnapshotIdPrefix, notAnIdMessage } from '../ids.js';
import type { GetOptions, ObjectInfo, PutOptions, PutResult, SignalOptions, StorageDriver } from '../storage/storage-driver.js';
import { snapshotRecordSchema, type SnapshotRecord } from './snapshot-record.js';
import { decodeUploadToken, encodeUploadToken } from './upload-token.js';
import { CatalogIndex, type CatalogIndexOptions } from './catalog-index.js';
import { mapOrdered } from '../fsutil/map-ordered.js';
import { readText } from './read-text.js';
import type { OnDamagedRecord } from './record-store.js';
import { describeFilter, matchesFilter, type SnapshotFilter } from './snapshot-filter.js';
import type { SnapshotSummary } from './snapshot-summary.js';
import { REPLICAS, replicaStorageOn, type ReplicaStorage } from './replica-storage.js';
import { KEYS } from '../crypto/key-object.js';
import type { KeySource } from '../crypto/key-source.js';
import { createRepositoryKeys } from '../crypto/repository-keys.js';
import { confinedStorage, type ConfinedStorage } from './confined-storage.js';
import { blobStorageOn, type BlobStorage } from './blob-storage.js';

const SNAPSHOTS = 'snapshots/';
/** What a repository holds besides its `config.json`: snapshots, and SQLite replicas (`shared/kinds/sqlite/replication`). */
const CONTENT_PREFIXES = [SNAPSHOTS, REPLICAS];
const RECORD_FILE = 'snapshot.json';
/** The repository's marker object, written by `init` (restic's `config`). */
const CONFIG_FILE = 'config.json';

/** `config.json` at the repository root: marks a repository as one, and names its format. */
export interface RepositoryConfig {
  v: 1;
  format: 'snapworker-repository';
  /** Layout version of this repository (DESIGN.md "Repository layout"). */
  formatVersion: 1;
  /** Random 16 hex digits, so two repositories are never mistaken for each other. */
  id: string;
  createdAt: string;
  /**
   * The snapshot format new snapshots are written in (shared/formats/registry.ts). Absent: the
   * archive format, as in every repository made before formats had names.
   */
  snapshotFormat?: string;
  /**
   * Present when the repository is encrypted (docs/encryption.md): the id of its key material,
   * which the `keys/` objects wrap. Holds nothing secret.
   */
  encryption?: { keyId: string };
  /**
   * The chunked format's store settings (chunker parameters, the id key of an unencrypted
   * repository), written by `init` for that format; shared/formats/chunked/store/store-config.ts
   * makes and validates them.
   */
  chunked?: Record<string, unknown>;
}

/** Options for storing one object of a snapshot. */
export interface SnapshotObjectOptions extends Omit<PutOptions, 'onUploadStarted'> {
  /**
   * Called when the storage starts an upload a crash would strand (an S3 multipart upload), with
   * an opaque token for `discardUpload`. The caller keeps it where a later attempt finds it.
   */
  onUploadToken?: (token: string) => void | Promise<void>;
}

export type { SnapshotFilter };

/** A snapshot directory that has objects but no record: an interrupted or failed snapshot. */
export interface IncompleteSnapshot {
  id: string;
  keys: string[];
  newestModifiedAt: Date;
}

/**
 * The repository layout on top of a storage driver (DESIGN.md "Repository layout"): `config.json`,
 * and per snapshot `snapshots/<id>/snapshot.json`, the record, written last, beside the objects
 * its format stored (`archive.tar.zst` for the archive format). A snapshot without a record is
 * incomplete: never listed, and removed by prune. Everything above reaches storage through here.
 */
export class Repository {
  /** Set once the repository was seen to exist: it does not stop existing while we run. */
  private known = false;
  /** The creation in flight, shared by concurrent `initIfMissing` calls. */
  private creating: Promise<boolean> | undefined;

  /** `config.json` once read (undefined: the repository has none, made before `init` existed). */
  private config: Promise<RepositoryConfig | undefined> | undefined;

  /** The catalog index (shared/catalog/catalog-index.ts): what `ls`, `latest` and prune read. */
  readonly index: CatalogIndex;

  /**
   * @param driver the storage underneath. Formats and the pipeline reach storage only through
   *   this class; the SQLite replica store gets only `replicaStorage()`, a view of `replicas/`.
   */
  constructor(
    readonly name: string,
    readonly driver: StorageDriver,
    indexOptions?: CatalogIndexOptions,
    /**
     * Where this worker finds the repository's key-encryption keys (worker config, never job
     * data): `init` encrypts a new repository under them, reads and writes unlock with them.
     */
    readonly keySources: readonly KeySource[] = [],
  ) {
    this.index = new CatalogIndex(this, indexOptions);
  }

  /**
   * True when the repository exists: it has its `config.json`, or (made before `init` existed, or
   * written by a SQLite replicator) snapshots or replicas. Reads only; never creates anything.
   */
  async exists(options?: SignalOptions): Promise<boolean> {
    if (this.known) return true;
    try {
      await this.driver.head(CONFIG_FILE, options);
      this.known = true;
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
      for (const prefix of CONTENT_PREFIXES) {
        for await (const _object of this.driver.list(prefix, options)) {
          this.known = true;
          break;
        }
        if (this.known) break;
      }
    }
    return this.known;
  }

  /**
   * @throws RepositoryMissingError (exit code 10) when the repository does not exist.
   */
  async requireExists(options?: SignalOptions): Promise<void> {
    if (!(await this.exists(options))) {
      throw new RepositoryMissingError(`repository ${this.name}: does not exist ("snapworker init" creates it)`);
    }
  }

  /**
   * Creates the repository: writes its `config.json`. With key sources (`options.keySources`,
   * default this repository's configured ones) it is encrypted: new key material is wrapped
   * under each source into `keys/` first, and `config.json`, written last, names it.
   * @throws SnapworkerError when it exists already; InvalidInputError (or a KMS error) when a key
   *   source cannot be used, before anything is written to `config.json`.
   */
  async init(options?: SignalOptions & { snapshotFormat?: string; keySources?: readonly KeySource[]; keyLabel?: string; chunked?: Record<string, unknown> }): Promise<RepositoryConfig> {
    if (await this.exists(options)) throw new SnapworkerError(`repository ${this.name}: already exists`);
    const id = randomBytes(8).toString('hex');
    const keySources = options?.keySources ?? this.keySources;
    const encryption = keySources.length > 0 ? await createRepositoryKeys(this, id, keySources, { label: options?.keyLabel, signal: options?.signal }) : undefined;
    const config: RepositoryConfig = {
      v: 1,
      format: 'snapworker-repository',
      formatVersion: 1,
      id,
      createdAt: new Date().toISOString(),
      ...(options?.snapshotFormat ? { snapshotFormat: options.snapshotFormat } : {}),
      ...(encryption ? { encryption: { keyId: encryption.keyId } } : {}),
      ...(options?.chunked ? { chunked: options.chunked } : {}),
    };
    const body = Buffer.from(JSON.stringify(config, null, 2) + '\n');
    await this.driver.put(CONFIG_FILE, Readable.from([body]), { signal: options?.signal, size: body.length });
    this.known = true;
    this.config = Promise.resolve(config);
    await this.index.markBuilt(options);
    return config;
  }

  /**
   * The snapshot format `config.json` names for new snapshots; undefined when it names none or
   * there is no `config.json` (the caller's default applies: the archive format). Read once.
   * @throws IntegrityError when `config.json` is not JSON.
   */
  async snapshotFormat(options?: SignalOptions): Promise<string | undefined> {
    const format = (await this.configuration(options))?.snapshotFormat;
    return typeof format === 'string' ? format : undefined;
  }

  /**
   * `config.json`'s `encryption` (the key id the `keys/` objects wrap) when the repository is
   * encrypted; undefined otherwise. Read once.
   * @throws IntegrityError when `config.json` is not JSON or its `encryption` is malformed.
   */
  async encryption(options?: SignalOptions): Promise<{ keyId: string } | undefined> {
    const encryption = (await this.configuration(options))?.encryption;
    if (encryption === undefined) return undefined;
    if (typeof encryption !== 'object' || encryption === null || typeof encryption.keyId !== 'string' || !/^[0-9a-f]{16}$/.test(encryption.keyId)) {
      throw new IntegrityError(`repository ${this.name}: ${CONFIG_FILE} has a malformed "encryption"`);
    }
    return { keyId: encryption.keyId };
  }

  /** `config.json`'s `id`; undefined for a repository without one. */
  async repositoryId(options?: SignalOptions): Promise<string | undefined> {
    const id = (await this.configuration(options))?.id;
    return typeof id === 'string' ? id : undefined;
  }

  /**
   * `config.json` as stored (undefined when the repository has none). Read once.
   * @throws IntegrityError when `config.json` is not JSON.
   */
  configuration(options?: SignalOptions): Promise<RepositoryConfig | undefined> {
    this.config ??= this.readConfig(options).catch((err: unknown) => {
      this.config = undefined; // a network error now must not stick
      throw err;
    });
    return this.config;
  }

  private async readConfig(options?: SignalOptions): Promise<RepositoryConfig | undefined> {
    let text: string;
    try {
      text = await readText(await this.driver.get(CONFIG_FILE, options));
    } catch (err) {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    }
    try {
      return JSON.parse(text) as RepositoryConfig;
    } catch (err) {
      throw new IntegrityError(`repository ${this.name}: ${CONFIG_FILE} is not JSON`, { cause: err });
    }
  }

  /**
   * Creates the repository unless it exists (`SNAPWORKER_AUTO_INIT`). Concurrent callers in this
   * process share one creation; one that lost a race with another process finds the repository
   * there and goes on. Resolves true when this call created it.
   */
  initIfMissing(options?: SignalOptions): Promise<boolean> {
    this.creating ??= (async () => {
      if (await this.exists(options)) return false;
      try {
        await this.init(options);
        return true;
      } catch (err) {
        if (await this.exists(options)) return false;
        throw err;
      }
    })().finally(() => {
      this.creating = undefined;
    });
    return this.creating;
  }


  recordKey(id: string): string {
    return `${SNAPSHOTS}${checkedId(id)}/${RECORD_FILE}`;
  }

  /**
   * Stores `body` as `snapshots/<id>/<name>` (atomically: see `StorageDriver.put`), for a format.
   * `name` is a plain file name chosen by the format, never the record's.
   */
  putSnapshotObject(id: string, name: string, body: Readable, options: SnapshotObjectOptions = {}): Promise<PutResult> {
    if (name === RECORD_FILE || !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) throw new InvalidInputError(`repository ${this.name}: "${name}" cannot name a snapshot object`);
    const key = `${SNAPSHOTS}${checkedId(id)}/${name}`;
    const { onUploadToken, ...putOptions } = options;
    return this.driver.put(key, body, {
      ...putOptions,
      ...(onUploadToken ? { onUploadStarted: (uploadId: string) => onUploadToken(encodeUploadToken({ key, uploadId })) } : {}),
    });
  }

  /**
   * Ends an upload a crashed attempt left open (from its `onUploadToken` token), so no parts stay
   * stranded. Storage without such uploads does nothing.
   * @throws InvalidInputError for a token that is not one of ours.
   */
  async discardUpload(token: string, options?: SignalOptions): Promise<void> {
    const { key, uploadId } = decodeUploadToken(token);
    await this.driver.abortUpload?.(key, uploadId, options);
  }

  /**
   * Before a retried attempt writes snapshot `id` again: removes what puts of an earlier attempt
   * that died left in the snapshot's folder and `list` never shows (a filesystem's temp files),
   * where the driver has such leftovers. Objects, the record included, are left: the new attempt
   * replaces them. Uploads recorded by token (S3 multipart) are ended by `discardUpload` instead.
   */
  async discardSnapshotLeftovers(id: string, options?: SignalOptions): Promise<void> {
    await this.driver.sweepLeftovers?.(`${SNAPSHOTS}${checkedId(id)}/`, new Date(), options);
  }

  /** Streams a stored object (a key from a record). @throws NotFoundError when absent. */
  getObject(key: string, options?: GetOptions): Promise<Readable> {
    return this.driver.get(key, options);
  }

  /** Size and time of a stored object. @throws NotFoundError when absent. */
  head(key: string, options?: SignalOptions): Promise<ObjectInfo> {
    return this.driver.head(key, options);
  }

  /**
   * The objects under `replicas/`, for the SQLite replica store (its own layout there): put, get,
   * list and delete, refusing any key outside that prefix.
   */
  replicaStorage(): ReplicaStorage {
    return replicaStorageOn(this.driver);
  }

  /**
   * The key objects under `keys/` (shared/crypto/repository-keys.ts): put, get, list and delete,
   * refusing any key outside that prefix.
   */
  keyStorage(): ConfinedStorage {
    return confinedStorage(this.driver, KEYS, 'key storage');
  }

  /** The chunked format's packs and index objects (`packs/`, `pack-index/`): see `blobStorageOn`. */
  blobStorage(): BlobStorage {
    return blobStorageOn(this.driver);
  }

  /** True when snapshot `id` has a record (is complete), whatever the record holds. */
  async hasRecord(id: string, options?: SignalOptions): Promise<boolean> {
    try {
      await this.driver.head(this.recordKey(id), options);
      return true;
    } catch (err) {
      if (err instanceof NotFoundError) return false;
      throw err;
    }
  }

  /**
   * A time-limited URL that downloads `key` without credentials.
   * @throws InvalidInputError when the storage cannot make one (a filesystem repository).
   */
  presign(key: string, expiresInSeconds: number): Promise<string> {
    if (!this.driver.presign) throw new InvalidInputError(`repository ${this.name} (${this.driver.kind}) cannot make download links`);
    return this.driver.presign(key, expiresInSeconds);
  }

  /** Releases the storage's clients and sockets. */
  async close(): Promise<void> {
    await this.driver.close?.();
  }

  /**
   * Commits a snapshot: call only after its archive is stored and checked. The record is written
   * between a pending marker and its index entry (CatalogIndex), so a crash anywhere leaves a
   * snapshot that is either not committed or found.
   */
  async putRecord(record: SnapshotRecord, options?: SignalOptions): Promise<void> {
    await this.index.committing(record, options);
    const body = Buffer.from(JSON.stringify(record, null, 2) + '\n');
    try {
      await this.driver.put(this.recordKey(record.id), Readable.from([body]), { ...options, size: body.length });
    } catch (err) {
      // Normally a failed put leaves no record and the marker is debris; it stays when the record
      // is there after all (an S3 answer lost after the write), or when that cannot be checked.
      if (!(await this.hasRecord(record.id).catch(() => true))) await this.index.abandoned(record).catch(() => {});
      throw err;
    }
    await this.index.committed(record, options);
  }

  /**
   * The record of snapshot `id`.
   * @throws NotFoundError when there is no complete snapshot with that id.
   * @throws IntegrityError when the stored record is not a valid record.
   */
  async getRecord(id: string, options?: SignalOptions): Promise<SnapshotRecord> {
    let text: string;
    try {
      text = await readText(await this.driver.get(this.recordKey(id), options), `record of ${id}`);
    } catch (err) {
      if (err instanceof NotFoundError) throw new NotFoundError(`repository ${this.name}: no snapshot ${id}`, { cause: err });
      throw err;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new IntegrityError(`repository ${this.name}: record of ${id} is not JSON`, { cause: err });
    }
    const result = snapshotRecordSchema.safeParse(parsed);
    if (!result.success || result.data.id !== id) {
      throw new IntegrityError(`repository ${this.name}: record of ${id} is invalid: ${result.success ? 'id mismatch' : result.error.issues[0]?.message}`);
    }
    return result.data;
  }

  /**
   * Complete snapshots matching `filter`, oldest first (ids sort by time), read from the records
   * themselves: every record is read. `index.snapshots` answers the same from the catalog index.
   * @param options.onDamaged told about each record that is not a valid record (and then left
   *   out), so one damaged record does not hide every other snapshot; without it such a record
   *   throws its IntegrityError.
   */
  async list(filter: SnapshotFilter = {}, options?: SignalOptions & { onDamaged?: OnDamagedRecord }): Promise<SnapshotRecord[]> {
    const records: SnapshotRecord[] = [];
    for await (const record of this.records(options)) if (matchesFilter(record, filter)) records.push(record);
    return records;
  }

  /** Every record, oldest first, read 16 at a time; `onDamaged` as for `list`. */
  async *records(options?: SignalOptions & { onDamaged?: OnDamagedRecord }): AsyncGenerator<SnapshotRecord> {
    const { complete } = await this.scan(options);
    const read = async (id: string): Promise<SnapshotRecord | undefined> => {
      try {
        return await this.getRecord(id, options);
      } catch (err) {
        if (err instanceof NotFoundError) return undefined; // deleted while listing
        if (err instanceof IntegrityError && options?.onDamaged) {
          options.onDamaged(id, err);
          return undefined;
        }
        throw err;
      }
    };
    for await (const record of mapOrdered(complete, 16, read)) if (record) yield record;
  }

  /**
   * Resolves `ref` to a record: an id, a unique prefix of an id or of its hex part (the short id
   * `ls` shows, like restic's), or `latest` within `filter`.
   * `latest` without a source or label filter is the newest snapshot when the repository holds
   * one lineage; with several it is ambiguous (restic picks across all, which restores the wrong
   * lineage too easily).
   * @throws InvalidInputError for `latest` without a filter in a repository of several lineages
   *   (naming them), for an id or prefix whose snapshot does not match `filter`, for something that is no id prefix (`isSnapshotIdPrefix`), and for an
   *   ambiguous prefix (naming the candidates).
   * @throws NotFoundError when nothing matches.
   */
  async resolve(ref: string, filter: SnapshotFilter = {}, options?: SignalOptions): Promise<SnapshotRecord> {
    if (ref !== 'latest') {
      const record = await this.getRecord(isSnapshotId(ref) ? ref : await this.expandPrefix(ref, options), options);
      // A filter beside an id is a check, never ignored (`verify ID --label app=x` must not read another app's snapshot).
      if (!matchesFilter(record, filter)) throw new InvalidInputError(`snapshot ${record.id} does not match ${describeFilter(filter)}`);
      return record;
    }
    // Newest first from the index; an entry whose record is gone (removed outside snapworker,
    // not yet compacted away) is passed over: the record is the truth.
    const candidates = await this.index.snapshots(filter, options);
    const what = describeFilter(filter);
    if (!what) {
      const lineages = [...new Set(candidates.map((snapshot) => snapshot.source.name))].sort();
      if (lineages.length > 1) {
        const shown = lineages.slice(0, 10).join(', ') + (lineages.length > 10 ? `, and ${lineages.length - 10} more` : '');
        throw new InvalidInputError(
          `snapshot "latest" is ambiguous: repository ${this.name} holds ${lineages.length} lineages (${shown}); choose one by source (--source) or labels (--label)`,
        );
      }
    }
    for (let i = candidates.length - 1; i >= 0; i--) {
      try {
        return await this.getRecord(candidates[i]!.id, options);
      } catch (err) {
        if (!(err instanceof NotFoundError)) throw err;
      }
    }
    throw new NotFoundError(`repository ${this.name}: ${what ? `no snapshot matches ${what}` : 'holds no snapshot'}`);
  }

  /**
   * The one complete snapshot id that starts with `prefix`, or whose hex part does.
   * @throws InvalidInputError for a malformed or too short prefix, or an ambiguous one.
   * @throws NotFoundError when no snapshot matches.
   */
  async expandPrefix(prefix: string, options?: SignalOptions): Promise<string> {
    if (!isSnapshotIdPrefix(prefix)) throw new InvalidInputError(notAnIdMessage(prefix));
    const { complete } = await this.scan(options);
    const matching = complete.filter((id) => id.startsWith(prefix) || id.slice(id.indexOf('-') + 1).startsWith(prefix));
    if (matching.length === 1) return matching[0]!;
    if (matching.length === 0) throw new NotFoundError(`repository ${this.name}: no snapshot ${prefix}`);
    const shown = matching.slice(0, 10).join(', ') + (matching.length > 10 ? `, and ${matching.length - 10} more` : '');
    throw new InvalidInputError(`snapshot id prefix "${prefix}" is ambiguous: ${shown}`);
  }

  /**
   * Deletes a snapshot: its index entry first (a tombstone), then the record, so the snapshot
   * stops being listed before any of its data goes, then every other object under its directory.
   * For a snapshot without a readable record (incomplete, damaged) there is no entry to remove.
   */
  async delete(id: string, options?: SignalOptions): Promise<void> {
    const record = await this.getRecord(id, options).catch((err: unknown) => {
      if (err instanceof NotFoundError || err instanceof IntegrityError) return undefined;
      throw err;
    });
    await this.deleteSnapshots(record ? [record] : [], options);
    if (!record) await this.deleteObjects(id, options);
  }

  /**
   * Deletes complete snapshots known by their summaries (prune, `rm --all`): one tombstone object
   * per lineage for all of them first, then each snapshot's record and data.
   */
  async deleteSnapshots(snapshots: readonly SnapshotSummary[], options?: SignalOptions): Promise<void> {
    if (snapshots.length === 0) return;
    await this.index.forget(snapshots, options);
    for (const { id } of snapshots) await this.deleteObjects(id, options);
  }

  /** The record first, then every other object of the snapshot. */
  private async deleteObjects(id: string, options?: SignalOptions): Promise<void> {
    await this.driver.delete(this.recordKey(id), options);
    for await (const object of this.driver.list(`${SNAPSHOTS}${checkedId(id)}/`, options)) {
      await this.driver.delete(object.key, options);
    }
  }

  /**
   * Removes snapshot folders that hold no object, and temp files of dead puts, last changed
   * before `olderThan` (a failed snapshot of an older version, a crash between a folder and its
   * first file), where the driver has such leftovers. Resolves with the ids of folders removed.
   */
  async sweepSnapshotLeftovers(olderThan: Date, options?: SignalOptions): Promise<string[]> {
    const removed = (await this.driver.sweepLeftovers?.(SNAPSHOTS, olderThan, options)) ?? [];
    return removed.map((key) => key.slice(SNAPSHOTS.length).replace(/\/$/, '')).filter((id) => isSnapshotId(id));
  }

  /** Snapshot ids with a record, and snapshot directories without one. */
  async scan(options?: SignalOptions): Promise<{ complete: string[]; incomplete: IncompleteSnapshot[] }> {
    const byId = new Map<string, { keys: string[]; hasRecord: boolean; newest: Date }>();
    for await (const object of this.driver.list(SNAPSHOTS, options)) {
      const [id, file] = object.key.slice(SNAPSHOTS.length).split('/', 2);
      if (!id || !file || !isSnapshotId(id)) continue;
      const entry = byId.get(id) ?? { keys: [], hasRecord: false, newest: new Date(0) };
      entry.keys.push(object.key);
      if (file === RECORD_FILE) entry.hasRecord = true;
      if (object.modifiedAt > entry.newest) entry.newest = object.modifiedAt;
      byId.set(id, entry);
    }
    const ids = [...byId.keys()].sort();
    return {
      complete: ids.filter((id) => byId.get(id)!.hasRecord),
      incomplete: ids
        .filter((id) => !byId.get(id)!.hasRecord)
        .map((id) => ({ id, keys: byId.get(id)!.keys, newestModifiedAt: byId.get(id)!.newest })),
    };
  }
}

function checkedId(id: string): string {
  if (!isSnapshotId(id)) throw new InvalidInputError(`"${id}" is not a snapshot id (expected like 20261122T031500123Z-1a2b3c4d)`);
  return id;
}
