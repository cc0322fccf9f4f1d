import type { JobResultByKind, ScheduledRetention } from '../jobs/results.js';
import { durationSeconds, retentionPolicyOf, type JobDataByKind, type RetentionFields } from '../jobs/schemas.js';
import { assertJobKind } from '../jobs/validate.js';
import type { Repository } from '../shared/catalog/repository.js';
import type { SnapshotRecord } from '../shared/catalog/snapshot-record.js';
import type { WorkerConfig } from '../shared/config.js';
import { openSource, openTarget, serverSettings } from '../shared/kinds/registry.js';
import { errorMessage, IntegrityError, InvalidInputError } from '../shared/errors.js';
import { newSnapshotId } from '../shared/ids.js';
import type { JobKind } from '../shared/job-kind.js';
import type { Logger } from '../shared/logging.js';
import type { WorkerMetrics } from '../shared/metrics/metrics.js';
import { ServerPolicy } from '../shared/kinds/server-policy.js';
import { PathPolicy, type GuardedDir } from '../shared/path-policy.js';
import { pruneSnapshots } from '../shared/pipeline/prune-snapshots.js';
import { StallWatchdog } from '../shared/pipeline/stall-watchdog.js';
import { restoreSnapshot, verifySnapshot } from '../shared/pipeline/restore-snapshot.js';
import { runReplicaRestore } from '../shared/kinds/sqlite/replication/restore-replica-job.js';
import { runReplicateJob, type ReplicateRequest } from '../shared/kinds/sqlite/replication/replicate-job.js';
import { takeSnapshot } from '../shared/pipeline/take-snapshot.js';
import { checkRepository } from '../shared/pipeline/check-repository.js';
import { copySnapshots } from '../shared/pipeline/copy-snapshots.js';
import { parseDataSubset } from '../shared/pipeline/data-subset.js';
import { checkDerivedLineage } from '../shared/pipeline/lineage-guard.js';
import type { ProgressSink } from '../shared/progress.js';
import type { EntryNotice } from '../shared/kinds/notices.js';
import type { EndpointContext } from '../shared/kinds/source.js';
import { describePolicy } from '../shared/retention/retention-policy.js';
import { RepositoryRegistry } from './repositories.js';
import { parseRepositoryUri, type RepositoryLocation } from '../shared/storage/open-driver.js';

/** What every job of a worker (or of a `--local` run) shares. */
export class JobRuntime {
  readonly repositories: RepositoryRegistry;
  readonly endpoints: EndpointContext;

  constructor(
    readonly config: WorkerConfig,
    readonly logger: Logger,
    readonly metrics?: WorkerMetrics,
  ) {
    this.repositories = new RepositoryRegistry(
      config.repositories,
      config.defaultRepository,
      metrics && ((kind) => metrics.storageObserver(kind)),
      config.repositoryKeys,
    );
    const paths = new PathPolicy(config.allowedPaths, guardedDirs(config));
    const servers = new Map(
      serverSettings().map(({ kind, variable, defaultPort }) => [kind, new ServerPolicy(kind, variable, defaultPort, config.allowedServers[kind] ?? [])]),
    );
    this.endpoints = {
      // Without a role (a caller outside openSource/openTarget) the stricter target rule applies.
      checkPath: (p, role = 'target') => paths.check(p, role),
      checkServer: (kind, server, role) => {
        const policy = servers.get(kind);
        // A programming error, not bad input: the kind's admit checks servers it never registered.
        if (!policy) throw new Error(`kinds: ${kind} checks a server but its registration has no servers`);
        policy.check(server, role);
      },
      stagingDir: config.stagingDir,
      profiles: config.profiles,
      restoreSetuid: config.restoreSetuid,
    };
  }

  repository(name: string | undefined): Repository {
    return this.repositories.get(name);
  }

  /**
   * The repository a job reads from.
   * @throws RepositoryMissingError when it does not exist (reads never create one).
   */
  async existingRepository(name: string | undefined, signal?: AbortSignal): Promise<Repository> {
    const repository = this.repositories.get(name);
    await repository.requireExists({ signal });
    return repository;
  }

  /**
   * The repository a snapshot writes to, created first when it does not exist and the
   * configuration allows it (`SNAPWORKER_AUTO_INIT`).
   * @throws RepositoryMissingError when it does not exist and may not be created.
   */
  async writableRepository(name: string | undefined, signal?: AbortSignal): Promise<Repository> {
    const repository = this.repositories.get(name);
    if (this.config.autoInit && (await repository.initIfMissing({ signal }))) {
      this.logger.info({ repository: repository.name }, 'created the repository (SNAPWORKER_AUTO_INIT)');
    }
    await repository.requireExists({ signal });
    return repository;
  }

  sealKeys(): Record<string, Buffer> {
    return this.config.seal ? { [this.config.seal.keyId]: this.config.seal.key } : {};
  }

  close(): Promise<void> {
    return this.repositories.close();
  }
}

/** One run of one job. */
export interface JobRun<K extends JobKind> {
  kind: K;
  data: JobDataByKind[K];
  signal: AbortSignal;
  progress: ProgressSink;
  /** Snapshot id to write (derived from the queued job so retries reuse it); fresh when absent. */
  snapshotId?: string;
  job?: { id: string; queue: string };
  /** Snapshots: an opaque token for an upload a crash would strand (see `Repository.discardUpload`). */
  onUploadToken?: (token: string) => void | Promise<void>;
  /** Snapshots: each of the first entries the source could not keep exactly (log, warning event). */
  onNotice?: (notice: EntryNotice) => void;
  /** Replicate jobs: the status the job held before this attempt, and where status and changes go. */
  replication?: Pick<ReplicateRequest, 'previous' | 'onStatus' | 'onChange'>;
}

type Handler<K extends JobKind> = (run: JobRun<K>, runtime: JobRuntime) => Promise<JobResultByKind[K]>;

const HANDLERS: { [K in JobKind]: Handler<K> } = {
  async snapshot({ data, signal, progress, snapshotId, job, onUploadToken, onNotice }, runtime) {
    const repository = await runtime.writableRepository(data.repo, signal);
    const source = await openSource(toArray(data.source), data, runtime.endpoints);
    if (data.name === undefined) await checkDerivedLineage(repository, source.descriptor, signal).catch(async (err: unknown) => {
      await source.release?.();
      throw err;
    });
    const record = await takeSnapshot({
      id: snapshotId ?? newSnapshotId(),
      source,
      repository,
      labels: data.labels ?? {},
      compression: data.compression ?? 'zstd',
      level: runtime.config.compressionLevel,
      threads: runtime.config.zstdThreads,
      seal: runtime.config.seal,
      ...(data.force ? { parent: false as const } : data.parent !== undefined ? { parent: data.parent } : {}),
      signal,
      progress: countInto(
        progress,
        (n) => runtime.metrics?.bytesRead(source.descriptor.kind, n),
        (newBytes, dedupedBytes) => runtime.metrics?.bytesStored(source.descriptor.kind, newBytes, dedupedBytes),
      ),
      job,
      onUploadToken,
      onNotice,
    });
    runtime.metrics?.snapshotSucceeded(record.source.name, new Date(record.completedAt));
    const retention = data.schedule?.retention;
    return retention ? { ...record, retention: await pruneLineage(record, retention, repository, runtime, signal) } : record;
  },

  async restore({ data, signal, progress }, runtime) {
    const repository = await runtime.existingRepository(data.repo, signal);
    if (data.replica) {
      return runReplicaRestore({
        storage: repository.replicaStorage(),
        source: data.source,
        snapshot: data.snapshot,
        target: toArray(data.target),
        replica: data.replica,
        replace: data.replace ?? false,
        endpoints: runtime.endpoints,
        signal,
      });
    }
    const target = await openTarget(toArray(data.target), data, runtime.endpoints);
    const record = await repository.resolve(data.snapshot, { source: data.source, labels: data.labels }, { signal });
    const result = await observeVerification(runtime, () =>
      restoreSnapshot({
        repository,
        record,
        target,
        replace: data.replace ?? false,
        selection: { include: data.include, exclude: data.exclude, subPath: data.subPath },
        signal,
        progress: countInto(progress, (n) => runtime.metrics?.bytesWritten(record.source.kind, n)),
        sealKeys: runtime.sealKeys(),
      }),
    );
    return { snapshotId: record.id, ...result };
  },

  async verify({ data, signal, progress }, runtime) {
    const repository = await runtime.existingRepository(data.repo, signal);
    const record = await repository.resolve(data.snapshot, { source: data.source, labels: data.labels }, { signal });
    const result = await observeVerification(runtime, () =>
      verifySnapshot({ repository, record, signal, progress, sealKeys: runtime.sealKeys() }),
    );
    return {
      snapshotId: record.id,
      ok: true,
      entries: result.entries,
      files: result.files,
      rawBytes: result.rawBytes,
      storedBytes: record.stats.storedBytes,
      sealed: result.sealed,
    };
  },

  async replicate({ data, signal, replication }, runtime) {
    return runReplicateJob({
      storage: (await runtime.writableRepository(data.repo, signal)).replicaStorage(),
      source: data.source,
      name: data.name,
      intervalMs: durationSeconds(data.interval ?? '1s') * 1000,
      ...(data.retention ? { retentionMs: durationSeconds(data.retention) * 1000 } : {}),
      endpoints: runtime.endpoints,
      signal,
      ...replication,
      metrics: runtime.metrics?.replication,
      logger: runtime.logger,
    });
  },

  async copy({ data, signal, progress }, runtime) {
    const from = await runtime.existingRepository(data.repo, signal);
    // The target is never created by a copy: a mistyped name must not make a repository.
    const to = await runtime.existingRepository(data.to, signal);
    if (to === from) throw new InvalidInputError(`copy: the target repository ${JSON.stringify(data.to)} is the source repository`);
    const records: SnapshotRecord[] = [];
    for (const ref of data.snapshots) {
      const record = await from.resolve(ref, { source: data.source, labels: data.labels }, { signal });
      if (!records.some((r) => r.id === record.id)) records.push(record);
    }
    const result = await observeVerification(runtime, () =>
      copySnapshots({
        from,
        to,
        records,
        signal,
        progress,
        sealKeys: runtime.sealKeys(),
        seal: runtime.config.seal,
        level: runtime.config.compressionLevel,
        threads: runtime.config.zstdThreads,
      }),
    );
    return { from: from.name, to: to.name, ...result };
  },

  async check({ data, signal, progress }, runtime) {
    const repository = await runtime.existingRepository(data.repo, signal);
    const result = await checkRepository({
      repository,
      signal,
      progress,
      subset: data.readDataSubset === undefined ? undefined : parseDataSubset(data.readDataSubset),
      sealKeys: runtime.sealKeys(),
      onProblem: (problem) => {
        runtime.metrics?.verificationFailed();
        runtime.logger.warn({ repository: repository.name, snapshot: problem.snapshot, format: problem.format }, `check: ${problem.message}`);
      },
    });
    return { repository: repository.name, ...result };
  },

  async prune({ data, signal }, runtime) {
    return pruneSnapshots({
      repository: await runtime.existingRepository(data.repo, signal),
      policy: retentionPolicyOf(data),
      groupBy: data.groupBy,
      incompleteGraceSeconds: data.incompleteGrace ? durationSeconds(data.incompleteGrace) : undefined,
      filter: { source: data.source, labels: data.labels },
      dryRun: data.dryRun ?? false,
      signal,
    });
  },
};

/**
 * Runs one job of any kind to its result. Errors keep their class (retryable or not). A
 * snapshot, restore or verify that makes no progress for the configured stall timeout is
 * aborted and fails with a StalledError naming the phase (prune reports no progress to watch).
 */
export async function runJob<K extends JobKind>(run: JobRun<K>, runtime: JobRuntime): Promise<JobResultByKind[K]> {
  assertJobKind(run.kind);
  const handler = HANDLERS[run.kind] as Handler<K>;
  // Neither reports progress to watch: a prune is short, a replicator reports its syncs as status.
  if (run.kind === 'prune' || run.kind === 'replicate') return handler(run, runtime);
  const watchdog = new StallWatchdog({
    signal: run.signal,
    progress: run.progress,
    timeoutSeconds: runtime.config.stallTimeoutSeconds,
    operation: run.kind,
  });
  try {
    return await handler({ ...run, signal: watchdog.signal, progress: watchdog.progress }, runtime);
  } catch (err) {
    throw watchdog.error ?? err;
  } finally {
    watchdog.stop();
  }
}

/**
 * What restores must never replace: every file repository the worker knows and its staging
 * directory (a target of `/tmp` or of a repository's folder would otherwise delete them).
 */
function guardedDirs(config: WorkerConfig): GuardedDir[] {
  const dirs: GuardedDir[] = [{ path: config.stagingDir, what: 'the staging directory', noTargetsInside: false }];
  for (const [name, uri] of Object.entries(config.repositories)) {
    let location: RepositoryLocation;
    try {
      location = parseRepositoryUri(uri);
    } catch {
      continue; // a malformed URI is refused, naming it, when a job opens that repository
    }
    if (location.kind === 'file') dirs.push({ path: location.root, what: `repository ${JSON.stringify(name)}`, noTargetsInside: true });
  }
  return dirs;
}

/** Counts integrity failures found while reading a stored snapshot. */
async function observeVerification<T>(runtime: JobRuntime, read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (err) {
    if (err instanceof IntegrityError) runtime.metrics?.verificationFailed();
    throw err;
  }
}

/** A progress sink that also feeds payload byte counts to `count`, and new and deduplicated bytes to `countStored` (metrics). */
function countInto(progress: ProgressSink, count: (bytes: number) => void, countStored?: (newBytes: number, dedupedBytes: number) => void): ProgressSink {
  return {
    setPhase: (phase) => progress.setPhase(phase),
    setTotal: (bytes) => progress.setTotal(bytes),
    addEntries: (n) => progress.addEntries(n),
    setTransferred: (bytes) => progress.setTransferred(bytes),
    addBytes: (n) => {
      progress.addBytes(n);
      count(n);
    },
    addStored: (newBytes, dedupedBytes) => {
      progress.addStored(newBytes, dedupedBytes);
      countStored?.(newBytes, dedupedBytes);
    },
  };
}

/**
 * After a scheduled snapshot: its lineage pruned by the schedule's policy. A failed prune does not
 * fail the snapshot (nothing is lost by keeping too much; the snapshot is safe), it is reported in
 * the result and logged, and the next run prunes again.
 */
async function pruneLineage(
  record: SnapshotRecord,
  fields: RetentionFields,
  repository: Repository,
  runtime: JobRuntime,
  signal: AbortSignal,
): Promise<ScheduledRetention> {
  const policy = retentionPolicyOf(fields);
  try {
    const result = await pruneSnapshots({ repository, policy, groupBy: fields.groupBy, filter: { source: record.source.name }, dryRun: false, signal });
    return { policy: result.policy, kept: result.kept, removed: result.removed, removedIncomplete: result.removedIncomplete };
  } catch (err) {
    runtime.logger.warn({ err: errorMessage(err), source: record.source.name }, 'pruning after a scheduled snapshot failed');
    return { policy: describePolicy(policy), kept: [], removed: [], removedIncomplete: [], error: errorMessage(err) };
  }
}

function toArray(value: string | string[]): string[] {
  return Array.isArray(value) ? value : [value];
}
