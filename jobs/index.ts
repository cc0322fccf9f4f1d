/**
 * The public API for producers: job schemas, result types and the client.
 * @module snapworker/jobs
 */
export { SnapworkerClient, DEFAULT_JOB_OPTIONS, toConnection } from './client.js';
export type { SnapworkerClientOptions, EnqueueOptions, WaitOptions } from './client.js';
export { parseRedisUrl, type RedisSettings } from './redis-connection.js';
export {
  snapshotJobSchema,
  restoreJobSchema,
  verifyJobSchema,
  pruneJobSchema,
  replicateJobSchema,
  JOB_SCHEMAS,
  JOB_PRIORITY,
  durationSeconds,
  scheduleSchema,
  retentionFields,
} from './schemas.js';
export { replicateJobId } from './replicate-job-id.js';
export type { SnapshotJobData, RestoreJobData, VerifyJobData, PruneJobData, ReplicateJobData, JobDataByKind, ScheduleDefinition, RetentionFields } from './schemas.js';
export { ScheduleBook, jobDataOf } from './schedules.js';
export type { ScheduleStatus, ScheduleRun } from './schedules.js';
export type {
  SnapshotJobResult,
  SnapshotRecordResult,
  ScheduledRetention,
  RestoreJobResult,
  VerifyJobResult,
  PruneJobResult,
  ReplicateJobResult,
  PruneDecisionResult,
  EntryNoticeKind,
  JobResultByKind,
} from './results.js';
export { parseJobData, parseJob, isJobKind } from './validate.js';
export { JOB_KINDS, type JobKind } from '../shared/job-kind.js';
export type { ProgressReport, Phase } from './progress-report.js';
