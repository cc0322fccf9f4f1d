import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { JOB_KINDS, type JobKind } from '../job-kind.js';
import type { StorageObserver } from '../storage/storage-driver.js';
import { ReplicationMetrics } from './replication-metrics.js';

/** Every metric name starts with this (Prometheus naming rules, see docs/observability.md). */
export const METRIC_PREFIX = 'snapworker_';

/** Queue states sampled into `snapworker_queue_jobs{state}`: a bounded label set. */
export const QUEUE_STATES = ['waiting', 'prioritized', 'delayed', 'active', 'failed'] as const;
export type QueueState = (typeof QUEUE_STATES)[number];

/**
 * Storage operations a driver may report (see `StorageObserver`). Anything else is counted as
 * `other`, so a driver with a new operation can never grow the label set without bound.
 */
export const STORAGE_OPERATIONS = [
  'put',
  'get',
  'head',
  'list',
  'delete',
  'rename',
  'upload_part',
  'create_upload',
  'complete_upload',
  'abort_upload',
] as const;
const OTHER_OPERATION = 'other';

/**
 * Leftovers of failed attempts a worker cleans up on a best-effort basis, for
 * `snapworker_cleanup_failures_total{kind}`: a bounded label set.
 */
export const CLEANUP_KINDS = ['multipart_upload'] as const;
export type CleanupKind = (typeof CLEANUP_KINDS)[number];

export type JobOutcome = 'completed' | 'failed';
const JOB_OUTCOMES: readonly JobOutcome[] = ['completed', 'failed'];

/**
 * Job duration buckets, in seconds: from a quick prune or verify (sub-second) to a multi-hour
 * snapshot of a large volume.
 */
export const JOB_DURATION_BUCKETS = [0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800];

export interface WorkerMetricsOptions {
  /** Also export prom-client's default process metrics (CPU, memory, event loop, GC), prefixed. Default true. */
  collectDefaultMetrics?: boolean;
  /** Value of the `version` label on `snapworker_worker_info`. Default `'unknown'`. */
  version?: string;
}

const MISNAMED_DEFAULT_GAUGES = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

const DEFAULT_OPTIONS: Required<WorkerMetricsOptions> = {
  collectDefaultMetrics: true,
  version: 'unknown',
};

/**
 * The worker's Prometheus metrics, in a registry of its own (no global registry, so several
 * workers in one process and tests never share counters).
 *
 * Recording never throws: a bad value (negative, NaN) is ignored rather than allowed to fail a
 * transfer. Label values are bounded: job kinds, outcomes, storage drivers and operations,
 * source/target kinds, queue states, and source names (bounded by configuration; never a job id
 * or a path). Every metric is listed in docs/observability.md.
 */
/** One schedule's figures, in seconds (times since the epoch). */
export interface ScheduleSample {
  lastSuccess?: number;
  lastFailure?: number;
  nextRun?: number;
  interval?: number;
}

export class WorkerMetrics {
  readonly registry: Registry;
  /** Replication lag, shipped position, generations and segment bytes per replicated database. */
  readonly replication: ReplicationMetrics;

  private readonly activeJobs: Gauge<'kind'>;
  private readonly jobsTotal: Counter<'kind' | 'outcome'>;
  private readonly jobDuration: Histogram<'kind'>;
  private readonly lastSuccess: Gauge<'source'>;
  private readonly verificationFailures: Counter;
  private readonly sourceReadBytes: Counter<'source_kind'>;
  private readonly targetWrittenBytes: Counter<'target_kind'>;
  private readonly dedupBytes: Counter<'source_kind' | 'result'>;
  private readonly storageRequests: Counter<'driver' | 'operation' | 'outcome'>;
  private readonly storageRetries: Counter<'driver' | 'operation'>;
  private readonly storageUploadedBytes: Counter<'driver'>;
  private readonly storageDownloadedBytes: Counter<'driver'>;
  private readonly eventsDropped: Counter;
  private readonly cleanupFailures: Counter<'kind'>;
  private readonly queueJobs: Gauge<'state'>;
  private readonly queueOldestWaiting: Gauge;
  private readonly repositoryObjects: Gauge<'repository' | 'type'>;
  private readonly repositoryBytes: Gauge<'repository' | 'type'>;
  private readonly scheduleGauges: Record<keyof ScheduleSample, Gauge<'schedule'>>;
  private readonly lastSuccessBySource = new Map<string, number>();

  constructor(options: WorkerMetricsOptions = {}) {
    const { collectDefaultMetrics: withDefaults, version } = { ...DEFAULT_OPTIONS, ...options };
    const registry = new Registry();
    this.registry = registry;
    const registers = [registry];
    this.replication = new ReplicationMetrics(registry, METRIC_PREFIX);

    if (withDefaults) {
      collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX });
      // prom-client names three gauges `..._total`, which Prometheus reserves for counters
      // (`promtool check metrics` rejects them); their per-type versions without the suffix stay.
      for (const gauge of MISNAMED_DEFAULT_GAUGES) registry.removeSingleMetric(`${METRIC_PREFIX}${gauge}`);
    }

    new Gauge({
      name: `${METRIC_PREFIX}worker_info`,
      help: 'Always 1 for a running worker; counts workers and carries their version.',
      labelNames: ['version'],
      registers,
    }).set({ version }, 1);

    this.activeJobs = new Gauge({
      name: `${METRIC_PREFIX}active_jobs`,
      help: 'Jobs this worker is executing now, by kind.',
      labelNames: ['kind'],
      registers,
    });
    this.jobsTotal = new Counter({
      name: `${METRIC_PREFIX}jobs_total`,
      help: 'Jobs this worker finished, by kind and outcome (completed or failed).',
      labelNames: ['kind', 'outcome'],
      registers,
    });
    this.jobDuration = new Histogram({
      name: `${METRIC_PREFIX}job_duration_seconds`,
      help: 'Wall time of finished jobs (either outcome), by kind.',
      labelNames: ['kind'],
      buckets: JOB_DURATION_BUCKETS,
      registers,
    });
    this.lastSuccess = new Gauge({
      name: `${METRIC_PREFIX}last_success_timestamp_seconds`,
      help: 'Unix time of the last successful snapshot of a source seen by this worker, by source name.',
      labelNames: ['source'],
      registers,
    });
    this.verificationFailures = new Counter({
      name: `${METRIC_PREFIX}verification_failures_total`,
      help: 'Archives that failed an integrity check (sums, seal, structure).',
      registers,
    });
    this.sourceReadBytes = new Counter({
      name: `${METRIC_PREFIX}source_read_bytes_total`,
      help: 'Bytes read from snapshot sources, by source kind.',
      labelNames: ['source_kind'],
      registers,
    });
    this.targetWrittenBytes = new Counter({
      name: `${METRIC_PREFIX}target_written_bytes_total`,
      help: 'Bytes written to restore targets, by target kind.',
      labelNames: ['target_kind'],
      registers,
    });
    this.dedupBytes = new Counter({
      name: `${METRIC_PREFIX}dedup_bytes_total`,
      help: 'Payload bytes of snapshots into a deduplicating (chunked) repository, by source kind and result: new (stored as new blobs, before compression) or deduplicated (already stored, or unchanged since the parent).',
      labelNames: ['source_kind', 'result'],
      registers,
    });
    this.storageRequests = new Counter({
      name: `${METRIC_PREFIX}storage_requests_total`,
      help: 'Requests to repository storage, by driver, operation and outcome (ok or error).',
      labelNames: ['driver', 'operation', 'outcome'],
      registers,
    });
    this.storageRetries = new Counter({
      name: `${METRIC_PREFIX}storage_retries_total`,
      help: 'Storage requests retried after a transient failure, by driver and operation.',
      labelNames: ['driver', 'operation'],
      registers,
    });
    this.storageUploadedBytes = new Counter({
      name: `${METRIC_PREFIX}storage_uploaded_bytes_total`,
      help: 'Bytes uploaded to repository storage, by driver.',
      labelNames: ['driver'],
      registers,
    });
    this.storageDownloadedBytes = new Counter({
      name: `${METRIC_PREFIX}storage_downloaded_bytes_total`,
      help: 'Bytes downloaded from repository storage, by driver.',
      labelNames: ['driver'],
      registers,
    });
    this.eventsDropped = new Counter({
      name: `${METRIC_PREFIX}events_dropped_total`,
      help: 'Job events that could not be published (NATS unreachable or publish failed).',
      registers,
    });
    this.cleanupFailures = new Counter({
      name: `${METRIC_PREFIX}cleanup_failures_total`,
      help: 'Leftovers of failed attempts that could not be removed (the job went on), by kind; multipart_upload: see the bucket lifecycle rule in docs/storage.md.',
      labelNames: ['kind'],
      registers,
    });
    this.queueJobs = new Gauge({
      name: `${METRIC_PREFIX}queue_jobs`,
      help: 'Jobs in the queue by state, sampled periodically; queue-wide, so every worker reports the same value (aggregate with max).',
      labelNames: ['state'],
      registers,
    });
    this.queueOldestWaiting = new Gauge({
      name: `${METRIC_PREFIX}queue_oldest_waiting_seconds`,
      help: 'Age of the oldest job waiting to run (0 when none), sampled periodically; queue-wide (aggregate with max).',
      registers,
    });
    this.repositoryObjects = new Gauge({
      name: `${METRIC_PREFIX}repository_objects`,
      help: 'Objects of a chunked repository by type (pack, index), sampled every few minutes; repository-wide (aggregate with max).',
      labelNames: ['repository', 'type'],
      registers,
    });
    this.repositoryBytes = new Gauge({
      name: `${METRIC_PREFIX}repository_bytes`,
      help: 'Bytes of a chunked repository by object type (pack, index), as stored, sampled every few minutes; repository-wide (aggregate with max).',
      labelNames: ['repository', 'type'],
      registers,
    });

    const scheduleGauge = (name: string, help: string) => new Gauge({ name: `${METRIC_PREFIX}schedule_${name}`, help, labelNames: ['schedule'], registers });
    this.scheduleGauges = {
      lastSuccess: scheduleGauge('last_success_timestamp_seconds', 'When the latest successful run of each schedule finished (absent before one), sampled from Redis; queue-wide (aggregate with max).'),
      lastFailure: scheduleGauge('last_failure_timestamp_seconds', 'When the latest failed run attempt of each schedule finished (absent before one), sampled from Redis; queue-wide (aggregate with max).'),
      nextRun: scheduleGauge('next_run_timestamp_seconds', 'When each schedule runs next (absent while paused), sampled from Redis; queue-wide (aggregate with max).'),
      interval: scheduleGauge('interval_seconds', "Each schedule's interval (for cron, the gap between its next two slots); queue-wide (aggregate with max)."),
    };

    // Series exist from the start at 0, so rates, ratios and alerts have data before the first
    // job instead of "no data" (and a first failure shows as an increase, not a new series).
    for (const kind of JOB_KINDS) {
      this.activeJobs.set({ kind }, 0);
      this.jobDuration.zero({ kind });
      for (const outcome of JOB_OUTCOMES) this.jobsTotal.inc({ kind, outcome }, 0);
    }
    this.verificationFailures.inc(0);
    this.eventsDropped.inc(0);
    for (const kind of CLEANUP_KINDS) this.cleanupFailures.inc({ kind }, 0);
  }

  /** The content type of `metrics()`, for the HTTP response. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** The registry in the Prometheus text format. */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  jobStarted(kind: JobKind): void {
    this.activeJobs.inc({ kind });
  }

  /** Counts the outcome and records the duration; call once per `jobStarted`. */
  jobFinished(kind: JobKind, outcome: JobOutcome, durationSeconds: number): void {
    this.activeJobs.dec({ kind });
    this.jobsTotal.inc({ kind, outcome });
    if (isAmount(durationSeconds)) this.jobDuration.observe({ kind }, durationSeconds);
  }

  /**
   * Replaces the schedule series with `samples` (by schedule name): a removed schedule's series
   * disappear, a missing time leaves its series absent rather than 0 (which would read as 1970).
   */
  setSchedules(samples: ReadonlyMap<string, ScheduleSample>): void {
    for (const gauge of Object.values(this.scheduleGauges)) gauge.reset();
    for (const [schedule, sample] of samples) {
      for (const [field, gauge] of Object.entries(this.scheduleGauges) as Array<[keyof ScheduleSample, Gauge<'schedule'>]>) {
        const value = sample[field];
        if (value !== undefined && Number.isFinite(value)) gauge.set({ schedule }, value);
      }
    }
  }

  /** Records the time of a successful snapshot of the named source (for staleness alerts). */
  snapshotSucceeded(sourceName: string, at: Date): void {
    const seconds = at.getTime() / 1000;
    if (!Number.isFinite(seconds)) return;
    // Jobs of one source may finish out of order (or the worker seeds older records at start):
    // the gauge must never move backwards.
    const current = this.lastSuccessBySource.get(sourceName);
    if (current !== undefined && seconds <= current) return;
    this.lastSuccessBySource.set(sourceName, seconds);
    this.lastSuccess.set({ source: sourceName }, seconds);
  }

  verificationFailed(): void {
    this.verificationFailures.inc();
  }

  bytesRead(sourceKind: string, n: number): void {
    if (isAmount(n)) this.sourceReadBytes.inc({ source_kind: sourceKind }, n);
  }

  /** A deduplicating snapshot stored `newBytes` as new blobs and found `dedupedBytes` stored already. */
  bytesStored(sourceKind: string, newBytes: number, dedupedBytes: number): void {
    if (isAmount(newBytes)) this.dedupBytes.inc({ source_kind: sourceKind, result: 'new' }, newBytes);
    if (isAmount(dedupedBytes)) this.dedupBytes.inc({ source_kind: sourceKind, result: 'deduplicated' }, dedupedBytes);
  }

  bytesWritten(targetKind: string, n: number): void {
    if (isAmount(n)) this.targetWrittenBytes.inc({ target_kind: targetKind }, n);
  }

  eventDropped(): void {
    this.eventsDropped.inc();
  }

  /** A leftover of an earlier attempt could not be removed; the job went on without it. */
  cleanupFailed(kind: CleanupKind): void {
    this.cleanupFailures.inc({ kind });
  }

  /**
   * An observer for one storage driver (`fs`, `s3`). Its counters start at 0 for every known
   * operation; unknown operations are counted as `other`.
   */
  storageObserver(driver: string): StorageObserver {
    for (const operation of STORAGE_OPERATIONS) {
      this.storageRetries.inc({ driver, operation }, 0);
      this.storageRequests.inc({ driver, operation, outcome: 'ok' }, 0);
      this.storageRequests.inc({ driver, operation, outcome: 'error' }, 0);
    }
    this.storageUploadedBytes.inc({ driver }, 0);
    this.storageDownloadedBytes.inc({ driver }, 0);
    return {
      request: (operation, outcome) =>
        this.storageRequests.inc({ driver, operation: boundedOperation(operation), outcome }),
      retry: (operation) => this.storageRetries.inc({ driver, operation: boundedOperation(operation) }),
      uploaded: (bytes) => {
        if (isAmount(bytes)) this.storageUploadedBytes.inc({ driver }, bytes);
      },
      downloaded: (bytes) => {
        if (isAmount(bytes)) this.storageDownloadedBytes.inc({ driver }, bytes);
      },
    };
  }

  /** Sets the sampled queue depth (see `startQueueSampler`); states not given are left as they are. */
  setQueueDepth(counts: Partial<Record<QueueState, number>>): void {
    for (const state of QUEUE_STATES) {
      const count = counts[state];
      if (count !== undefined && isAmount(count)) this.queueJobs.set({ state }, count);
    }
  }

  /** Sets the sampled age of the oldest waiting job, 0 when nothing waits. */
  setOldestWaitingAge(seconds: number): void {
    if (isAmount(seconds)) this.queueOldestWaiting.set(seconds);
  }

  /** A sample of a chunked repository's size (`startRepositorySampler`); `repository` is its configured name. */
  setRepositorySize(repository: string, size: { packs: number; packBytes: number; indexObjects: number; indexBytes: number }): void {
    this.repositoryObjects.set({ repository, type: 'pack' }, size.packs);
    this.repositoryObjects.set({ repository, type: 'index' }, size.indexObjects);
    this.repositoryBytes.set({ repository, type: 'pack' }, size.packBytes);
    this.repositoryBytes.set({ repository, type: 'index' }, size.indexBytes);
  }
}

function isAmount(n: number): boolean {
  return Number.isFinite(n) && n >= 0;
}

function boundedOperation(operation: string): string {
  return (STORAGE_OPERATIONS as readonly string[]).includes(operation) ? operation : OTHER_OPERATION;
}
