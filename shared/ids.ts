import { createHash, randomBytes } from 'node:crypto';

/**
 * Snapshot ids: `20261122T031500123Z-1a2b3c4d`. The UTC time first, so ids sort by time as
 * plain strings; only `[0-9A-Za-z-]`, so they are safe in file paths, S3 keys and NATS subjects.
 */
const SNAPSHOT_ID = /^\d{8}T\d{9}Z-[0-9a-f]{8}$/;

function timePart(at: Date): string {
  return at.toISOString().replace(/[-:.]/g, '');
}

/** A fresh id for a one-off run (no job to derive it from). */
export function newSnapshotId(at = new Date()): string {
  return `${timePart(at)}-${randomBytes(4).toString('hex')}`;
}

/**
 * The id of the snapshot a queued job produces. Derived from the job's enqueue time and
 * identity, so every attempt of the same job writes the same snapshot: a retry after a crash
 * overwrites its own partial archive instead of leaving an orphan beside a new one.
 */
export function snapshotIdForJob(enqueuedAtMs: number, jobIdentity: string): string {
  const hash = createHash('sha256').update(jobIdentity).digest('hex').slice(0, 8);
  return `${timePart(new Date(enqueuedAtMs))}-${hash}`;
}

export function isSnapshotId(value: string): boolean {
  return SNAPSHOT_ID.test(value);
}

/**
 * True for what may abbreviate a snapshot id: a prefix of a whole id (`20261122T03`), or 4 to 8
 * leading hex digits of its random part (`1a2b`, the short id `ls` shows, like restic's).
 */
export function isSnapshotIdPrefix(value: string): boolean {
  return /^[0-9a-f]{4,8}$/.test(value) || (value.length >= 4 && /^\d{1,8}(T\d{0,9}(Z(-[0-9a-f]{0,8})?)?)?$/.test(value));
}

/** The one wording for a snapshot reference that is neither an id nor a prefix of one. */
export function notAnIdMessage(ref: string): string {
  return `"${ref}" is not a snapshot id (expected like 20261122T031500123Z-1a2b3c4d, its hex part 1a2b3c4d, or a prefix of 4 or more characters of either)`;
}
