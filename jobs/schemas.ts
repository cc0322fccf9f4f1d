import { z } from 'zod';
import { checkEndpoints } from '../shared/kinds/registry.js';
import type { JobKind } from '../shared/job-kind.js';
import { CALENDAR_DURATION_PATTERN } from '../shared/retention/calendar-duration.js';
import { checkTimeZone } from '../shared/retention/calendar-buckets.js';
import { GROUP_KEYS } from '../shared/retention/group-snapshots.js';
import type { RetentionPolicy } from '../shared/retention/retention-policy.js';
import { ENDPOINT_FORMS } from '../shared/kinds/registry.js';
import { checkKindFields, withKindFields } from './kind-fields.js';

/**
 * Job data contracts, version 1. Plain JSON, so a producer in any language with a BullMQ client
 * can enqueue; the same schemas are exported as JSON Schema files under `docs/schemas/`.
 * Job data never carries credentials: repositories are referred to by name, NATS credentials by
 * worker-side profile. The fields of each kind of source and target come from its registration
 * (`shared/kinds/<kind>/index.ts`, see `kind-fields.ts`).
 */

const uri = z.string().min(1).max(4096).describe(`A source or target URI: ${ENDPOINT_FORMS}`);
const uris = z.union([uri, z.array(uri).min(1).max(64)]);
const repo = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,64}$/)
  .describe("Name of a repository configured on the workers (SNAPWORKER_REPOSITORIES); default: the workers' default repository");
const lineageName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/).describe('Lineage (source) name');
/** A label key: a letter or digit, then up to 62 letters, digits and `_ . / -` (Kubernetes' label-name characters). */
export const LABEL_KEY = /^[A-Za-z0-9][A-Za-z0-9_.\/-]{0,62}$/;
const labels = z
  .record(z.string().regex(LABEL_KEY), z.string().max(256))
  .refine((l) => Object.keys(l).length <= 32, 'at most 32 labels')
  .describe('Free-form labels; any of them can be used to list snapshots or pick the latest one');
const snapshotRef = z
  .string()
  .regex(/^(latest|\d{8}T\d{9}Z-[0-9a-f]{8})$/, 'a snapshot id like 20261122T031500123Z-1a2b3c4d, or "latest"')
  .describe('A snapshot id, or "latest": the newest snapshot matching `source` and/or `labels`, or without them the newest of a repository that holds one lineage');
const duration = z.string().regex(/^\d+(s|m|h|d|w)$/, 'a duration like 90s, 30m, 12h, 7d or 4w');
const scheduleName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'a name of letters, digits, _ . - (at most 64)').describe('Schedule name');
const keepCount = (what: string) =>
  z.union([z.number().int().min(0).max(100000), z.literal('unlimited')]).optional().describe(what + '; "unlimited" keeps one in every such period');
const calendarDuration = (what: string) =>
  z
    .string()
    .regex(CALENDAR_DURATION_PATTERN, 'a duration like 30m, 12h, 7d, 4w, 6mo or 1y2mo3d (units y, mo, w, d, h, m, s, largest first)')
    .optional()
    .describe(what);
const timeZone = z
  .string()
  .max(64)
  .refine((tz) => {
    try {
      return checkTimeZone(tz) === tz;
    } catch {
      return false;
    }
  }, 'an IANA time zone like Europe/Prague or UTC')
  .describe('IANA time zone the calendar rules count hours, days, weeks, months and years in (default UTC)');

/**
 * Retention rules with restic's names and semantics (`restic forget`): a snapshot kept by any rule
 * stays; counts of 0 and absent fields are no rule; without any rule nothing complete is removed.
 * Shared by prune jobs and schedules.
 */
export const retentionFields = {
  keepLast: keepCount('Keep the newest N snapshots of each group'),
  keepHourly: keepCount('For the last N hours that have snapshots, keep the newest of each hour'),
  keepDaily: keepCount('For the last N days that have snapshots, keep the newest of each day'),
  keepWeekly: keepCount('For the last N ISO weeks (Monday to Sunday) that have snapshots, keep the newest of each'),
  keepMonthly: keepCount('For the last N months that have snapshots, keep the newest of each'),
  keepYearly: keepCount('For the last N years that have snapshots, keep the newest of each'),
  keepWithin: calendarDuration("Keep every snapshot within this duration of the group's newest snapshot"),
  keepWithinHourly: calendarDuration("Keep the newest snapshot of each hour within this duration of the group's newest"),
  keepWithinDaily: calendarDuration("Keep the newest snapshot of each day within this duration of the group's newest"),
  keepWithinWeekly: calendarDuration("Keep the newest snapshot of each week within this duration of the group's newest"),
  keepWithinMonthly: calendarDuration("Keep the newest snapshot of each month within this duration of the group's newest"),
  keepWithinYearly: calendarDuration("Keep the newest snapshot of each year within this duration of the group's newest"),
  keepTag: z
    .array(z.string().regex(/^[^=,]+=[^,]*(,[^=,]+=[^,]*)*$/, 'labels like app=shop or app=shop,tier=gold'))
    .max(32)
    .optional()
    .describe('Keep snapshots carrying these labels: each entry k=v or k=v,k2=v2 (all must match); any entry matching keeps'),
  groupBy: z
    .array(z.enum(GROUP_KEYS))
    .max(2)
    .optional()
    .describe('What the policy is applied per: source (default), labels, both, or [] for all snapshots together'),
  tz: timeZone.optional(),
};

const snapshotJobObject = z
  .object(
    withKindFields(
      {
        v: z.literal(1),
        source: uris,
        repo: repo.optional(),
        name: lineageName.optional(),
        labels: labels.optional(),
        compression: z.enum(['zstd', 'gzip', 'none']).optional().describe('Archive compression, default zstd'),
        parent: z
          .string()
          .regex(/^\d{8}T\d{9}Z-[0-9a-f]{8}$/, 'a snapshot id like 20261122T031500123Z-1a2b3c4d')
          .optional()
          .describe('Chunked repositories: the snapshot of the same lineage to reuse unchanged files from (default: its latest chunked snapshot)'),
        force: z.literal(true).optional().describe('Chunked repositories: read every file, reusing nothing from a parent snapshot'),
        schedule: z
          .object({
            name: scheduleName,
            retention: z.object(retentionFields).strict().optional(),
          })
          .strict()
          .optional()
          .describe("Set by schedules: the schedule's name, and the retention its lineage is pruned by after each successful snapshot"),
      },
      'source',
    ),
  )
  .strict();

export const snapshotJobSchema = snapshotJobObject.superRefine(checkKindFields('source', 'source')).superRefine((data, ctx) => {
  if (data.parent !== undefined && data.force) ctx.addIssue({ code: 'custom', path: ['force'], message: 'force reads every file: it cannot go with a parent' });
});

const restoreGlobs = z.array(z.string().min(1).max(1024)).max(256).optional();

export const restoreJobSchema = z
  .object(
    withKindFields(
      {
        v: z.literal(1),
        snapshot: snapshotRef,
        target: uris,
        repo: repo.optional(),
        source: lineageName.optional().describe('With snapshot "latest": the lineage to take it from'),
        labels: labels.optional().describe('With snapshot "latest": labels the snapshot must carry'),
        replace: z.boolean().optional().describe('Replace an existing target (default false: an existing target is refused)'),
        include: restoreGlobs.describe('Partial restore (dir snapshots): only paths matching one of these globs (picomatch, relative to the snapshot root), with their parent directories'),
        exclude: restoreGlobs.describe('Partial restore (dir snapshots): leave out paths matching these globs, and everything under them'),
        subPath: z
          .string()
          .regex(/^\/[^\0]*$/)
          .max(4096)
          .optional()
          .describe('Partial restore (dir snapshots): restore only this directory of the snapshot (absolute within it, e.g. /etc/app); its content becomes the target root'),
      },
      'target',
    ),
  )
  .strict()
  .superRefine(checkKindFields('target', 'target'));

export const verifyJobSchema = z
  .object({
    v: z.literal(1),
    snapshot: snapshotRef,
    repo: repo.optional(),
    source: lineageName.optional(),
    labels: labels.optional(),
  })
  .strict();

export const pruneJobSchema = z
  .object({
    v: z.literal(1),
    repo: repo.optional(),
    source: lineageName.optional().describe('Only this lineage'),
    labels: labels.optional().describe('Only snapshots carrying these labels'),
    ...retentionFields,
    incompleteGrace: duration.optional().describe('Remove incomplete snapshots older than this (default 1h)'),
    dryRun: z.boolean().optional(),
  })
  .strict();

/** Copies snapshots to another repository (docs/commands.md, `copy`). */
export const copyJobSchema = z
  .object({
    v: z.literal(1),
    snapshots: z.array(snapshotRef).min(1).max(1000).describe('The snapshots to copy: ids, or "latest" (with `source`/`labels`)'),
    repo: repo.optional().describe('The repository to copy from'),
    to: repo.describe('Name of the repository to copy to, configured on the workers; must differ from `repo`'),
    source: lineageName.optional().describe('With "latest": the lineage to take it from'),
    labels: labels.optional().describe('With "latest": labels the snapshot must carry'),
  })
  .strict();

/** Checks a repository's structure and reads a share of its snapshots whole (docs/commands.md, `check`). */
export const checkJobSchema = z
  .object({
    v: z.literal(1),
    repo: repo.optional(),
    readDataSubset: z
      .string()
      .regex(/^(\d+(\.\d+)?%|\d+\/\d+)$/, 'a share like 5% or n/t like 1/10')
      .optional()
      .describe("restic's --read-data-subset over snapshots: n% a random share, n/t the n-th of t fixed groups; absent: structure only"),
  })
  .strict();

/**
 * A long-running SQLite replicator (docs/sqlite.md, "Replication"): runs while a worker holds the
 * job, until cancelled (`replicate stop`); on worker shutdown or death another worker takes it.
 */
export const replicateJobSchema = z
  .object({
    v: z.literal(1),
    source: uri.describe('The database: sqlite:///abs/path/db.sqlite (WAL mode)'),
    repo: repo.optional(),
    name: lineageName.optional().describe("Replica name (replicas/<name>/ in the repository; the metrics' database label); default: the file's base name"),
    interval: duration
      .refine((d) => durationSeconds(d) >= 1 && durationSeconds(d) <= 3600, 'from 1s to 1h')
      .optional()
      .describe('Pause between syncs (default 1s): commits older than about this are in the replica'),
    retention: duration
      .refine((d) => durationSeconds(d) >= 60, 'at least 1m')
      .optional()
      .describe('Keep every point of the last such duration restorable and remove what no such point needs (default: keep everything)'),
  })
  .strict()
  .superRefine((data, ctx) => {
    // Only SQLite replicates; refused here, not by the worker after the job was enqueued.
    const parsed = checkEndpoints([data.source]);
    const problem = typeof parsed === 'string' ? parsed : parsed.registration.kind === 'sqlite' ? undefined : `${parsed.registration.kind} cannot be replicated (sqlite:///abs/path/db.sqlite)`;
    if (problem) ctx.addIssue({ code: 'custom', path: ['source'], message: problem });
  });

/** The retention fields of job data, as present in a prune job or a schedule. */
export type RetentionFields = { [K in keyof typeof retentionFields]?: z.infer<(typeof retentionFields)[K]> };

/** The policy `applyRetentionPolicy` takes from job fields (`tz` becomes `timeZone`). */
export function retentionPolicyOf(fields: RetentionFields): RetentionPolicy {
  const { groupBy: _groupBy, tz, ...rules } = fields;
  return { ...rules, ...(tz ? { timeZone: tz } : {}) };
}

/**
 * A schedule (not job data: what `client.schedule()` and `snapworker schedule add` take): a
 * snapshot job run on a cron pattern in a time zone or every fixed interval, and the retention its
 * lineage is pruned by after each successful run.
 */
export const scheduleSchema = z
  .object({
    v: z.literal(1),
    name: scheduleName,
    cron: z.string().min(9).max(256).optional().describe('Cron pattern (5 or 6 fields), e.g. "0 3 * * *"'),
    every: duration.refine((d) => durationSeconds(d) >= 1, 'at least 1s').optional().describe('Fixed interval instead of cron, e.g. 1h'),
    tz: timeZone.optional().describe('IANA zone the cron pattern and the calendar retention are read in (default UTC)'),
    job: snapshotJobObject.omit({ schedule: true }).superRefine(checkKindFields('source', 'source')),
    retention: z.object(retentionFields).strict().optional(),
    paused: z.boolean().optional(),
    managedBy: z.string().max(64).optional().describe('Who owns the schedule, e.g. "helm"; reconcile touches only its own'),
  })
  .strict()
  .refine((s) => (s.cron === undefined) !== (s.every === undefined), 'exactly one of cron and every');

export type ScheduleDefinition = z.infer<typeof scheduleSchema>;

export type SnapshotJobData = z.infer<typeof snapshotJobSchema>;
export type RestoreJobData = z.infer<typeof restoreJobSchema>;
export type VerifyJobData = z.infer<typeof verifyJobSchema>;
export type PruneJobData = z.infer<typeof pruneJobSchema>;
export type ReplicateJobData = z.infer<typeof replicateJobSchema>;
export type CopyJobData = z.infer<typeof copyJobSchema>;
export type CheckJobData = z.infer<typeof checkJobSchema>;

export interface JobDataByKind {
  snapshot: SnapshotJobData;
  restore: RestoreJobData;
  verify: VerifyJobData;
  prune: PruneJobData;
  replicate: ReplicateJobData;
  copy: CopyJobData;
  check: CheckJobData;
}

export const JOB_SCHEMAS: { [K in JobKind]: z.ZodType<JobDataByKind[K]> } = {
  snapshot: snapshotJobSchema,
  restore: restoreJobSchema,
  verify: verifyJobSchema,
  prune: pruneJobSchema,
  replicate: replicateJobSchema,
  copy: copyJobSchema,
  check: checkJobSchema,
};

/**
 * BullMQ priorities by job name (lower runs first). Restores jump every backlog of snapshots:
 * someone is waiting for their data. Producers using plain BullMQ should pass these too.
 */
export const JOB_PRIORITY: { [K in JobKind]: number } = {
  restore: 1,
  verify: 5,
  prune: 8,
  snapshot: 10,
  // A replicator not running is data at risk: before the backlog, after a waiting restore.
  replicate: 2,
  check: 6,
  copy: 9,
};

/** Seconds in a duration string accepted by the schemas (`90s`, `30m`, `12h`, `7d`, `4w`). */
export function durationSeconds(text: string): number {
  const unit = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 }[text.at(-1) as 's' | 'm' | 'h' | 'd' | 'w'];
  return Number(text.slice(0, -1)) * unit;
}
