import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { errorMessage, InvalidInputError } from '../shared/errors.js';

/** What `npm run bench` was asked to do. */
export interface BenchArgs {
  /** `--full`: Debian's linux-source-6.1 tree instead of the generated corpus. Default false. */
  full: boolean;
  /** `--rounds N`: rounds per comparison, medians reported. Default 3. */
  rounds: number;
  /** `--memory GIB`: also snapshot a generated source of this many GiB and report peak RSS. */
  memoryGiB?: number;
  /** `--no-write`: print only; without it the run rewrites its section of docs/benchmarks.md. */
  noWrite: boolean;
  /** `--skip-queue`: leave out the queue-overhead figures. */
  skipQueue: boolean;
  /** `--skip-scaling`: leave out the scaling figures. */
  skipScaling: boolean;
  /** `--catalog`: only the catalog bench (bench/catalog.ts): `latest` and `ls` over many records. */
  catalog: boolean;
  /** `--catalog-snapshots N`: records the catalog bench writes. Default 100,000. */
  catalogSnapshots: number;
  /**
   * `--fleet`: only the fleet figures (small-job throughput and exactly-once of 1, 2, 4 and 8
   * worker processes on a standalone Redis and a 3-master cluster, both started here). Default false.
   */
  fleet: boolean;
  /** `--encryption`: only encryption's overhead: snapshot and restore in both formats, plain beside encrypted (bench/encryption.ts). */
  encryption: boolean;
  /**
   * `--replication`: only the SQLite replication figures (bench/replication.ts): the writer's
   * throughput with and without a replicator, lag at 1,000 transactions/s, restore time; with
   * `--full` the restore is of 1 GiB with 10,000 segments instead of 64 MiB with 1,000. Default false.
   */
  replication: boolean;
  /** `--chunked`: only the chunked format against restic on linux-source-6.1 (bench/chunked.ts). Default false. */
  chunked: boolean;
  /** `--fleet-jobs N`: jobs in each measured fleet batch. Default 400. */
  fleetJobs: number;
  /** `--work DIR`: scratch directory (corpora, repositories, restores). Default `<tmp>/snapworker-bench`. */
  work: string;
}

const OPTIONS = {
  full: { type: 'boolean', default: false },
  rounds: { type: 'string', default: '3' },
  memory: { type: 'string' },
  'no-write': { type: 'boolean', default: false },
  'skip-queue': { type: 'boolean', default: false },
  'skip-scaling': { type: 'boolean', default: false },
  catalog: { type: 'boolean', default: false },
  'catalog-snapshots': { type: 'string', default: '100000' },
  fleet: { type: 'boolean', default: false },
  chunked: { type: 'boolean', default: false },
  'fleet-jobs': { type: 'string', default: '400' },
  encryption: { type: 'boolean', default: false },
  replication: { type: 'boolean', default: false },
  work: { type: 'string' },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

/** Every flag `npm run bench` takes, as the help text lists them. */
export const BENCH_FLAGS = Object.keys(OPTIONS).map((name) => `--${name}`);

export const BENCH_HELP = `usage: npm run bench [-- FLAGS]

Measures snapshot and restore against the peers (tar | zstd, zstd | tar) in the same run,
alternating, and prints medians and ratios. Unless --no-write is given, it then REWRITES its
section of docs/benchmarks.md (the default corpus; with --full the full one; with --fleet the
worker fleet's).

  --full            corpus: Debian's linux-source-6.1 tree (1.3 GB, 78k files; needs the
                    linux-source-6.1 package) instead of the generated one (~300 MB mixed)
  --rounds N        rounds per comparison, medians reported (default 3)
  --memory GIB      also snapshot a generated source of GIB GiB and report peak RSS
  --no-write        print the table only; leave docs/benchmarks.md alone
  --skip-queue      leave out the queue-overhead figures (needs Redis otherwise)
  --skip-scaling    leave out the scaling figures (3 generated sizes)
  --catalog         instead of all the above: the catalog bench (latest and ls over
                    100,000 snapshot records, filesystem and s3rver); its own section
  --catalog-snapshots N  records the catalog bench writes (default 100000)
  --fleet           instead of the above: small-job throughput and exactly-once of 1, 2, 4
                    and 8 worker processes on a standalone Redis and a 3-master Redis Cluster
                    (both started on free ports; needs redis-server and redis-cli), --rounds
                    rounds; rewrites the fleet section of docs/benchmarks.md
  --chunked         instead of the above: the chunked format against restic on linux-source-6.1
                    (first, unchanged second, and 1%-changed third snapshot; time, CPU seconds,
                    stored bytes); its own section
  --fleet-jobs N    jobs in each measured fleet batch (default 400)
  --encryption      instead of the above: snapshot and restore of a generated corpus (180 MiB;
                    --full: linux-source) in both formats (archive, chunked), each into a fresh
                    plain and a fresh encrypted repository, alternating, wall and CPU-seconds
                    medians; rewrites the encryption section of docs/benchmarks.md
  --replication     instead of the above: SQLite replication (a writer's throughput with and
                    without a replicator, lag at 1,000 transactions/s, restore of a 64 MiB
                    database with 1,000 segments; with --full 1 GiB with 10,000 segments,
                    about 5 minutes); its own section
  --work DIR        scratch directory for corpora, repositories and restores
                    (default ${path.join(os.tmpdir(), 'snapworker-bench')})
  -h, --help        this text
`;

/**
 * Parses the bench's command line.
 * @returns the arguments, or `'help'` when help was asked for.
 * @throws InvalidInputError with one line naming the bad flag or value (unknown flags, positional
 *   arguments, a non-numeric --rounds or --memory).
 */
export function parseBenchArgs(argv: string[]): BenchArgs | 'help' {
  let values: ReturnType<typeof parseArgs<{ options: typeof OPTIONS }>>['values'];
  try {
    ({ values } = parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: false }));
  } catch (error) {
    // Node's text goes on over several lines with advice about '--' that does not fit a run
    // through npm; its first sentence names the flag and the problem.
    const firstSentence = errorMessage(error).split('\n')[0]!.split('. ')[0]!.replace(/\.$/, '');
    throw new InvalidInputError(`bench: ${firstSentence}`, { cause: error });
  }
  if (values.help) return 'help';
  const rounds = Number(values.rounds);
  if (!Number.isInteger(rounds) || rounds < 1) throw new InvalidInputError(`bench: --rounds ${values.rounds}: must be a whole number of at least 1`);
  const fleetJobs = Number(values['fleet-jobs']);
  if (!Number.isInteger(fleetJobs) || fleetJobs < 1) throw new InvalidInputError(`bench: --fleet-jobs ${values['fleet-jobs']}: must be a whole number of at least 1`);
  if (values.replication) {
    // The replication figures run alone; --full is theirs (the 1 GiB restore).
    const other = (['memory', 'skip-queue', 'skip-scaling', 'fleet', 'catalog'] as const).find((flag) => values[flag] !== undefined && values[flag] !== false);
    if (other) throw new InvalidInputError(`bench: --${other} does not apply with --replication (the replication figures run alone)`);
  }
  if (values.fleet) {
    // The fleet figures run alone: the corpus flags would be silently ignored.
    const corpusFlag = (['full', 'memory', 'skip-queue', 'skip-scaling'] as const).find((flag) => values[flag] !== undefined && values[flag] !== false);
    if (corpusFlag) throw new InvalidInputError(`bench: --${corpusFlag} does not apply with --fleet (the fleet figures run alone)`);
  } else if (values['fleet-jobs'] !== OPTIONS['fleet-jobs'].default) {
    throw new InvalidInputError('bench: --fleet-jobs applies only with --fleet');
  }
  if (values.encryption) {
    const other = (['memory', 'skip-queue', 'skip-scaling', 'fleet', 'catalog'] as const).find((flag) => values[flag] !== undefined && values[flag] !== false);
    if (other) throw new InvalidInputError(`bench: --${other} does not apply with --encryption (the encryption figures run alone)`);
  }
  const memoryGiB = values.memory === undefined ? undefined : Number(values.memory);
  if (memoryGiB !== undefined && !(memoryGiB > 0)) throw new InvalidInputError(`bench: --memory ${values.memory}: must be a number of GiB above 0`);
  const catalogSnapshots = Number(values['catalog-snapshots']);
  if (!Number.isInteger(catalogSnapshots) || catalogSnapshots < 100) {
    throw new InvalidInputError(`bench: --catalog-snapshots ${values['catalog-snapshots']}: must be a whole number of at least 100`);
  }
  return {
    full: values.full,
    rounds,
    memoryGiB,
    noWrite: values['no-write'],
    skipQueue: values['skip-queue'],
    skipScaling: values['skip-scaling'],
    catalog: values.catalog,
    catalogSnapshots,
    fleet: values.fleet,
    chunked: values.chunked,
    fleetJobs,
    encryption: values.encryption,
    replication: values.replication,
    work: path.resolve(values.work ?? path.join(os.tmpdir(), 'snapworker-bench')),
  };
}

/** `parseBenchArgs` for a process: prints help and exits 0, or prints the one-line problem and exits 2. */
export function benchArgsOrExit(argv: string[]): BenchArgs {
  try {
    const parsed = parseBenchArgs(argv);
    if (parsed !== 'help') return parsed;
    process.stdout.write(BENCH_HELP);
    process.exit(0);
  } catch (error) {
    process.stderr.write(`${errorMessage(error)} (see npm run bench -- --help)\n`);
    process.exit(2);
  }
}
