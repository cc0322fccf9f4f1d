#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { loadConfig, type WorkerConfig } from '../shared/config.js';
import { errorMessage, InvalidInputError } from '../shared/errors.js';
import { createLogger } from '../shared/logging.js';
import { ANY_NATS_SERVER } from '../shared/nats/nats-servers.js';
import { redactUrl } from '../shared/redact-url.js';
import { runCatalogCommand } from './commands/catalog-commands.js';
import { runJobCommand } from './commands/job-commands.js';
import { CLI_OPTION_SPEC, parseGroupBy, parseLabels, parsePrunePolicy, type CliOptions } from './commands/options.js';
import { URI_REPOSITORY } from './repositories.js';
import { startWorker } from './run-worker.js';

const USAGE = `usage:
  snapworker worker                                   run a worker (config from env)
  snapworker snapshot <source>... [--repo R] [--label k=v]... [--name N] [--include G]... [--exclude G]...
                                  [--compression zstd|gzip|none] [--skip-unreadable] [--wait|--local] [--json]
  snapworker restore <snapshot> <target>... [--repo R] [--replace] [--wait|--local] [--json]
  snapworker verify <snapshot> [--repo R] [--wait|--local] [--json]
  snapworker prune <keep-daily=7,keep-weekly=4,...> [--group-by source,labels] [--tz ZONE] [--source S] [--label k=v]...
                   [--dry-run] [--wait|--local] [--json]
      rules: keep-{last,hourly,daily,weekly,monthly,yearly}=N|unlimited, keep-within[-{hourly,...,yearly}]=7d|1y2mo,
             keep-tag=k=v (restic's forget policy; calendar in --tz, default UTC)
  snapworker ls [--repo R] [--label k=v]... [--source NAME] [--json]
  snapworker show <snapshot> | rm <snapshot> | link <snapshot> [--expires 1h]
  snapworker watch [jobId] [--json]                   follow job events on NATS

  <snapshot> is an id, or "latest" with --source and/or --label.
  Sources and targets: dir:///abs/path, sqlite:///abs/path/db.sqlite (several allowed), nats://host:4222/STREAM
  Without --wait or --local a command enqueues the job and prints its id.
  Configuration comes from the environment: see the README.`;

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: CLI_OPTION_SPEC, allowPositionals: true, strict: true });
  const options = values as unknown as CliOptions;
  const [command, ...args] = positionals;
  if (options.help || !command) {
    process.stdout.write(USAGE + '\n');
    return command || options.help ? 0 : 2;
  }
  if (options.wait && options.local) throw new InvalidInputError('--wait and --local exclude each other');
  const inProcess = options.local || ['ls', 'show', 'rm', 'link'].includes(command);
  const { config, repo } = withRepoOption(loadCliConfig(inProcess), options.repo, inProcess);
  options.repo = repo;
  const logger = createLogger(command === 'worker' ? config.logLevel : process.env.LOG_LEVEL ?? 'warn');
  const labels = parseLabels(options.label);

  switch (command) {
    case 'worker':
      return runWorkerUntilSignalled(config, logger);
    case 'snapshot':
      return runJobCommand(
        'snapshot',
        {
          v: 1,
          source: args.length === 1 ? args[0]! : requireArgs(args, 1, 'snapshot <source>...'),
          repo: options.repo,
          name: options.name,
          labels,
          compression: options.compression as 'zstd' | 'gzip' | 'none' | undefined,
          include: options.include.length ? options.include : undefined,
          exclude: options.exclude.length ? options.exclude : undefined,
          noConsumers: options['no-consumers'] || undefined,
          checkMessages: options['check-messages'] || undefined,
          skipUnreadable: options['skip-unreadable'] || undefined,
        },
        options,
        config,
        logger,
      );
    case 'restore': {
      const [snapshot, ...targets] = requireArgs(args, 2, 'restore <snapshot> <target>...');
      return runJobCommand(
        'restore',
        { v: 1, snapshot: snapshot!, target: targets.length === 1 ? targets[0]! : targets, repo: options.repo, source: options.source, labels, replace: options.replace || undefined },
        options,
        config,
        logger,
      );
    }
    case 'verify': {
      const [snapshot] = requireArgs(args, 1, 'verify <snapshot>');
      return runJobCommand('verify', { v: 1, snapshot: snapshot!, repo: options.repo, source: options.source, labels }, options, config, logger);
    }
    case 'prune': {
      const [policy] = requireArgs(args, 1, 'prune <policy>');
      return runJobCommand(
        'prune',
        {
          v: 1,
          ...parsePrunePolicy(policy!),
          groupBy: parseGroupBy(options['group-by']),
          tz: options.tz,
          repo: options.repo,
          source: options.source,
          labels,
          dryRun: options['dry-run'] || undefined,
        },
        options,
        config,
        logger,
      );
    }
    case 'ls':
    case 'show':
    case 'rm':
    case 'link':
      return runCatalogCommand(command, args, options, config, logger);
    case 'watch': {
      const { runWatch } = await import('./commands/watch.js');
      if (!config.natsUrl) throw new InvalidInputError('watch: NATS_URL is not set');
      return runWatch({ natsUrl: config.natsUrl, jobId: args[0], json: options.json });
    }
    default:
      throw new InvalidInputError(`unknown command "${command}"\n${USAGE}`);
  }
}

/**
 * The worker's config from the environment. Commands that only touch files (`--local`, `ls`,
 * ...) run with the user's own permissions, so unless SNAPWORKER_ALLOWED_PATHS says otherwise
 * they may read and write anywhere the user can, and reach any NATS server; queued jobs stay
 * limited by the worker's config.
 */
function loadCliConfig(runsInProcess: boolean): WorkerConfig {
  const env = { ...process.env };
  if (runsInProcess && env.SNAPWORKER_ALLOWED_PATHS === undefined) env.SNAPWORKER_ALLOWED_PATHS = '/';
  if (runsInProcess && env.SNAPWORKER_NATS_ALLOWED_SERVERS === undefined) env.SNAPWORKER_NATS_ALLOWED_SERVERS = ANY_NATS_SERVER;
  return loadConfig(env);
}

/**
 * `--repo` is a configured repository name, or for in-process runs also a `file://` or `s3://`
 * URI, registered for this run only. Queued jobs can only name repositories the workers know.
 */
function withRepoOption(config: WorkerConfig, repo: string | undefined, inProcess: boolean): { config: WorkerConfig; repo: string | undefined } {
  if (repo === undefined || !/^[a-z0-9]+:\/\//.test(repo)) return { config, repo };
  if (!inProcess) {
    throw new InvalidInputError(`--repo ${redactUrl(repo)}: a URI works with --local and ls/show/rm/link; queued jobs name a repository configured on the workers`);
  }
  if (!/^(file|s3):\/\//.test(repo)) throw new InvalidInputError(`--repo ${redactUrl(repo)}: expected a file:// or s3:// URI`);
  return { config: { ...config, repositories: { ...config.repositories, [URI_REPOSITORY]: repo } }, repo: URI_REPOSITORY };
}

function requireArgs(args: string[], count: number, usage: string): string[] {
  if (args.length < count) throw new InvalidInputError(`missing arguments: snapworker ${usage}`);
  return args;
}

async function runWorkerUntilSignalled(config: WorkerConfig, logger: ReturnType<typeof createLogger>): Promise<number> {
  // A promise nobody observed is a bug to fix, not a reason to drop every job this worker runs:
  // log it loudly and keep serving (each job's own outcome is reported through its promise).
  process.on('unhandledRejection', (reason) => logger.error({ err: errorMessage(reason) }, 'unhandled promise rejection'));
  const worker = await startWorker(config, logger);
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      logger.info({ signal, graceSeconds: config.shutdownGraceSeconds }, 'shutting down');
      resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  await worker.stop();
  logger.info('worker stopped');
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`snapworker: ${errorMessage(err)}\n`);
    if (process.env.SNAPWORKER_DEBUG) console.error(err);
    process.exitCode = err instanceof InvalidInputError ? 2 : 1;
  },
);
