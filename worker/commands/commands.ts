import { ENDPOINT_FORMS, type EndpointRole } from '../../shared/kinds/registry.js';
import { FLAGS, type FlagName, type FlagSpec } from './flags.js';
import { kindFlags, type KindFlag } from './kind-flags.js';

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
  /** The command also takes the flags of the kinds' source or target job fields (`kind-flags.ts`). */
  kindFlags?: EndpointRole;
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
    flags: ['repo', 'format', 'encrypt', 'key-source', 'key-label', 'json'],
    summary: 'create a repository (writes its config object), encrypted when it has key sources',
    notes:
      '--format chunked makes a deduplicating repository (docs/chunked-format.md): files cut into chunks stored once, incremental snapshots; archive (the default) stores one tar per snapshot.\n' +
      'Read-only commands never create a repository. Snapshots create one only when SNAPWORKER_AUTO_INIT allows it (see the README).\n' +
      'A repository with keys configured (SNAPWORKER_REPOSITORY_KEYS) or given with --key-source is created encrypted, one key object per source; --encrypt refuses to create it otherwise (docs/encryption.md).',
  },
  {
    name: 'snapshot',
    args: '<source>...',
    minArgs: 1,
    maxArgs: Infinity,
    flags: ['repo', 'label', 'name', 'compression', 'parent', 'force', ...JOB_FLAGS],
    kindFlags: 'source',
    summary: 'snapshot sources into the repository',
    notes: `Sources: ${ENDPOINT_FORMS}.\nChunked repositories: files whose size, mtime, ctime and inode match the parent snapshot (--parent ID, default the lineage's latest) are not read again; --force reads every file.\n${JOB_MODES}`,
  },
  {
    name: 'restore',
    args: '<snapshot>[:/sub/path] <target>...',
    // One argument is enough with the replica's point flags (replica-point.ts checks the rest).
    minArgs: 1,
    maxArgs: Infinity,
    flags: [...PICK_FLAGS, 'replace', 'include', 'exclude', 'timestamp', 'generation', 'index', ...JOB_FLAGS],
    kindFlags: 'target',
    summary: 'restore a snapshot into targets (URIs like the sources), or an SQLite database from its replica to a point in time',
    notes:
      `${SNAPSHOT_REF}\nAn existing target is refused unless --replace is given. ${JOB_MODES}\n` +
      'Partial restore (dir snapshots, docs/browsing.md): <snapshot>:/sub/path restores that directory\'s content as the target\'s root (as restic does); --include/--exclude G select by glob relative to the snapshot root (as `files` prints paths). Archives with an entry index read only the frames holding what is selected.\n' +
      'Point in time (SQLite replicas, docs/sqlite.md): restore sqlite:///abs/db --source NAME --timestamp 2026-11-29T16:15:00Z, or --generation G [--index N], or --replica \'{}\' for the newest state; no snapshot argument (or "latest").',
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
    name: 'export',
    args: '<snapshot>',
    minArgs: 1,
    maxArgs: 1,
    flags: PICK_FLAGS,
    summary: 'write a snapshot of any format as a format-v1 archive (tar.zst) to stdout',
    notes: `${SNAPSHOT_REF}\nRead and checked as verify does; stock tools read the output: snapworker export ID | zstd -d | tar -x && sha256sum -c SHA256SUMS. Runs in this process.`,
  },
  {
    name: 'check',
    args: '',
    minArgs: 0,
    maxArgs: 0,
    flags: ['repo', 'read-data-subset', ...JOB_FLAGS],
    summary: "check a repository's structure, and with --read-data-subset read a share of its snapshots whole",
    notes:
      "Structure: every record parses and names a known format, every object a record needs exists with the size it gives, and each format's own structural check. --read-data-subset 5% (a random share, at least one snapshot) or 1/10 (the first of 10 fixed groups: 1/10 … 10/10 read everything) reads those snapshots whole and verifies every sum, as verify does. Exit code 1 when a problem was found (each named).\n" +
      JOB_MODES,
  },
  {
    name: 'copy',
    args: '<snapshot>...',
    minArgs: 1,
    maxArgs: Infinity,
    flags: [...PICK_FLAGS, 'to', ...JOB_FLAGS],
    summary: 'copy snapshots to another repository (--to), keeping their ids; verified on arrival',
    notes:
      `${SNAPSHOT_REF}\nSnapshots the target already holds are skipped. Between repositories of the same format the stored objects are copied as they are; otherwise the entries are re-written in the target's format. Each copy is read back from the target and verified before its record is written; a damaged source snapshot is refused and nothing of it is committed. The target must exist (snapworker init). ${JOB_MODES}`,
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
  {
    name: 'ls',
    args: '',
    minArgs: 0,
    maxArgs: 0,
    flags: ['repo', 'source', 'label', 'group-by', 'generations', 'json'],
    summary: 'list snapshots (a table; --json for their summaries), or with --generations the generations of a replica',
    notes:
      'Read from the catalog index: --source reads one lineage. --group-by source, labels or label:KEY (comma-separated, e.g. label:app) prints one table per group, as restic snapshots --group-by does; snapshots without that label form their own group. `show` prints a whole record.\n' +
      '--generations --source NAME lists the generations of the SQLite replica NAME (snapworker replicate): when each began and was last read, its first and last WAL position (index/offset), its segments and their bytes; a restore reaches any point inside them.',
  },
  {
    name: 'files',
    args: '<snapshot> [path]',
    minArgs: 1,
    maxArgs: 2,
    flags: [...PICK_FLAGS, 'long', 'json'],
    summary: "list a snapshot's entries (all, or those at and below path), without reading its data",
    notes: `${SNAPSHOT_REF}\nPaths of directory snapshots print as /sub/file (the snapshot root is /). Archives with an entry index are listed from it alone; older ones are read whole. --json prints one JSON array of entries (mtimeNs as a string).`,
  },
  {
    name: 'dump',
    args: '<snapshot> <path>',
    minArgs: 2,
    maxArgs: 2,
    flags: [...PICK_FLAGS],
    summary: 'write one file of a snapshot to stdout, or a tar of a directory',
    notes: `${SNAPSHOT_REF}\nReads only the frames holding the path when the archive has an entry index; every file's SHA-256 is checked. A directory comes out as a tar (pax) of its entries, paths relative to it.`,
  },
  {
    name: 'diff',
    args: '<snapshot-a> <snapshot-b>',
    minArgs: 2,
    maxArgs: 2,
    flags: [...PICK_FLAGS, 'json'],
    summary: 'show what changed from snapshot a to snapshot b: added, removed and changed entries, with sizes',
    notes:
      `${SNAPSHOT_REF}\nOne line per entry: + added, - removed, M content changed (by SHA-256), T type changed, U metadata only (mode, mtime, link target, xattrs), then what changed and a summary (restic's diff). --json prints one document: {a, b, changes, summary}. Snapshots without an entry index are read whole (and verified) to list them.`,
  },
  {
    name: 'find',
    args: '<glob>',
    minArgs: 1,
    maxArgs: 1,
    flags: [...PICK_FLAGS, 'json'],
    summary: 'list the snapshots holding a path matching a glob, and the matching paths',
    notes:
      'A glob without "/" matches entry names (*.conf, app.log*); with "/" it matches whole paths, as the snapshot stores them (data/etc/**, **/logs/*.gz) or, in directory snapshots, as files shows them (/etc/**). --source and --label choose the snapshots searched (default: all). Snapshots without an entry index are read whole (and verified) to list them. --json prints one document: a list of {snapshot, matches}.',
  },
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
    flags: ['cron', 'every', 'tz', 'keep', 'group-by', 'paused', 'repo', 'label', 'name', 'compression', 'json'],
    kindFlags: 'source',
    summary: 'add or replace a schedule: a snapshot on --cron (in --tz) or --every, pruned by --keep after each run',
    notes: `Exactly one of --cron and --every. ${POLICY_RULES}`,
  },
  { name: 'schedule ls', args: '', minArgs: 0, maxArgs: 0, flags: SCHEDULE_FLAGS, summary: 'list schedules: next run, last run, last result' },
  { name: 'schedule show', args: '<name>', minArgs: 1, maxArgs: 1, flags: SCHEDULE_FLAGS, summary: "print a schedule's definition and status as JSON" },
  { name: 'schedule rm', args: '<name>', minArgs: 1, maxArgs: 1, flags: SCHEDULE_FLAGS, summary: 'remove a schedule (its snapshots stay)' },
  { name: 'schedule pause', args: '<name>', minArgs: 1, maxArgs: 1, flags: SCHEDULE_FLAGS, summary: 'stop creating runs until resumed' },
  { name: 'schedule resume', args: '<name>', minArgs: 1, maxArgs: 1, flags: SCHEDULE_FLAGS, summary: 'create runs again' },
  { name: 'schedule run', args: '<name>', minArgs: 1, maxArgs: 1, flags: SCHEDULE_FLAGS, summary: 'enqueue one run now and print its job id' },
  {
    name: 'catalog rebuild',
    args: '',
    minArgs: 0,
    maxArgs: 0,
    flags: ['repo', 'json'],
    summary: 'rebuild the catalog index from the snapshot records',
    notes:
      'Reads every record (the truth) and replaces the index objects with one per lineage; damaged records are named and left out. Safe while snapshots and prunes run. Needed only after records were changed outside snapworker (copied in, deleted by hand) or by a version without the index.',
  },
  {
    name: 'replicate',
    args: '<sqlite:///abs/db>',
    minArgs: 1,
    maxArgs: 1,
    flags: ['repo', 'name', 'interval', 'retention', 'local', 'json'],
    summary: 'replicate an SQLite database continuously (a long-running job; one per database and repository)',
    notes:
      'Enqueues the replicator as job replicate.<repo>.<name> (--name, default the file\'s base name); enqueueing a running one again changes nothing and says so. ' +
      'A worker runs it until "replicate stop"; when the worker stops or dies, another takes it over from the last shipped position. ' +
      '--local runs it in this process (a sidecar) until SIGINT/SIGTERM, which ship what is committed first (exit 130). Restore to a point with a restore job with the replica field (docs/sqlite.md).',
  },
  { name: 'replicate ls', args: '', minArgs: 0, maxArgs: 0, flags: ['json', 'all'], summary: 'list replicators: database, host, generation, last shipped position, lag, state; those that ended (stopped, failed: <reason>) in the last day with when they ended, older ones counted under the table (--all lists them too)' },
  {
    name: 'replicate stop',
    args: '<name|sqlite:///abs/db|jobId>',
    minArgs: 1,
    maxArgs: 1,
    flags: ['repo', 'json'],
    summary: 'stop a replicator (it ships what is committed first); its replica stays',
  },
  {
    name: 'key ls',
    args: '',
    minArgs: 0,
    maxArgs: 0,
    flags: ['repo', 'json'],
    summary: "list an encrypted repository's key objects: id, kind (key, passphrase, kms), KMS key, created, label",
  },
  {
    name: 'key add',
    args: '',
    minArgs: 0,
    maxArgs: 0,
    flags: ['repo', 'key-source', 'key-label', 'json'],
    summary: "wrap the repository's keys under one more key-encryption key (--key-source); no data is rewritten",
    notes: 'Unlocks with the keys configured for the repository (SNAPWORKER_REPOSITORY_KEYS) first. Rotation: key add the new source, reconfigure the workers, key rm the old key.',
  },
  {
    name: 'key rm',
    args: '<key id>',
    minArgs: 1,
    maxArgs: 1,
    flags: ['repo', 'shred', 'json'],
    summary: 'delete a key object (as key ls names it)',
    notes:
      'The last key is kept unless --shred is given: without every key object (or every KMS key and secret they are wrapped under) no snapshot of the repository can be read again — the crypto-shredding procedure in docs/encryption.md.',
  },
  {
    name: 'key export-age',
    args: '',
    minArgs: 0,
    maxArgs: 0,
    flags: ['repo'],
    summary: "print the repository's age identity (AGE-SECRET-KEY-1…), so stock age reads its archives",
    notes: 'Prints a secret: whoever holds it reads every archive of the repository. age -d -i key.txt archive.tar.zst.age | zstd -d | tar -x',
  },
  { name: 'help', args: '[command]', minArgs: 0, maxArgs: 2, flags: [], summary: 'show help for a command' },
];

/** The kind flags `command` takes (none for most commands). */
export function kindFlagsOf(command: CommandSpec): readonly KindFlag[] {
  return command.kindFlags ? kindFlags(command.kindFlags) : [];
}

/** Every flag `command` takes, by name as typed: its own, then its kinds'. */
export function flagSpecsOf(command: CommandSpec): Map<string, FlagSpec> {
  return new Map<string, FlagSpec>([...command.flags.map((name) => [name, FLAGS[name]] as const), ...kindFlagsOf(command).map((flag) => [flag.name, flag.spec] as const)]);
}

/** Every flag of the command line, by name: for spotting a flag of another command. */
export const ALL_FLAG_SPECS = new Map<string, FlagSpec>([
  ...Object.entries(FLAGS),
  ...[...kindFlags('source'), ...kindFlags('target')].map((flag) => [flag.name, flag.spec] as const),
]);
/** Flags spelled like a kind's job field on purpose: restore's --include/--exclude select entries as the dir source's select files. */
const SPELLED_LIKE_KIND_FLAGS = new Set(['include', 'exclude']);
for (const flag of [...kindFlags('source'), ...kindFlags('target')]) {
  if (Object.hasOwn(FLAGS, flag.name) && !SPELLED_LIKE_KIND_FLAGS.has(flag.name)) throw new Error(`kinds: the ${flag.kinds.join(', ')} field ${flag.field} would be --${flag.name}, a flag snapworker has already`);
}

/** The spec of `name` (`restore`, `job status`), or undefined. */
export function findCommand(name: string): CommandSpec | undefined {
  return COMMANDS.find((command) => command.name === name);
}
