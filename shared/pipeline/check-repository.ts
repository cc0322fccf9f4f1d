import type { CheckJobResult, CheckProblemResult } from '../../jobs/results.js';
import type { Repository } from '../catalog/repository.js';
import type { SnapshotRecord } from '../catalog/snapshot-record.js';
import { IntegrityError, NotFoundError, withSubject } from '../errors.js';
import { allFormats, formatOf } from '../formats/registry.js';
import type { SnapshotFormat } from '../formats/snapshot-format.js';
import type { ProgressSink } from '../progress.js';
import { describeDataSubset, selectSubset, type DataSubset } from './data-subset.js';
import { verifySnapshot } from './restore-snapshot.js';

/** At most this many problems are named in a result; all are counted. */
export const NAMED_PROBLEMS = 100;

export interface CheckRepositoryRequest {
  repository: Repository;
  signal: AbortSignal;
  progress: ProgressSink;
  /** Snapshots to read whole and verify; none when absent (structure only, as restic's check). */
  subset?: DataSubset;
  /** Seal keys by key id: sealed snapshots read are checked with their key. */
  sealKeys?: Record<string, Buffer>;
  /** Told about each problem as it is found (for a log, or stderr). */
  onProblem?: (problem: CheckProblem) => void;
}

/**
 * One thing wrong with the repository (the job contract's type: results are published as they
 * are). `message` is the whole line and names its subject once (`snapshot X: …`, `chunked: …`);
 * `snapshot`/`format` repeat it for machines, and printers print `message` as is.
 */
export type CheckProblem = CheckProblemResult;

/** A check job's result but the repository's name. */
export type CheckRepositoryResult = Omit<CheckJobResult, 'repository'>;

/**
 * Checks a whole repository (restic's `check`):
 *
 * 1. structure: every snapshot record parses and names a format this version knows, and every
 *    object it needs (`requiredKeys`) exists, the archive with the size the record gives; then
 *    each format with a structural check of its own (shared objects) runs it;
 * 2. data, when `subset` is given: the selected snapshots among those structurally sound are read
 *    whole through their format and verified (every sum, the seal, the record's digest), as
 *    `verify` does.
 *
 * What is found is reported, not thrown: the result lists the problems (`ok` false). Memory holds
 * the snapshot ids, and records only of formats with a structural check of their own.
 * @throws for failures to check (storage unreachable, abort): the check did not finish.
 */
export async function checkRepository(request: CheckRepositoryRequest): Promise<CheckRepositoryResult> {
  const { repository, signal, progress } = request;
  const result: CheckRepositoryResult = { ok: true, snapshots: 0, incomplete: 0, read: [], readBytes: 0, problemCount: 0, problems: [] };
  const report = (problem: CheckProblem) => {
    result.ok = false;
    result.problemCount++;
    if (result.problems.length < NAMED_PROBLEMS) result.problems.push(problem);
    request.onProblem?.(problem);
  };

  progress.setPhase('verifying');
  const { complete, incomplete } = await repository.scan({ signal });
  result.snapshots = complete.length;
  result.incomplete = incomplete.length;
  const sound: string[] = [];
  const storedBytes = new Map<string, number>();
  const recordsByFormat = new Map<SnapshotFormat, SnapshotRecord[]>(allFormats().filter((f) => f.check).map((f) => [f, []]));
  for (const id of complete) {
    const record = await checkStructure(repository, id, signal, (message) => report({ snapshot: id, message: withSubject(`snapshot ${id}`, message) }));
    progress.addEntries(1);
    if (!record) continue;
    sound.push(id);
    storedBytes.set(id, record.stats.storedBytes);
    recordsByFormat.get(formatOf(record))?.push(record);
  }
  for (const [format, records] of recordsByFormat) {
    for (const message of await format.check!(repository, { records, signal, progress })) report({ format: format.name, message: withSubject(format.name, message) });
  }

  if (request.subset) {
    result.readDataSubset = describeDataSubset(request.subset);
    const chosen = selectSubset(sound, request.subset);
    progress.setTotal(chosen.reduce((sum, id) => sum + storedBytes.get(id)!, 0));
    for (const id of chosen) {
      result.read.push(id);
      result.readBytes += storedBytes.get(id)!;
      await readWhole(request, id, (message) => report({ snapshot: id, message: withSubject(`snapshot ${id}`, message) }));
    }
  }
  return result;
}

/** The record when the snapshot is structurally sound; otherwise each problem reported and undefined. */
async function checkStructure(repository: Repository, id: string, signal: AbortSignal, problem: (message: string) => void): Promise<SnapshotRecord | undefined> {
  let record: SnapshotRecord;
  let format: SnapshotFormat;
  try {
    record = await repository.getRecord(id, { signal });
    format = formatOf(record);
  } catch (err) {
    if (err instanceof NotFoundError) return undefined; // removed while checking
    if (err instanceof IntegrityError) {
      problem(err.message);
      return undefined;
    }
    throw err;
  }
  let sound = true;
  for (const key of format.requiredKeys(record)) {
    try {
      const info = await repository.head(key, { signal });
      if (key === record.archive?.key && info.size !== record.archive.size) {
        problem(`${key} is ${info.size} bytes; its record says ${record.archive.size}`);
        sound = false;
      }
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
      problem(`${key} is missing`);
      sound = false;
    }
  }
  return sound ? record : undefined;
}

/** Reads one snapshot whole; an integrity failure (or an object gone) is a problem, anything else fails the check. */
async function readWhole(request: CheckRepositoryRequest, id: string, problem: (message: string) => void): Promise<void> {
  const { repository, signal, progress } = request;
  try {
    const record = await repository.getRecord(id, { signal });
    await verifySnapshot({ repository, record, signal, progress, sealKeys: request.sealKeys });
  } catch (err) {
    if (err instanceof IntegrityError || err instanceof NotFoundError) problem(err.message);
    else throw err;
  }
}
