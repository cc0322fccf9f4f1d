import type { FlagName } from './flags.js';

/** What a command accepts: its arguments, its flags, and the text of its help. */
export interface CommandSpec {
  /** As typed: `restore`, or `job status` for a command with a subcommand. */
  name: string;
  /** Arguments after the command name, for the usage line (`<snapshot> <target>...`). */
  args: string;
  minArgs: number;
  /** Infinity for a list (`<source>...`). */
  maxArgs: number;
  flags: readonly FlagName[];
  summary: string;
  /** Paragraphs shown by `snapworker help <command>` after the flags. */
  notes?: string;
}

const JOB_FLAGS = ['wait', 'local', 'json', 'job-id'] as const satisfies readonly FlagName[];
const PICK_FLAGS = ['repo', 'source', 'label'] as const satisfies readonly FlagName[];
const SNAPSHOT_REF =
  '<snapshot> is an id, a unique prefix of an id or of its 8 hex digits (as `ls` shows them), or "latest": the newest with --source and/or --label, or without them the newest of a repository holding one lineage.';
const JOB_MODES =
  'Without --wait or --local the job is enqueued and its id printed. --wait follows it to its end (Ctrl-C stops following, not the job); --local runs it in this process without Redis.';

const POLICY_RULES =
  "Rules (restic's forget policy, comma-separated): keep-last=N, keep-{hourly,daily,weekly,monthly,yearly}=N|unlimited, keep-within[-{hourly,daily,weekly,monthly,yearly}]=7d|1y2mo, keep-tag=k=v. Calendar periods in --tz (default UTC); --dry-run lists every snapshot with keep or remove and why.";
const SCHEDULE_FLAGS = ['json'] as const satisfies readonly FlagName[];

/** Every command, in the order `--help` lists them. */
export const COMMANDS: readonly CommandSpec[] = [
  { name: 'worker', args: '', minArgs: 0, maxArgs: 0, flags: [], summary: 'run a worker (configuration from the environment)' },
  {
    name: 'init',
    args: '',
    minArgs: 0,
    maxArgs: 0,
    flags: ['repo', 'json'],
    summary: 'create a repository (writes its config object)',
    notes: 'Read-only commands never create a repository. Snapshots create one only when SNAPWORKER_AUTO_INIT allows it (see the README).',
  },
  {
    name: 'snapshot',
    args: '<source>...',
    minArgs: 1,
    maxArgs: Infinity,
    flags: ['repo', 'label', 'name', 'include', 'exclude', 'compression', 'no-consumers', 'check-messages', 'skip-unreadable', ...JOB_FLAGS],
    summary: 'snapshot sources into the repository',
    notes: `Sources: dir:///abs/path, sqlite:///abs/path/db.sqlite (several allowed), nats://host:4222/STREAM.\n${JOB_MODES}`,
  },
  {
    name: 'restore',
    args: '<snapshot> <target>...',
    minArgs: 2,
    maxArgs: Infinity,
    flags: [...PICK_FLAGS, 'replace', ...JOB_FLAGS],
    summary: 'restore a snapshot into targets (URIs like the sources)',
    notes: `${SNAPSHOT_REF}\nAn existing target is refused unless --replace is given. ${JOB_MODES}`,
  },
  {
    name: 'verify',
    args: '<snapshot>',
    minArgs: 1,
    maxArgs: 1,
    flags: [...PICK_FLAGS, ...JOB_FLAGS],
    summary: 'read a snapshot back and check every sum (and the seal)',
    notes: `${SNAPSHOT_REF}\n${JOB_MODES}`,
  },
  {
    name: 'prune',
    args: '<keep-daily=7,keep-weekly=4,...>',
    minArgs: 1,
    maxArgs: 1,
    flags: ['repo', 'source', 'label', 'group-by', 'tz', 'dry-run', ...JOB_FLAGS],
    summary: 'remove snapshots the policy does not keep, and incomplete ones',
    notes: `${POLICY_RULES}\n${JOB_MODES}`,
  },
  { name: 'ls', args: '', minArgs: 0, maxArgs: 0, flags: ['repo', 'source', 'label', 'json'], summary: 'list snapshots (a table; --json for records)' },
  // show always prints JSON; --json is accepted so scripts can pass it to every catalog command.
  { name: 'show', args: '<snapshot>', minArgs: 1, maxArgs: 1, flags: [...PICK_FLAGS, 'json'], summary: "print a snapshot's record as JSON", notes: SNAPSHOT_REF },
  {
    name: 'rm',
    args: '<snapshot> | --all',
    minArgs: 0,
    maxArgs: 1,
    flags: [...PICK_FLAGS, 'all', 'dry-run', 'json'],
    summary: 'remove a snapshot, or with --all every snapshot matching --source/--label',
    notes: `${SNAPSHOT_REF}\n--all (e.g. rm --label app=shop --all) needs --source or --label and no <snapshot>; --dry-run lists what would be removed.`,
  },
  {
    name: 'link',
    args: '<snapshot>',
    minArgs: 1,
    maxArgs: 1,
    flags: [...PICK_FLAGS, 'expires', 'json'],
    summary: "print a presigned download link to a snapshot's archive (S3)",
    notes: SNAPSHOT_REF,
  },
  {
    name: 'watch',
    args: '[jobId]',
    minArgs: 0,
    maxArgs: 1,
    flags: ['json'],
    summary: 'follow job events on NATS (one job: until it ends, also without NATS)',
    notes: 'A job that already ended is reported at once from the queue. Exit code: the job\'s outcome; 130 when interrupted.',
  },
  { name: 'job status', args: '<jobId>', minArgs: 1, maxArgs: 1, flags: ['json'], summary: "print a queued job's state, progress and result or failure" },
  {
    name: 'job cancel',
    args: '<jobId>',
    minArgs: 1,
    maxArgs: 1,
    flags: ['json'],
    summary: 'remove a waiting job, or abort a running one',
    notes: 'A running job is aborted through its AbortSignal on the worker that runs it and fails with "cancelled"; it is not retried.',
  },
  {
    name: 'schedule add',
    args: '<name> <source>...',
    minArgs: 2,
    maxArgs: Infinity,
    flags: ['cron', 'every', 'tz', 'keep', 'group-by', 'paused', 'repo', 'label', 'name', 'include', 'exclude', 'compression', 'no-consumers', 'check-messages', 'skip-unreadable', 'json'],
    summary: 'add or replace a schedule: a snapshot on --cron (in --tz) or --every, pruned by --keep after each run',
    notes: `Exactly one of --cron and --every. ${POLICY_RULES}`,
  },
  { name: 'schedule ls', args: '', minArgs: 0, maxArgs: 0, flags: SCHEDULE_FLAGS, summary: 'list schedules: next run, last run, last result' },
  { name: 'schedule show', args: '<name>', minArgs: 1, maxArgs: 1, flags: SCHEDULE_FLAGS, summary: "print a schedule's definition and status as JSON" },
  { name: 'schedule rm', args: '<name>', minArgs: 1, maxArgs: 1, flags: SCHEDULE_FLAGS, summary: 'remove a schedule (its snapshots stay)' },
  { name: 'schedule pause', args: '<name>', minArgs: 1, maxArgs: 1, flags: SCHEDULE_FLAGS, summary: 'stop creating runs until resumed' },
  { name: 'schedule resume', args: '<name>', minArgs: 1, maxArgs: 1, flags: SCHEDULE_FLAGS, summary: 'create runs again' },
  { name: 'schedule run', args: '<name>', minArgs: 1, maxArgs: 1, flags: SCHEDULE_FLAGS, summary: 'enqueue one run now and print its job id' },
  { name: 'help', args: '[command]', minArgs: 0, maxArgs: 2, flags: [], summary: 'show help for a command' },
];

/** The spec of `name` (`restore`, `job status`), or undefined. */
export function findCommand(name: string): CommandSpec | undefined {
  return COMMANDS.find((command) => command.name === name);
}
