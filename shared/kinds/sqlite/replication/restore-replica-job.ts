import { stat } from 'node:fs/promises';
import { InvalidInputError } from '../../../errors.js';
import type { EndpointContext } from '../../source.js';
import type { ReplicaStorage } from '../../../catalog/replica-storage.js';
import { parseSqliteUris } from '../sqlite-uri.js';
import { ReplicaStore } from './replica-store.js';
import { restoreReplica, type ReplicaPoint } from './restore-replica.js';

/** A restore job's request for a replica (`replica` in the restore job data, docs/jobs.md). */
export interface ReplicaRestoreRequest {
  /** The repository's `replicaStorage()`. */
  storage: ReplicaStorage;
  /** The replica name (the job's `source`). */
  source: string | undefined;
  snapshot: string;
  target: string[];
  replica: { timestamp?: string; generation?: string; index?: number };
  replace: boolean;
  endpoints: EndpointContext;
  signal?: AbortSignal;
}

/**
 * Runs a restore job that names a replica: checks the request (one `sqlite://` target inside the
 * allowed paths, a `source`, `snapshot` "latest", `index` only with `generation`), then
 * `restoreReplica`. Resolves with the restore job's result.
 * @throws InvalidInputError naming the field for a request that cannot be run; what
 *   `restoreReplica` throws otherwise.
 */
export async function runReplicaRestore(request: ReplicaRestoreRequest) {
  if (!request.source) throw new InvalidInputError('restore: replica needs source (the replica name)');
  if (request.snapshot !== 'latest') throw new InvalidInputError('restore: with replica, snapshot must be "latest" (the point is given by replica.timestamp or replica.generation)');
  const uris = request.target.map((text) => {
    try {
      return new URL(text);
    } catch (cause) {
      throw new InvalidInputError(`restore: target "${text}" is not a URI`, { cause });
    }
  });
  if (uris.length !== 1 || uris[0]!.protocol !== 'sqlite:') throw new InvalidInputError('restore: with replica, target must be one sqlite:///path URI');
  const [endpoint] = parseSqliteUris(uris, request.endpoints, 'target');
  const point: ReplicaPoint = {
    ...(request.replica.timestamp ? { timestamp: new Date(request.replica.timestamp) } : {}),
    ...(request.replica.generation ? { generation: request.replica.generation } : {}),
    ...(request.replica.index !== undefined ? { index: request.replica.index } : {}),
  };
  const result = await restoreReplica(new ReplicaStore(request.storage, request.source), point, endpoint!.path, {
    replace: request.replace,
    ...(request.signal ? { signal: request.signal } : {}),
  });
  return {
    snapshotId: result.generation,
    target: endpoint!.uri,
    entries: 1,
    bytes: (await stat(endpoint!.path)).size,
    replica: { ...result, upTo: result.upTo.toISOString() },
  };
}
