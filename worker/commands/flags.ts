/** One command-line flag: how it parses and how `--help` describes it. */
export interface FlagSpec {
  type: 'string' | 'boolean';
  /** May be given several times; the values are collected in order. */
  multiple?: boolean;
  /** Placeholder for the value in help (`--repo R`). */
  value?: string;
  short?: string;
  description: string;
}

/**
 * Every flag of the command line but those of the kinds' job fields (`kind-flags.ts`, derived from
 * the kind registrations). Each command accepts the subset its spec lists (`commands.ts`); any
 * other flag is refused, so a flag never silently does nothing.
 */
export const FLAGS = {
  repo: { type: 'string', value: 'R', description: 'repository: a configured name, or for in-process commands a file:// or s3:// URI' },
  label: { type: 'string', multiple: true, value: 'k=v', description: 'a label (repeatable); as a filter, every one given must match' },
  name: { type: 'string', value: 'N', description: 'lineage name of the snapshot (default: derived from the source)' },
  source: { type: 'string', value: 'NAME', description: 'only snapshots of this lineage (with "latest": the lineage to take it from)' },
  compression: { type: 'string', value: 'zstd|gzip|none', description: 'archive compression (default zstd)' },
  parent: { type: 'string', value: 'ID', description: 'snapshot, chunked repositories: reuse unchanged files from this snapshot (default: the lineage\'s latest)' },
  force: { type: 'boolean', description: 'snapshot, chunked repositories: read every file, reuse nothing from a parent' },
  format: { type: 'string', value: 'archive|chunked', description: 'init: the snapshot format of the new repository (default archive)' },
  replace: { type: 'boolean', description: 'replace an existing target (without it an existing target is refused)' },
  include: { type: 'string', multiple: true, value: 'G', description: 'restore only paths matching this glob (picomatch, relative to the snapshot root; repeatable), with their parent directories' },
  exclude: { type: 'string', multiple: true, value: 'G', description: 'restore nothing matching this glob, nor anything under it (repeatable)' },
  long: { type: 'boolean', description: 'one line per entry with type and mode, size, modification time, and link target' },
  'dry-run': { type: 'boolean', description: 'report what would be removed, remove nothing' },
  tz: { type: 'string', value: 'ZONE', description: 'IANA time zone for cron and calendar retention, e.g. Europe/Prague (default UTC)' },
  'group-by': {
    type: 'string',
    value: 'KEYS',
    description: 'prune: apply the policy per source (default), labels, source,labels, or "" for all together; ls: one table per source, labels or label:KEY',
  },
  cron: { type: 'string', value: 'EXPR', description: 'cron pattern, e.g. "0 3 * * *" (in --tz)' },
  every: { type: 'string', value: 'D', description: 'fixed interval instead of --cron: 90s, 30m, 1h, 1d, 1w' },
  keep: { type: 'string', value: 'POLICY', description: 'retention after each run: keep-daily=7,keep-weekly=4,... (as prune)' },
  paused: { type: 'boolean', description: 'add the schedule paused' },
  all: { type: 'boolean', description: 'rm: every snapshot matching --source and --label (at least one of them required); replicate ls: also the replicators that ended more than a day ago' },
  expires: { type: 'string', value: 'D', description: 'link lifetime: 900 (seconds), 15m, 1h or 7d (default 1h)' },
  interval: { type: 'string', value: 'D', description: 'replicate: pause between syncs: 1s (default), 10s, 1m' },
  retention: { type: 'string', value: 'D', description: 'replicate: keep every point of this window restorable (72h, 7d), remove the rest (default: keep all)' },
  timestamp: { type: 'string', value: 'T', description: 'restore from the replica (--source) as of this ISO 8601 time: the transactions committed before it' },
  generation: { type: 'string', value: 'G', description: 'restore from the replica (--source) to the end of this generation ("ls --generations" lists them)' },
  index: { type: 'string', value: 'N', description: 'with --generation: to the end of this WAL index' },
  generations: { type: 'boolean', description: 'ls: the generations of the replica named by --source (continuous SQLite replication)' },
  to: { type: 'string', value: 'R', description: 'copy: the repository to copy to (a configured name; with --local also a file:// or s3:// URI)' },
  'read-data-subset': {
    type: 'string',
    value: 'n%|n/t',
    description: "check: also read and verify a share of the snapshots whole: 5% at random, or 1/10 (the first of 10 fixed groups), as restic's",
  },
  'job-id': { type: 'string', value: 'ID', description: 'your own job id: the same id is enqueued once (no ":")' },
  wait: { type: 'boolean', description: 'enqueue, then follow the job to its end with a progress bar' },
  local: { type: 'boolean', description: 'run the job in this process, without Redis or a worker' },
  json: { type: 'boolean', description: 'print the result as JSON on stdout' },
  encrypt: { type: 'boolean', description: 'init: create an encrypted repository (under --key-source, or the keys configured for it)' },
  'key-source': {
    type: 'string',
    multiple: true,
    value: 'SPEC',
    description: 'where a key-encryption key is, on this host: env:VAR, file:/abs/path or kms:KEY-ID (init: repeatable; key add: exactly one)',
  },
  'key-label': { type: 'string', value: 'TEXT', description: 'a note stored with the new key object, shown by key ls (e.g. who holds it)' },
  shred: { type: 'boolean', description: 'key rm: allow removing the last key, making every snapshot unreadable for good (crypto-shredding)' },
  help: { type: 'boolean', short: 'h', description: 'show this help' },
} as const satisfies Record<string, FlagSpec>;

export type FlagName = keyof typeof FLAGS;

/** Parsed flag values: strings, booleans, or string lists for repeatable flags. */
export interface CliOptions {
  repo?: string;
  label: string[];
  name?: string;
  source?: string;
  compression?: string;
  parent?: string;
  force: boolean;
  format?: string;
  replace: boolean;
  include: string[];
  exclude: string[];
  long: boolean;
  'dry-run': boolean;
  tz?: string;
  'group-by'?: string;
  cron?: string;
  every?: string;
  keep?: string;
  paused: boolean;
  all: boolean;
  expires?: string;
  interval?: string;
  retention?: string;
  timestamp?: string;
  generation?: string;
  index?: string;
  generations: boolean;
  to?: string;
  'read-data-subset'?: string;
  'job-id'?: string;
  wait: boolean;
  local: boolean;
  json: boolean;
  encrypt: boolean;
  'key-source': string[];
  'key-label'?: string;
  shred: boolean;
  help: boolean;
  /** The job fields the kind flags gave (`--no-consumers` → `noConsumers: true`); only those given. */
  kindFields: Record<string, unknown>;
}
