import type { JobKind } from '../job-kind.js';
import type { ProgressReport } from '../progress.js';
import type { EntryNotice } from '../kinds/notices.js';

/** The job an event is about. */
export interface JobRef {
  /** The BullMQ job id, as the producer chose it (any string; encoded for subjects, see subject.ts). */
  jobId: string;
  kind: JobKind;
  /** The schedule whose run this job is, when it is one. */
  schedule?: string;
}

/**
 * Where the worker reports a job's life. Implementations never throw from these methods and never
 * make a job wait: events are a view on jobs, never a reason for one to fail or slow down.
 */
export interface JobEventSink {
  started(job: JobRef): void;
  /** Called at most about once a second per job (the caller throttles, see ProgressTracker). */
  progress(job: JobRef, report: ProgressReport): void;
  /** An entry a snapshot could not keep exactly; sent for the first NAMED_NOTICES of a job only. */
  warning(job: JobRef, notice: EntryNotice): void;
  /** A replicate job's replicator started, moved here from another worker, or began a generation. */
  replication(job: JobRef, change: ReplicationChange): void;
  /** `result` is the job's JSON result (for a snapshot: its record). */
  completed(job: JobRef, result: unknown): void;
  /** `error` is the failure reason as the job records it. */
  failed(job: JobRef, error: string): void;
  /** Sends what is still buffered (briefly) and releases the connection. Never throws. */
  close(): Promise<void>;
}

/** A sink that drops everything: for a worker without `NATS_URL`, and for `--local` runs. */
export const nullEventSink: JobEventSink = {
  started() {},
  progress() {},
  warning() {},
  replication() {},
  completed() {},
  failed() {},
  async close() {},
};

/** The event names: the last token of the subject and the `event` field of the payload. */
export const JOB_EVENT_NAMES = ['started', 'progress', 'warning', 'replication', 'completed', 'failed'] as const;
export type JobEventName = (typeof JOB_EVENT_NAMES)[number];

/** The payload schema version. */
export const JOB_EVENT_VERSION = 1;

/** Fields every event payload carries. The JSON Schema is docs/schemas/event.schema.json. */
export interface JobEventBase {
  v: typeof JOB_EVENT_VERSION;
  event: JobEventName;
  /** The job id as given by the producer (not encoded). */
  jobId: string;
  kind: JobKind;
  /** When the event happened, ISO 8601 UTC with milliseconds. */
  at: string;
  /** Present on every event of a scheduled run: the schedule's name. */
  schedule?: string;
}

export interface JobStartedEvent extends JobEventBase {
  event: 'started';
}

export interface JobProgressEvent extends JobEventBase, ProgressReport {
  event: 'progress';
}

/** An entry a snapshot could not keep exactly (shared/kinds/notices.ts). */
export interface JobWarningEvent extends JobEventBase {
  event: 'warning';
  /** The notice's kind (`kind` is the job's). */
  notice: EntryNotice['kind'];
  path: string;
  reason: string;
}

/** What happened to a replicator (the `replication` event of a `replicate` job). */
export interface ReplicationChange {
  /** `started` on a worker, `moved` from another worker (takeover), or a new `generation` begun. */
  change: 'started' | 'moved' | 'generation';
  /** The replica name (never a path). */
  database: string;
  /** The worker host now running it. */
  host: string;
  /** With `moved`: the host that ran it before. */
  from?: string;
  /** With `generation`: the new generation and why it began. */
  generation?: string;
  reason?: string;
}

export interface JobReplicationEvent extends JobEventBase, ReplicationChange {
  event: 'replication';
}

export interface JobCompletedEvent extends JobEventBase {
  event: 'completed';
  result: unknown;
}

export interface JobFailedEvent extends JobEventBase {
  event: 'failed';
  error: string;
}

export type JobEvent = JobStartedEvent | JobProgressEvent | JobWarningEvent | JobReplicationEvent | JobCompletedEvent | JobFailedEvent;

/** Builds the payload of an event; the one place that shapes payloads, for every sink. */
export function buildJobEvent(job: JobRef, event: 'started', at?: Date): JobStartedEvent;
export function buildJobEvent(job: JobRef, event: 'progress', at: Date | undefined, report: ProgressReport): JobProgressEvent;
export function buildJobEvent(job: JobRef, event: 'warning', at: Date | undefined, notice: EntryNotice): JobWarningEvent;
export function buildJobEvent(job: JobRef, event: 'replication', at: Date | undefined, change: ReplicationChange): JobReplicationEvent;
export function buildJobEvent(job: JobRef, event: 'completed', at: Date | undefined, result: unknown): JobCompletedEvent;
export function buildJobEvent(job: JobRef, event: 'failed', at: Date | undefined, error: string): JobFailedEvent;
export function buildJobEvent(job: JobRef, event: JobEventName, at: Date = new Date(), detail?: unknown): JobEvent {
  const base = { v: JOB_EVENT_VERSION, jobId: job.jobId, kind: job.kind, at: at.toISOString(), ...(job.schedule ? { schedule: job.schedule } : {}) } as const;
  switch (event) {
    case 'started':
      return { ...base, event };
    case 'progress':
      return { ...base, event, ...progressFields(detail as ProgressReport) };
    case 'warning': {
      const { kind: notice, path, reason } = detail as EntryNotice;
      // `kind` is the job's; the notice's kind travels as `notice`.
      return { ...base, event, notice, path, reason };
    }
    case 'replication': {
      const { change, database, host, from, generation, reason } = detail as ReplicationChange;
      return { ...base, event, change, database, host, ...(from ? { from } : {}), ...(generation ? { generation, reason } : {}) };
    }
    case 'completed':
      // `undefined` is not JSON; a job without a result reports null.
      return { ...base, event, result: detail === undefined ? null : detail };
    case 'failed':
      return { ...base, event, error: String(detail) };
  }
}

/** Copies only the documented progress fields, so extra members of a report never leak out. */
function progressFields(report: ProgressReport): ProgressReport {
  const fields: ProgressReport = {
    phase: report.phase,
    bytesDone: report.bytesDone,
    entriesDone: report.entriesDone,
    bytesPerSecond: report.bytesPerSecond,
  };
  if (report.bytesTotal !== undefined) fields.bytesTotal = report.bytesTotal;
  if (report.etaSeconds !== undefined) fields.etaSeconds = report.etaSeconds;
  return fields;
}
