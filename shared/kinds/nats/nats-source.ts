import { createReadStream, createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { SourceEntry } from '../../formats/archive/archive-entry.js';
import type { SourceDescriptor } from '../../formats/archive/manifest.js';
import { NoSpaceError, NotFoundError } from '../../errors.js';
import { isNoSpaceError } from '../../fsutil/errno.js';
import { lookupStream, type StreamState } from './jetstream-api.js';
import { withNatsConnection, type NatsConnectOptions } from './nats-connection.js';
import { parseSingleNatsUri, resolveNatsProfile, type NatsEndpoint } from './nats-endpoint.js';
import { createStagingDir, type StagingDir } from '../../fsutil/staging-dir.js';
import { BACKUP_METADATA_ENTRY, SNAPSHOT_DATA_ENTRY, encodeBackupMetadata } from './stream-backup.js';
import { memoryStreamError, snapshotStream, type StreamSnapshotOptions } from './stream-snapshot.js';
import type { TransferProgress } from './transfer-meter.js';
import { profilesOf, type Source, type SourceFactory, type SourceOpenOptions, type SourceParams } from '../source.js';
import type { NatsSourceParams } from './index.js';
import type { NatsProfile } from './nats-profile.js';
import { lineageNameFrom } from '../lineage-name.js';

/** Transfer tuning for NATS sources; the defaults suit a worker, tests shorten the timeouts. */
export type NatsSourceTuning = NatsConnectOptions &
  Pick<StreamSnapshotOptions, 'chunkSize' | 'windowSize' | 'requestTimeoutMs' | 'idleTimeoutMs'> & {
    /** jsm.go-style snapshot progress (chunks and bytes received, bytes expected, bytes per second). */
    onSnapshotProgress?: (progress: TransferProgress) => void;
  };

const ENTRY_MODE = 0o644;

/**
 * Builds the factory for `nats://host:port/STREAM[?profile=name]` sources.
 *
 * The source snapshots one JetStream stream into two entries, named as `nats stream backup`
 * names its files: `backup.json` (the stream's config and state) and `stream.tar.s2` (the
 * server's snapshot bytes). The snapshot is first staged in a private temp directory under
 * `context.stagingDir` (a tar entry needs its size up front) by `prepare`; the directory is removed
 * when the iteration ends or by `release`, on every path.
 *
 * Progress: while staging, phase `reading` and `addBytes` per chunk received, as jsm.go reports
 * it; the staged entry is marked `progressCounted` so the archive writer does not count it again.
 * `estimateBytes` returns the stream state's `bytes` (what jsm.go calls bytes expected).
 *
 * `descriptor.details` holds `stream` from the start; `estimateBytes` adds the stream's state and
 * `prepare` (before the manifest is written) replaces it with the state the snapshot was taken
 * at, plus the snapshot's size and chunk count, so manifest and record say the same.
 *
 * @throws InvalidInputError (from the factory) for anything but exactly one valid URI, credentials
 *   inside the URI, or an unknown profile.
 */
export function natsSourceFactory(tuning: NatsSourceTuning = {}): SourceFactory<NatsSourceParams> {
  return (uris, params, context) =>
    new NatsStreamSource(parseSingleNatsUri(uris, 'source'), params, profilesOf<NatsProfile>(context, 'nats'), context.stagingDir, tuning);
}

/** The factory with the default tuning, as the endpoint registry loads it. */
export const createNatsSource: SourceFactory<NatsSourceParams> = natsSourceFactory();

class NatsStreamSource implements Source {
  readonly descriptor: SourceDescriptor;
  private readonly profile: NatsProfile | undefined;
  private staging: StagingDir | undefined;
  private staged: { metadata: Buffer; dataPath: string; dataSize: number; takenAt: Date } | undefined;

  constructor(
    private readonly endpoint: NatsEndpoint,
    private readonly params: SourceParams & NatsSourceParams,
    profiles: Readonly<Record<string, NatsProfile>>,
    private readonly stagingDir: string,
    private readonly tuning: NatsSourceTuning,
  ) {
    this.profile = resolveNatsProfile(endpoint, profiles);
    this.descriptor = {
      kind: 'nats',
      uri: endpoint.uri,
      name: params.name ?? lineageNameFrom(endpoint.stream, 'stream'),
      details: { stream: endpoint.stream },
    };
  }

  async estimateBytes(signal: AbortSignal): Promise<number | undefined> {
    const info = await this.connected(signal, async (nc) => lookupStream(nc, this.endpoint.stream, this.tuning.requestTimeoutMs));
    if (info === undefined) throw this.notFound();
    this.describeState(info.state);
    return info.state.bytes;
  }

  /**
   * Stages the stream's snapshot and fixes the descriptor: the state the snapshot was taken at and
   * its size go into `details` here, before the pipeline writes `manifest.json`, so the manifest
   * and the record carry the same facts. Progress: phase `reading`, bytes per chunk received.
   * Safe to call more than once; `release` (or the end of `entries`) removes what it staged.
   */
  async prepare({ signal, progress }: SourceOpenOptions): Promise<void> {
    if (this.staged) return;
    const staging = await createStagingDir(this.stagingDir, 'nats-snapshot-');
    this.staging = staging;
    const dataPath = join(staging.path, SNAPSHOT_DATA_ENTRY);
    progress.setPhase('reading');
    const snapshot = await this.connected(signal, async (nc) => {
      const info = await lookupStream(nc, this.endpoint.stream, this.tuning.requestTimeoutMs);
      if (info === undefined) throw this.notFound();
      // Refused up front, as jsm.go does, before the server starts any work.
      if (info.config.storage === 'memory') throw memoryStreamError(this.endpoint.stream);
      const out = createWriteStream(dataPath, { flags: 'wx', mode: 0o600 });
      try {
        const result = await snapshotStream(nc, this.endpoint.stream, out, {
          ...this.tuning,
          includeConsumers: !(this.params.noConsumers ?? false),
          checkMessages: this.params.checkMessages ?? false,
          signal,
          onChunk: (transfer, chunkBytes) => {
            progress.addBytes(chunkBytes);
            this.tuning.onSnapshotProgress?.(transfer);
          },
        });
        out.end();
        await finished(out);
        return result;
      } finally {
        // When the snapshot failed or was aborted, a chunk's write may still be in flight: its late
        // ERR_STREAM_DESTROYED must find a listener, or it is an uncaught exception that ends the worker.
        out.destroy();
        await finished(out).catch(() => undefined);
      }
    }).catch((err: unknown) => {
      if (!isNoSpaceError(err)) throw err;
      throw new NoSpaceError(`nats: ${this.endpoint.uri}: staging the snapshot: no space left on device in ${staging.path}`, { cause: err });
    });
    this.describeState(snapshot.state);
    this.descriptor.details!.snapshotBytes = snapshot.bytes;
    this.descriptor.details!.snapshotChunks = snapshot.chunks;
    const { size } = await stat(dataPath);
    this.staged = { metadata: encodeBackupMetadata(snapshot), dataPath, dataSize: size, takenAt: new Date() };
  }

  /** Yields `backup.json` and the staged `stream.tar.s2` (staging them first when `prepare` was not called). */
  async *entries(options: SourceOpenOptions): AsyncGenerator<SourceEntry> {
    try {
      await this.prepare(options);
      const { metadata, dataPath, dataSize, takenAt } = this.staged!;
      const { signal } = options;
      yield { path: BACKUP_METADATA_ENTRY, type: 'file', mode: ENTRY_MODE, mtime: takenAt, size: metadata.length, open: () => Readable.from([metadata]) };
      yield {
        path: SNAPSHOT_DATA_ENTRY,
        type: 'file',
        mode: ENTRY_MODE,
        mtime: takenAt,
        size: dataSize,
        progressCounted: true,
        open: () => createReadStream(dataPath, { signal }),
      };
    } finally {
      await this.release();
    }
  }

  async release(): Promise<void> {
    const staging = this.staging;
    this.staging = undefined;
    this.staged = undefined;
    await staging?.remove();
  }

  private connected<T>(signal: AbortSignal, work: Parameters<typeof withNatsConnection<T>>[3]): Promise<T> {
    return withNatsConnection(this.endpoint, this.profile, signal, work, this.tuning);
  }

  private describeState(state: StreamState): void {
    Object.assign(this.descriptor.details!, {
      messages: state.messages,
      bytes: state.bytes,
      firstSeq: state.first_seq,
      lastSeq: state.last_seq,
      consumers: state.consumer_count,
    });
  }

  private notFound(): NotFoundError {
    return new NotFoundError(`nats: ${this.endpoint.uri}: stream ${this.endpoint.stream} not found`);
  }
}
