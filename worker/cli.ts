#!/usr/bin/env node
import { loadConfig, type WorkerConfig } from '../shared/config.js';
import { errorMessage, InvalidInputError } from '../shared/errors.js';
import { isSnapshotId, isSnapshotIdPrefix, notAnIdMessage } from '../shared/ids.js';
import { createLogger, type Logger } from '../shared/logging.js';
import { ANY_SERVER } from '../shared/kinds/server-policy.js';
import { serverSettings } from '../shared/kinds/registry.js';
import { redactUrl } from '../shared/redact-url.js';
import { TOOL } from '../shared/tool.js';
import { isRepositoryUri, REPOSITORY_URI_SCHEMES } from '../shared/storage/open-driver.js';
import { exitCodeForError } from './commands/exit-codes.js';
import type { CliOptions } from './commands/flags.js';
import { commandHelp, overviewHelp } from './commands/help.js';
import { parseGroupBy, parseLabels, parsePrunePolicy, snapshotJobData } from './commands/options.js';
import { parseCommandLine } from './commands/parse-command-line.js';
import { restoreRequest } from './commands/replica-point.js';
import { parseDataSubset } from '../shared/pipeline/data-subset.js';

/** Commands that run in this process against the repository, never through the queue. */
const CATALOG_COMMANDS = ['init', 'ls', 'show', 'rm', 'link', 'catalog rebuild', 'files', 'dump', 'key ls', 'key add', 'key rm', 'key export-age'] as const;
type CatalogCommand = (typeof CATALOG_COMMANDS)[number];
/** Commands that only read snapshots, in this process (worker/commands/diff-find-commands.ts). */
const BROWSE_COMMANDS = ['diff', 'find'] as const;
type BrowseCommand = (typeof BROWSE_COMMANDS)[number];

async function main(argv: string[]): Promise<number> {
  const line = parseCommandLine(argv);
  if (line.kind === 'version') {
    process.stdout.write(`${TOOL.name} ${TOOL.version}\n`);
    return 0;
  }
  if (line.kind === 'help') {
    const text = line.command ? commandHelp(line.command) : overviewHelp();
    (line.usage ? process.stderr : process.stdout).write(text + '\n');
    return line.usage ? 2 : 0;
  }
  const { command, args, options } = line;
  const name = command.name;
  if (options.wait && options.local) throw new InvalidInputError(`${name}: --wait and --local exclude each other`);
  if (options.local && options['job-id'] !== undefined) throw new InvalidInputError(`${name}: --job-id names a queued job; it does not apply to --local`);
  const isCatalog = (CATALOG_COMMANDS as readonly string[]).includes(name);
  const isBrowse = (BROWSE_COMMANDS as readonly string[]).includes(name);
  const inProcess = options.local || isCatalog || isBrowse || name === 'export';
  const withRepo = withRepoOption(loadCliConfig(inProcess), options.repo, inProcess);
  options.repo = withRepo.repo;
  const config = withCopyTarget(withRepo.config, options, inProcess);
  const logger = createLogger(name === 'worker' ? config.logLevel : process.env.LOG_LEVEL ?? 'warn');

  // Each command's module is loaded only when it runs: a command line that lists a folder need
  // not load the queue, the NATS client or every kind (startup time is most of a short command).
  if (name === 'worker') return (await import('./worker-process.js')).runWorkerProcess(config, logger);
  if (name === 'export') return (await import('./commands/export-command.js')).runExportCommand(args[0]!, options, config, logger);
  if (name === 'files' || name === 'dump') return runFilesOrDump(name, args, options, config, logger);
  if (name.startsWith('key ')) return (await import('./commands/key-commands.js')).runKeyCommand(name, args, options, config, logger);
  if (isCatalog) return (await import('./commands/catalog-commands.js')).runCatalogCommand(name as Exclude<CatalogCommand, 'files' | 'dump' | `key ${string}`>, args, options, config, logger);
  if (isBrowse) return (await import('./commands/diff-find-commands.js')).runBrowseCommand(name as BrowseCommand, args, options, config, logger);
  if (name === 'job status') return (await import('./commands/job-control.js')).runJobStatus(args[0]!, options, config);
  if (name === 'job cancel') return (await import('./commands/job-control.js')).runJobCancel(args[0]!, options, config);
  if (name.startsWith('schedule ')) return (await import('./commands/schedule-commands.js')).runScheduleCommand(name, args, options, config);
  if (name === 'replicate') return (await import('./commands/replicate-commands.js')).runReplicateCommand(args[0]!, options, config, logger);
  if (name === 'replicate ls') return (await import('./commands/replicate-commands.js')).runReplicateList(options, config);
  if (name === 'replicate stop') return (await import('./commands/replicate-commands.js')).runReplicateStop(args[0]!, options, config);
  if (name === 'watch') {
    const { runWatchCommand } = await import('./commands/watch-command.js');
    return runWatchCommand(args[0], options, config);
  }
  return runQueuedCommand(name, args, options, config, logger);
}

/** snapshot, restore, verify, prune: a job, enqueued, followed or run here. */
async function runQueuedCommand(name: string, args: string[], options: CliOptions, config: WorkerConfig, logger: Logger): Promise<number> {
  const { runJobCommand } = await import('./commands/job-commands.js');
  const labels = parseLabels(options.label);
  const pick = { repo: options.repo, source: options.source, labels };
  switch (name) {
    case 'snapshot':
      return runJobCommand(
        'snapshot',
        snapshotJobData(args, options),
        options,
        config,
        logger,
      );
    case 'restore': {
      const { snapshot: given, targets, replica } = restoreRequest(args, options);
      const { snapshot, subPath } = splitSubPath(given);
      const selection = { ...(options.include.length ? { include: options.include } : {}), ...(options.exclude.length ? { exclude: options.exclude } : {}), ...(subPath ? { subPath } : {}) };
      if (replica && Object.keys(selection).length > 0) throw new InvalidInputError('restore: --include, --exclude and a sub-path select entries of a snapshot, not of a replica point');
      return expandSnapshotRef(snapshot, options, config, logger).then((ref) =>
        runJobCommand(
          'restore',
          { v: 1, snapshot: ref, target: targets.length === 1 ? targets[0]! : targets, ...pick, replace: options.replace || undefined, ...selection, ...options.kindFields, ...(replica ? { replica } : {}) },
          options,
          config,
          logger,
        ),
      );
    }
    case 'verify':
      return expandSnapshotRef(args[0]!, options, config, logger).then((ref) => runJobCommand('verify', { v: 1, snapshot: ref, ...pick }, options, config, logger));
    case 'copy':
      if (options.to === undefined) throw new InvalidInputError('copy: --to R is required: the repository to copy to');
      return Promise.all(args.map((ref) => expandSnapshotRef(ref, options, config, logger))).then((snapshots) =>
        runJobCommand('copy', { v: 1, snapshots, ...pick, to: options.to! }, options, config, logger),
      );
    case 'check':
      return runJobCommand('check', { v: 1, repo: options.repo, readDataSubset: checkedSubset(options['read-data-subset']) }, options, config, logger);
    default:
      return runJobCommand(
        'prune',
        { v: 1, ...parsePrunePolicy(args[0]!), groupBy: parseGroupBy(options['group-by']), tz: options.tz, ...pick, dryRun: options['dry-run'] || undefined },
        options,
        config,
        logger,
      );
  }
}

/** `ID:/sub/path` → the snapshot and the sub-path (restic's form); a plain reference has none. */
function splitSubPath(ref: string): { snapshot: string; subPath?: string } {
  const colon = ref.indexOf(':');
  if (colon === -1) return { snapshot: ref };
  const subPath = ref.slice(colon + 1);
  if (!subPath.startsWith('/')) throw new InvalidInputError(`restore: "${ref}": after the colon comes an absolute path within the snapshot (ID:/sub/dir)`);
  return { snapshot: ref.slice(0, colon), ...(subPath === '/' ? {} : { subPath }) };
}

/** `files` and `dump`: read the repository directly, write to stdout. */
async function runFilesOrDump(name: 'files' | 'dump', args: string[], options: CliOptions, config: WorkerConfig, logger: Logger): Promise<number> {
  const { JobRuntime } = await import('./job-runner.js');
  const { runFilesCommand, runDumpCommand } = await import('./commands/files-commands.js');
  const runtime = new JobRuntime(config, logger);
  try {
    const repository = await runtime.existingRepository(options.repo);
    const run = name === 'files' ? runFilesCommand : runDumpCommand;
    return await run(repository, args, options, process.stdout, new AbortController().signal);
  } finally {
    await runtime.close();
  }
}

/**
 * Job data takes full ids or `latest`; a short id typed on the command line is expanded here,
 * against the repository as this process's configuration reaches it.
 */
async function expandSnapshotRef(ref: string, options: CliOptions, config: WorkerConfig, logger: Logger): Promise<string> {
  if (ref === 'latest' || isSnapshotId(ref)) return ref;
  if (!isSnapshotIdPrefix(ref)) throw new InvalidInputError(notAnIdMessage(ref));
  const { JobRuntime } = await import('./job-runner.js');
  const runtime = new JobRuntime(config, logger);
  try {
    return await (await runtime.existingRepository(options.repo)).expandPrefix(ref);
  } finally {
    await runtime.close();
  }
}

/**
 * The worker's config from the environment. Commands that only touch files (`--local`, `ls`,
 * ...) run with the user's own permissions, so unless SNAPWORKER_ALLOWED_PATHS says otherwise
 * they may read and write anywhere the user can, and reach any NATS or PostgreSQL server; queued jobs stay
 * limited by the worker's config.
 */
function loadCliConfig(runsInProcess: boolean): WorkerConfig {
  const env = { ...process.env };
  if (runsInProcess && env.SNAPWORKER_ALLOWED_PATHS === undefined) env.SNAPWORKER_ALLOWED_PATHS = '/';
  for (const { variable } of serverSettings()) if (runsInProcess && env[variable] === undefined) env[variable] = ANY_SERVER;
  return loadConfig(env);
}

/**
 * `--repo` is a configured repository name, or for in-process runs also a `file://` or `s3://`
 * URI, registered for this run only under its URI without credentials (so messages name it).
 * Queued jobs can only name repositories the workers know.
 */
function withRepoOption(config: WorkerConfig, repo: string | undefined, inProcess: boolean): { config: WorkerConfig; repo: string | undefined } {
  if (repo === undefined || !/^[a-z0-9]+:\/\//.test(repo)) return { config, repo };
  const shown = redactUrl(repo);
  if (!inProcess) {
    throw new InvalidInputError(`--repo ${shown}: a URI works with --local and init/ls/show/rm/link; queued jobs name a repository configured on the workers`);
  }
  if (!isRepositoryUri(repo)) throw new InvalidInputError(`--repo ${shown}: expected a ${REPOSITORY_URI_SCHEMES} URI`);
  // The default repository for this run, so job data (which names repositories by config name
  // only) needs no name for it.
  // A configured repository at the same URI lends it its key sources (worker config, as ever).
  const named = Object.entries(config.repositories).find(([, uri]) => uri === repo)?.[0];
  const keys = named !== undefined && Object.hasOwn(config.repositoryKeys, named) ? { [shown]: config.repositoryKeys[named]! } : {};
  return {
    config: { ...config, repositories: { ...config.repositories, [shown]: repo }, repositoryKeys: { ...config.repositoryKeys, ...keys }, defaultRepository: shown },
    repo: undefined,
  };
}

/** The name a `--to` URI is registered under for an in-process copy (job data names repositories, never URIs). */
const COPY_TARGET_NAME = 'copy-target';

/**
 * `copy --to`: a configured repository name, or with `--local` also a `file://` or `s3://` URI,
 * registered for this run as `copy-target`. Queued copies name repositories the workers know.
 */
function withCopyTarget(config: WorkerConfig, options: CliOptions, inProcess: boolean): WorkerConfig {
  const to = options.to;
  if (to === undefined || !/^[a-z0-9]+:\/\//.test(to)) return config;
  const shown = redactUrl(to);
  if (!inProcess) throw new InvalidInputError(`--to ${shown}: a URI works with --local; queued jobs name a repository configured on the workers`);
  if (!isRepositoryUri(to)) throw new InvalidInputError(`--to ${shown}: expected a ${REPOSITORY_URI_SCHEMES} URI`);
  options.to = COPY_TARGET_NAME;
  return { ...config, repositories: { ...config.repositories, [COPY_TARGET_NAME]: to } };
}

/** `--read-data-subset` checked here, so a bad value is refused before anything is enqueued. */
function checkedSubset(text: string | undefined): string | undefined {
  if (text !== undefined) parseDataSubset(text);
  return text;
}

/** Exits once stdout has taken everything: open handles (a Redis retrying) must not keep us. */
function exit(code: number): void {
  process.stdout.write('', () => process.exit(code));
}

main(process.argv.slice(2)).then(exit, (err: unknown) => {
  process.stderr.write(`snapworker: ${errorMessage(err)}\n`);
  if (process.env.SNAPWORKER_DEBUG) console.error(err);
  exit(exitCodeForError(err));
});
