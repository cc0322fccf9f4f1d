import { z } from 'zod';
import { InvalidInputError } from '../../shared/errors.js';
import { isGenerationId } from '../../shared/kinds/sqlite/replication/replica-layout.js';
import type { CliOptions } from './flags.js';

/** The restore job's `replica` field (docs/sqlite.md, "Replication"). */
export interface ReplicaPointField {
  timestamp?: string;
  generation?: string;
  index?: number;
}

/** What `restore` restores: a snapshot, or with the point flags the continuous replica. */
export interface RestoreRequest {
  snapshot: string;
  targets: string[];
  /** Set when the command line asked for the replica (a point flag or `--replica JSON`). */
  replica?: ReplicaPointField;
}

const ISO_8601 = z.iso.datetime({ offset: true });
const MAX_WAL_INDEX = 0xffffffff;

/**
 * Reads `restore`'s arguments and Litestream's point flags: `--timestamp T` (ISO 8601 with a
 * zone), or `--generation G [--index N]`, or `--replica JSON` (the job field as is; `{}` is the
 * newest state). With any of them the snapshot argument may be left out (the first argument is
 * then a target URI) or be `latest`; without them `<snapshot> <target>...` as always.
 * The checks the restore job repeats on its fields (`replica`, `source`, `target`) are made here
 * first, so the command line's messages name the flags the user typed, not job fields.
 * @throws InvalidInputError with one line for contradictory or malformed flags: `--index`
 *   without `--generation`, `--timestamp` with `--generation`, `--replica` with a point flag, a
 *   timestamp that is not ISO 8601, a snapshot other than `latest`, no `--source`, a missing
 *   target or one that is not a single `sqlite://` URI.
 */
export function restoreRequest(args: readonly string[], options: Pick<CliOptions, 'timestamp' | 'generation' | 'index' | 'kindFields' | 'source'>): RestoreRequest {
  const replica = replicaPoint(options);
  if (replica === undefined) {
    if (args.length < 2) throw new InvalidInputError('restore: missing arguments: snapworker restore <snapshot> <target>... [flags]');
    return { snapshot: args[0]!, targets: args.slice(1) };
  }
  // Snapshot references never hold "://", target URIs always do.
  const [snapshot, targets] = args[0]?.includes('://') ? ['latest', [...args]] : [args[0] ?? 'latest', args.slice(1)];
  const given = pointFlagsGiven(options).join(' ');
  if (snapshot !== 'latest') {
    throw new InvalidInputError(`restore: ${given} restores from the replica named by --source; give no snapshot (or "latest"), not "${snapshot}"`);
  }
  if (targets.length === 0) throw new InvalidInputError(`restore: missing the target: snapworker restore sqlite:///abs/db --source NAME ${given}`);
  if (targets.length > 1 || !targets[0]!.startsWith('sqlite:')) {
    throw new InvalidInputError(`restore: ${given} restores one SQLite database: give one sqlite:///abs/db target, not ${targets.join(' ')}`);
  }
  if (!options.source) throw new InvalidInputError(`restore: ${given} needs --source NAME, the replica to restore from (as "replicate ls" shows it)`);
  return { snapshot, targets, replica };
}

/** The `replica` field the flags give, or undefined when none of them is given. */
function replicaPoint(options: Pick<CliOptions, 'timestamp' | 'generation' | 'index' | 'kindFields'>): ReplicaPointField | undefined {
  const { timestamp, generation, index } = options;
  const json = options.kindFields.replica as ReplicaPointField | undefined;
  if (json !== undefined && pointFlagsGiven(options).length > 1) {
    throw new InvalidInputError('restore: --replica JSON gives the whole point; drop it or --timestamp/--generation/--index');
  }
  if (json !== undefined) return json;
  if (timestamp === undefined && generation === undefined && index === undefined) return undefined;
  if (timestamp !== undefined && (generation !== undefined || index !== undefined)) {
    throw new InvalidInputError('restore: --timestamp and --generation/--index name the point two ways; give one of them');
  }
  if (index !== undefined && generation === undefined) throw new InvalidInputError('restore: --index needs --generation (an index counts WAL files within one generation)');
  if (timestamp !== undefined && !ISO_8601.safeParse(timestamp).success) {
    throw new InvalidInputError(`restore: --timestamp "${timestamp}" is not an ISO 8601 time with a zone (e.g. 2026-11-29T16:15:00Z or 2026-11-29T17:15:00+01:00)`);
  }
  if (generation !== undefined && !isGenerationId(generation)) {
    throw new InvalidInputError(`restore: --generation "${generation}" is not a generation id (like 20261129T161500123Z-1a2b3c4d; "ls --source NAME --generations" lists them)`);
  }
  if (index !== undefined && !(/^\d+$/.test(index) && Number(index) <= MAX_WAL_INDEX)) {
    throw new InvalidInputError(`restore: --index "${index}" is not a WAL index (a whole number from 0 to ${MAX_WAL_INDEX})`);
  }
  return {
    ...(timestamp !== undefined ? { timestamp } : {}),
    ...(generation !== undefined ? { generation } : {}),
    ...(index !== undefined ? { index: Number(index) } : {}),
  };
}

function pointFlagsGiven(options: Pick<CliOptions, 'timestamp' | 'generation' | 'index' | 'kindFields'>): string[] {
  return [
    ...(options.kindFields.replica !== undefined ? ['--replica'] : []),
    ...(options.timestamp !== undefined ? ['--timestamp'] : []),
    ...(options.generation !== undefined ? ['--generation'] : []),
    ...(options.index !== undefined ? ['--index'] : []),
  ];
}
