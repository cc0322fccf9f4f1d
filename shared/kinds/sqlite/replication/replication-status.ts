/**
 * What a running replicate job reports about itself, stored as the BullMQ job's progress (so
 * `snapworker replicate ls` and any BullMQ client can read it, and a worker taking the job over
 * sees who ran it before). Times are ISO 8601.
 */
export interface ReplicationStatus {
  v: 1;
  /** The replica name (`replicas/<database>/`). */
  database: string;
  /** The database file on the replicating host. */
  path: string;
  /** `starting` until the first sync finished, then `replicating`. */
  state: 'starting' | 'replicating';
  /** The worker host (os.hostname()) and process running it. */
  host: string;
  pid: number;
  /** When this worker took the job up. */
  since: string;
  /** The last shipped position, once there is one. */
  generation?: string;
  index?: number;
  offset?: number;
  /** When the frames of the last shipped position were read. */
  shippedAt?: string;
  /** When the last successful sync began: every commit before it is in the replica. */
  syncedFrom?: string;
  /** Generations this worker began for the job. */
  generationsBegun: number;
  /** The last retryable failure (storage down, a busy lock), cleared by the next successful sync. */
  lastError?: string;
}

/**
 * Replication lag in seconds: the age of the newest point every commit before which is in the
 * replica, the later of the last sync's start and the last segment's read time (a busy database
 * keeps one sync shipping segment after segment); undefined before the first sync.
 */
export function lagSeconds(status: Pick<ReplicationStatus, 'syncedFrom' | 'shippedAt'>, now = Date.now()): number | undefined {
  if (!status.syncedFrom) return undefined;
  const from = Math.max(Date.parse(status.syncedFrom), status.shippedAt ? Date.parse(status.shippedAt) : 0);
  return Math.max(0, (now - from) / 1000);
}

/** The status a job's progress holds, or undefined when it holds none (a job not started yet). */
export function replicationStatusOf(progress: unknown): ReplicationStatus | undefined {
  if (typeof progress !== 'object' || progress === null) return undefined;
  const status = progress as Partial<ReplicationStatus>;
  return status.v === 1 && typeof status.database === 'string' && typeof status.host === 'string' ? (status as ReplicationStatus) : undefined;
}
