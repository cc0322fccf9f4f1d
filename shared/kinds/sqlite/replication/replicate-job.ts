import os from 'node:os';
import path from 'node:path';
import { CANCELLED_REASON } from '../../../../jobs/cancel-channel.js';
import type { ReplicateJobResult } from '../../../../jobs/results.js';
import { AbortedError, errorMessage, InvalidInputError } from '../../../errors.js';
import type { ReplicationChange } from '../../../events/job-events.js';
import type { Logger } from '../../../logging.js';
import type { ReplicationMetrics } from '../../../metrics/replication-metrics.js';
import type { ReplicaStorage } from '../../../catalog/replica-storage.js';
import { lineageNameFrom } from '../../lineage-name.js';
import type { EndpointContext } from '../../source.js';
import { parseSqliteUris } from '../sqlite-uri.js';
import { applyReplicaRetention } from './replica-retention.js';
import { ReplicaStore } from './replica-store.js';
import type { ReplicationStatus } from './replication-status.js';
import { SqliteReplicator, type ReplicationEvent, type ShippedPosition } from './replicator.js';

/** A replicate job to run (job data in docs/jobs.md), with what the worker gives it. */
export interface ReplicateRequest {
  /** The repository's `replicaStorage()`. */
  storage: ReplicaStorage;
  /** `sqlite:///abs/path/db.sqlite`; checked against the allowed paths. */
  source: string;
  /** Replica name; default the file's base name without extension (as a snapshot's lineage). */
  name?: string;
  /** Pause between syncs, ms. */
  intervalMs: number;
  /** Keep every point of this many ms restorable and remove what none needs; default keep all. */
  retentionMs?: number;
  endpoints: EndpointContext;
  signal: AbortSignal;
  /** The status the job held when this attempt began: another worker ran it before (takeover). */
  previous?: ReplicationStatus;
  /** The job's status after each sync, at most once a second (BullMQ job progress). Must not throw. */
  onStatus?: (status: ReplicationStatus) => void;
  /** Started, moved here, new generation (NATS events). Must not throw. */
  onChange?: (change: ReplicationChange) => void;
  metrics?: ReplicationMetrics;
  logger?: Logger;
}

/** How often status goes to the job at most: a Redis write per replicator per second at most. */
const STATUS_EVERY_MS = 1000;

/** The replica name a job gets when it names none: the file's base name without extension. */
export function replicaNameOf(dbPath: string): string {
  const base = path.basename(dbPath);
  return lineageNameFrom(base.slice(0, base.length - path.extname(base).length), 'database');
}

/**
 * Runs one database's replicator for a `replicate` job until `signal` fires (cancel, worker
 * shutdown, Ctrl-C for `--local`): the replicator resumes from the position stored in the
 * repository (or begins a generation), ships every interval, and on the signal ships what is
 * committed before it returns. With `retentionMs`, a new generation begins every half of it and
 * what no point inside the window needs is removed (`applyReplicaRetention`) after each new
 * generation and every quarter of the window (10 min at most).
 *
 * Resolves only when stopped by request (the signal's reason is the queue's `CANCELLED_REASON`,
 * sent by `replicate stop`): the job then completes with its last shipped position, so a stop
 * is never counted as a failure. Any other abort (a worker's shutdown, Ctrl-C of `--local`) ends
 * by throwing the signal's reason (an AbortedError when it is not an Error), so the worker can
 * hand the job back to the queue.
 * @throws InvalidInputError for a bad URI, a database that is missing, not SQLite or not in WAL
 *   mode (not retried); UnsafePathError for a path outside the allowed roots; other failures
 *   that are not retryable (retryable ones are retried at the next interval and shown as
 *   `lastError`).
 */
export async function runReplicateJob(request: ReplicateRequest): Promise<ReplicateJobResult> {
  let url: URL;
  try {
    url = new URL(request.source);
  } catch (cause) {
    throw new InvalidInputError(`replicate: source "${request.source}" is not a URI`, { cause });
  }
  if (url.protocol !== 'sqlite:') throw new InvalidInputError(`replicate: source ${url.href} is not a sqlite:///path URI (only SQLite databases replicate)`);
  const [endpoint] = parseSqliteUris([url], request.endpoints, 'source');
  const dbPath = endpoint!.path;
  const database = request.name ?? replicaNameOf(dbPath);
  const store = new ReplicaStore(request.storage, database);
  const { metrics, logger, signal } = request;
  const host = os.hostname();
  const status: ReplicationStatus = {
    v: 1,
    database,
    path: dbPath,
    state: 'starting',
    host,
    pid: process.pid,
    since: new Date().toISOString(),
    generationsBegun: 0,
  };
  const change = (detail: Omit<ReplicationChange, 'database' | 'host'>) => request.onChange?.({ database, host, ...detail });
  const previous = request.previous;
  if (previous && (previous.host !== host || previous.pid !== process.pid)) change({ change: 'moved', from: previous.host });
  else change({ change: 'started' });
  metrics?.started(database);
  logger?.info({ database, path: dbPath, from: previous?.host }, previous ? 'replicator taken over' : 'replicator started');

  let statusSentAt = 0;
  const sendStatus = (force = false) => {
    if (!force && Date.now() - statusSentAt < STATUS_EVERY_MS) return;
    statusSentAt = Date.now();
    request.onStatus?.({ ...status });
  };
  const setPosition = (position: ShippedPosition) => {
    Object.assign(status, { generation: position.generation, index: position.index, offset: position.offset, shippedAt: position.at.toISOString() });
  };
  const retention = request.retentionMs ? new RetentionRunner(store, request.retentionMs, (err) => {
    status.lastError = `retention: ${errorMessage(err)}`;
    logger?.warn({ database, err: errorMessage(err) }, 'replica retention failed; retrying later');
  }) : undefined;

  const onEvent = (event: ReplicationEvent) => {
    switch (event.type) {
      case 'generation':
        status.generationsBegun += 1;
        metrics?.generationStarted(database);
        change({ change: 'generation', generation: event.generation, reason: event.reason });
        logger?.info({ database, generation: event.generation, reason: event.reason, snapshotBytes: event.snapshotBytes }, 'replication: new generation');
        retention?.due(true);
        break;
      case 'resumed':
        setPosition(event.position);
        break;
      case 'segment':
        setPosition(event.position);
        metrics?.segmentStored(database, event.bytes);
        metrics?.shipped(database, event.position);
        sendStatus();
        break;
      case 'synced': {
        const first = status.state === 'starting';
        setPosition(event.position);
        status.state = 'replicating';
        status.syncedFrom = event.startedAt.toISOString();
        delete status.lastError;
        metrics?.synced(database, event.startedAt, event.position);
        retention?.due(false);
        sendStatus(first);
        break;
      }
      case 'error':
        status.lastError = event.message;
        logger?.warn({ database, err: event.message }, 'replication: sync failed; retrying at the next interval');
        sendStatus(true);
        break;
      case 'checkpoint':
        break;
    }
  };
  sendStatus(true);
  const replicator = new SqliteReplicator(dbPath, store, {
    stagingDir: request.endpoints.stagingDir,
    intervalMs: request.intervalMs,
    ...(request.retentionMs ? { snapshotIntervalMs: request.retentionMs / 2 } : {}),
    onEvent,
  });
  try {
    await replicator.run(signal);
  } finally {
    await retention?.settled();
    metrics?.stopped(database);
  }
  logger?.info({ database, position: replicator.position }, 'replicator stopped');
  const reason: unknown = signal.reason;
  if (reason === CANCELLED_REASON) return stoppedResult(database, replicator.position);
  throw reason instanceof Error ? reason : new AbortedError(`replicate ${database}: stopped${reason ? `: ${String(reason)}` : ''}`);
}

/**
 * The result of a replicator stopped by request, with its last shipped position when it had one
 * (none when the stop came before it started).
 */
export function stoppedResult(database: string, position?: ShippedPosition): ReplicateJobResult {
  return {
    v: 1,
    database,
    stopped: 'stopped by request',
    stoppedAt: new Date().toISOString(),
    ...(position ? { generation: position.generation, index: position.index, offset: position.offset, shippedAt: position.at.toISOString() } : {}),
  };
}

/**
 * Applies replica retention in the background, one pass at a time: after a new generation, and
 * every quarter of the window (10 min at most) otherwise. A failed pass is reported and retried
 * at the next due time; it never stops replication (keeping too much loses nothing).
 */
class RetentionRunner {
  private running: Promise<void> = Promise.resolve();
  private busy = false;
  private lastAt = 0;
  private readonly everyMs: number;

  constructor(
    private readonly store: ReplicaStore,
    private readonly windowMs: number,
    private readonly onError: (err: unknown) => void,
  ) {
    this.everyMs = Math.min(windowMs / 4, 10 * 60_000);
  }

  due(now: boolean): void {
    if (this.busy || (!now && Date.now() - this.lastAt < this.everyMs)) return;
    this.busy = true;
    this.lastAt = Date.now();
    this.running = applyReplicaRetention(this.store, new Date(Date.now() - this.windowMs))
      .then(() => undefined, this.onError)
      .finally(() => {
        this.busy = false;
      });
  }

  settled(): Promise<void> {
    return this.running;
  }
}
