import { createReadStream, createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { addAbortSignal, type Readable } from 'node:stream';
import type { NatsConnection } from '@nats-io/transport-node';
import { pipeline } from 'node:stream/promises';
import type { EntryHeader } from '../../formats/archive/archive-entry.js';
import type { Manifest } from '../../formats/archive/manifest.js';
import { IntegrityError, InvalidInputError } from '../../errors.js';
import { deleteStream, lookupStream } from './jetstream-api.js';
import { withNatsConnection, type NatsConnectOptions } from './nats-connection.js';
import { parseNatsUri, parseSingleNatsUri, resolveNatsProfile, type NatsEndpoint } from './nats-endpoint.js';
import { createStagingDir, type StagingDir } from '../../fsutil/staging-dir.js';
import {
  BACKUP_METADATA_ENTRY,
  MAX_BACKUP_METADATA_BYTES,
  SNAPSHOT_DATA_ENTRY,
  parseBackupMetadata,
  type StreamBackupMetadata,
} from './stream-backup.js';
import { restoreStream, type StreamRestoreOptions } from './stream-restore.js';
import type { TransferProgress } from './transfer-meter.js';
import { profilesOf } from '../source.js';
import type { RestoreOptions, RestoreResult, RestoreSession, RestoreTarget, TargetFactory } from '../restore-target.js';
import type { NatsTargetParams } from './index.js';
import type { NatsProfile } from './nats-profile.js';

/** Transfer tuning for NATS targets; the defaults suit a worker, tests shorten the timeouts. */
export type NatsTargetTuning = NatsConnectOptions &
  Pick<StreamRestoreOptions, 'chunkSize' | 'maxChunksInFlight' | 'requestTimeoutMs' | 'chunkTimeoutMs' | 'finishTimeoutMs'> & {
    /** jsm.go-style restore progress (chunks and bytes sent, bytes per second), after each acknowledged chunk. */
    onRestoreProgress?: (progress: TransferProgress) => void;
  };

/**
 * Builds the factory for `nats://host:port/STREAM[?profile=name]` restore targets.
 *
 * - The archive's stream must be the URI's stream: the server cannot rename a stream on restore
 *   (jsm.go refuses too), so another name is refused in `begin`.
 * - An existing stream is refused unless the job sets `replace`. With `replace`, the existing
 *   stream is deleted in `commit`, that is only after the whole archive was received, staged and
 *   verified, and right before the restore starts. Replace does not make the swap atomic: if the
 *   restore itself then fails, the old stream is already gone (restore the snapshot again).
 * - `params.streamConfig` overrides fields of the saved config (placement, replicas, limits, ...);
 *   a `name` in it is refused.
 * - `stream.tar.s2` is staged to a temp file under `context.stagingDir` while the archive is read;
 *   nothing reaches the server before `commit`. The temp directory is removed by `commit` (on
 *   success and failure) and by `abort`.
 *
 * Progress: the target reports no bytes to the job's sink (the pipeline already counted the
 * archive); the upload in `commit` runs under the pipeline's `committing` phase. jsm.go-style
 * detail (chunks, bytes sent, bytes per second) goes to `tuning.onRestoreProgress`.
 *
 * @throws InvalidInputError (from the factory) for anything but exactly one valid URI, credentials
 *   inside it, an unknown profile, or a `streamConfig` that is not an object or names the stream.
 */
export function natsTargetFactory(tuning: NatsTargetTuning = {}): TargetFactory<NatsTargetParams> {
  return (uris, params, context) =>
    new NatsStreamTarget(parseSingleNatsUri(uris, 'target'), params, profilesOf<NatsProfile>(context, 'nats'), context.stagingDir, tuning);
}

/** The factory with the default tuning, as the endpoint registry loads it. */
export const createNatsTarget: TargetFactory<NatsTargetParams> = natsTargetFactory();

class NatsStreamTarget implements RestoreTarget {
  readonly uri: string;
  readonly accepts = ['nats'] as const;
  private readonly profile: NatsProfile | undefined;
  private readonly overrides: Record<string, unknown>;

  constructor(
    private readonly endpoint: NatsEndpoint,
    params: NatsTargetParams,
    profiles: Readonly<Record<string, NatsProfile>>,
    private readonly stagingDir: string,
    private readonly tuning: NatsTargetTuning,
  ) {
    this.uri = endpoint.uri;
    this.profile = resolveNatsProfile(endpoint, profiles);
    this.overrides = checkOverrides(params.streamConfig, endpoint);
  }

  /**
   * @throws InvalidInputError when the archive holds another stream, or the
   *   stream exists and `replace` is not set; connection errors when the server cannot be asked.
   */
  async begin(manifest: Manifest, options: RestoreOptions): Promise<RestoreSession> {
    checkSameStream(archivedStreamName(manifest), this.endpoint);
    if (!options.replace) await this.refuseExisting(options.signal);
    const staging = await createStagingDir(this.stagingDir, 'nats-restore-');
    return new NatsRestoreSession(this, staging, options);
  }

  /** Deletes the stream when it exists and `replace` is set, refuses it otherwise. */
  private async replaceOrRefuseExisting(nc: NatsConnection, replace: boolean): Promise<void> {
    const existing = await lookupStream(nc, this.endpoint.stream, this.tuning.requestTimeoutMs);
    if (existing === undefined) return;
    if (!replace) throw this.existsError();
    await deleteStream(nc, this.endpoint.stream, this.tuning.requestTimeoutMs);
  }

  /** Checks `backup.json` as soon as it arrives, before the big entry is staged. */
  checkMetadata(metadata: StreamBackupMetadata): void {
    checkSameStream(metadata.config.name, this.endpoint);
  }

  /** Restores the staged snapshot (deleting the existing stream first under `replace`). */
  async restore(metadata: StreamBackupMetadata, dataPath: string, options: RestoreOptions): Promise<void> {
    const config = { ...metadata.config, ...this.overrides };
    await withNatsConnection(
      this.endpoint,
      this.profile,
      options.signal,
      async (nc) => {
        await this.replaceOrRefuseExisting(nc, options.replace);
        // restoreStream re-slices into its chunk size; this only sets the read size.
        const data = createReadStream(dataPath, { highWaterMark: 256 * 1024 });
        try {
          await restoreStream(nc, { config, state: metadata.state }, data, {
            ...this.tuning,
            signal: options.signal,
            onChunk: this.tuning.onRestoreProgress,
          });
        } finally {
          data.destroy();
        }
      },
      this.tuning,
    );
  }

  private async refuseExisting(signal: AbortSignal): Promise<void> {
    const existing = await withNatsConnection(
      this.endpoint,
      this.profile,
      signal,
      (nc) => lookupStream(nc, this.endpoint.stream, this.tuning.requestTimeoutMs),
      this.tuning,
    );
    if (existing !== undefined) throw this.existsError();
  }

  private existsError(): InvalidInputError {
    return new InvalidInputError(
      `nats: restore to ${this.uri}: stream ${this.endpoint.stream} already exists; replace it with --replace (job field "replace": true)`,
    );
  }
}

/** Stages the two entries of a NATS snapshot; `commit` hands them to the server. */
class NatsRestoreSession implements RestoreSession {
  private metadata: StreamBackupMetadata | undefined;
  private dataPath: string | undefined;
  private entries = 0;
  private bytes = 0;

  constructor(
    private readonly target: NatsStreamTarget,
    private readonly staging: StagingDir,
    private readonly options: RestoreOptions,
  ) {}

  /** @throws IntegrityError for an unexpected, duplicate or oversized entry or a bad `backup.json`. */
  async write(header: EntryHeader, body: Readable | undefined): Promise<void> {
    if (header.type !== 'file' || body === undefined) {
      throw new IntegrityError(`nats: restore to ${this.target.uri}: unexpected ${header.type} entry ${header.path}`);
    }
    if (header.path === BACKUP_METADATA_ENTRY) {
      this.refuseDuplicate(this.metadata !== undefined, header.path);
      // Tied to the job's signal: an abort mid-entry must end this read even if the body never ends.
      const metadata = parseBackupMetadata(await readSmall(addAbortSignal(this.options.signal, body), header));
      this.target.checkMetadata(metadata);
      this.metadata = metadata;
    } else if (header.path === SNAPSHOT_DATA_ENTRY) {
      this.refuseDuplicate(this.dataPath !== undefined, header.path);
      const path = join(this.staging.path, SNAPSHOT_DATA_ENTRY);
      await pipeline(body, createWriteStream(path, { flags: 'wx', mode: 0o600 }), { signal: this.options.signal });
      this.dataPath = path;
    } else {
      throw new IntegrityError(`nats: restore to ${this.target.uri}: unexpected entry ${header.path}`);
    }
    this.entries += 1;
    this.bytes += header.size;
  }

  async commit(): Promise<RestoreResult> {
    try {
      if (this.metadata === undefined || this.dataPath === undefined) {
        const missing = this.metadata === undefined ? BACKUP_METADATA_ENTRY : SNAPSHOT_DATA_ENTRY;
        throw new IntegrityError(`nats: restore to ${this.target.uri}: the archive has no ${missing}`);
      }
      await this.target.restore(this.metadata, this.dataPath, this.options);
      return { target: this.target.uri, entries: this.entries, bytes: this.bytes };
    } finally {
      await this.staging.remove();
    }
  }

  async abort(): Promise<void> {
    await this.staging.remove();
  }

  private refuseDuplicate(seen: boolean, path: string): void {
    if (seen) throw new IntegrityError(`nats: restore to ${this.target.uri}: duplicate entry ${path}`);
  }
}

function checkOverrides(overrides: Record<string, unknown> | undefined, endpoint: NatsEndpoint): Record<string, unknown> {
  if (overrides === undefined) return {};
  if (overrides === null || typeof overrides !== 'object' || Array.isArray(overrides)) {
    throw new InvalidInputError(`nats: restore to ${endpoint.uri}: streamConfig must be an object of stream config fields`);
  }
  if (Object.hasOwn(overrides, 'name')) {
    throw new InvalidInputError(
      `nats: restore to ${endpoint.uri}: streamConfig may not set name; the stream name may not be changed during restore`,
    );
  }
  return { ...overrides };
}

/** The stream an archive holds, from the manifest: `details.stream`, else the source URI's path. */
function archivedStreamName(manifest: Manifest): string {
  const fromDetails = manifest.source.details?.stream;
  if (typeof fromDetails === 'string' && fromDetails !== '') return fromDetails;
  try {
    return parseNatsUri(new URL(manifest.source.uri)).stream;
  } catch (err) {
    throw new IntegrityError(`nats: manifest names no stream (source uri ${manifest.source.uri})`, { cause: err });
  }
}

function checkSameStream(archived: string, endpoint: NatsEndpoint): void {
  if (archived !== endpoint.stream) {
    throw new InvalidInputError(
      `nats: restore to ${endpoint.uri}: the snapshot holds stream ${archived}; ` +
        `the stream name may not be changed during restore (restore to nats://${endpoint.server}/${archived})`,
    );
  }
}

/** Reads an entry small enough to hold in memory, refusing anything over the metadata limit. */
async function readSmall(body: Readable, header: EntryHeader): Promise<Buffer> {
  if (header.size > MAX_BACKUP_METADATA_BYTES) {
    throw new IntegrityError(`nats: ${header.path} is ${header.size} bytes, over the ${MAX_BACKUP_METADATA_BYTES} byte limit`);
  }
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of body) {
    length += (chunk as Buffer).length;
    if (length > MAX_BACKUP_METADATA_BYTES) throw new IntegrityError(`nats: ${header.path} exceeds its declared size`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}
