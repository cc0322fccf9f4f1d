import { calendarBucket, checkTimeZone, type CalendarUnit } from './calendar-buckets.js';
import { parseCalendarDuration, subtractCalendarDuration } from './calendar-duration.js';
import {
  CALENDAR_COUNT_FIELDS,
  CALENDAR_WITHIN_FIELDS,
  isEmptyPolicy,
  parseLabelSelector,
  type KeepCount,
  type RetentionPolicy,
} from './retention-policy.js';

/** What retention needs to know of a snapshot. */
export interface RetentionCandidate {
  id: string;
  time: Date;
  labels: Record<string, string>;
}

/** The verdict on one snapshot, with restic's reasons ("last snapshot", "daily snapshot", …). */
export interface RetentionDecision<T extends RetentionCandidate = RetentionCandidate> {
  snapshot: T;
  keep: boolean;
  /** Why it is kept; empty when it is removed. */
  reasons: string[];
}

interface CountRule {
  reason: string;
  bucket: (time: Date, index: number) => number;
  /** Snapshots still to keep; -1 is unlimited. */
  left: number;
  last: number | undefined;
}

interface WithinRule {
  reason: string;
  bucket: (time: Date) => number;
  cutoff: Date;
  last: number | undefined;
}

/**
 * Applies `policy` to one group of snapshots, as restic's `ApplyPolicy` does
 * (internal/data/snapshot_policy.go): newest first, each count rule keeps the newest snapshot of
 * each new bucket until its count is used up, and also the oldest snapshot when counts are left
 * over ("oldest daily snapshot"), so that a short history is kept whole. Within rules count from
 * the newest snapshot that is not in the future (`now`); snapshots in the future are never
 * removed by them. An empty policy keeps everything.
 *
 * @returns one decision per snapshot, newest first (ties keep their input order).
 * @throws InvalidInputError for an unknown time zone, a bad duration or label selector.
 */
export function applyRetentionPolicy<T extends RetentionCandidate>(snapshots: readonly T[], policy: RetentionPolicy, now: Date = new Date()): RetentionDecision<T>[] {
  const timeZone = checkTimeZone(policy.timeZone ?? 'UTC');
  const list = snapshots
    .map((snapshot, index) => ({ snapshot, index }))
    .sort((a, b) => b.snapshot.time.getTime() - a.snapshot.time.getTime() || a.index - b.index)
    .map(({ snapshot }) => snapshot);
  if (isEmptyPolicy(policy)) return list.map((snapshot) => ({ snapshot, keep: true, reasons: ['no keep rule'] }));

  const latest = newestNotAfter(list, now);
  const cutoff = (text: string) => subtractCalendarDuration(latest, parseCalendarDuration(text));
  const inZone = (unit: CalendarUnit) => (time: Date) => calendarBucket(time, unit, timeZone);
  const counts: CountRule[] = [
    countRule(policy.keepLast, 'last snapshot', (_time, index) => index),
    ...CALENDAR_COUNT_FIELDS.map(([unit, field]) => countRule(policy[field], `${unit} snapshot`, inZone(unit))),
  ].filter((rule): rule is CountRule => rule !== undefined);
  const withins: WithinRule[] = CALENDAR_WITHIN_FIELDS.flatMap(([unit, field]) => {
    const text = policy[field];
    return text ? [{ reason: `${unit} within ${text}`, bucket: inZone(unit), cutoff: cutoff(text), last: undefined }] : [];
  });
  const tagSets = (policy.keepTag ?? []).map((text) => ({ text, labels: parseLabelSelector(text) }));
  const withinCutoff = policy.keepWithin ? cutoff(policy.keepWithin) : undefined;

  return list.map((snapshot, index) => {
    const reasons: string[] = [];
    const oldest = index === list.length - 1;
    for (const { text, labels } of tagSets) {
      if (Object.entries(labels).every(([k, v]) => snapshot.labels[k] === v)) reasons.push(`has labels ${text}`);
    }
    if (withinCutoff && snapshot.time > withinCutoff) reasons.push(`within ${policy.keepWithin}`);
    for (const rule of counts) {
      if (rule.left === 0) continue;
      const bucket = rule.bucket(snapshot.time, index);
      if (bucket !== rule.last || oldest) {
        reasons.push(bucket === rule.last ? `oldest ${rule.reason}` : rule.reason);
        rule.last = bucket;
        if (rule.left > 0) rule.left--;
      }
    }
    for (const rule of withins) {
      if (!(snapshot.time > rule.cutoff)) continue;
      const bucket = rule.bucket(snapshot.time);
      if (bucket !== rule.last || oldest) {
        reasons.push(bucket === rule.last ? `oldest ${rule.reason}` : rule.reason);
        rule.last = bucket;
      }
    }
    return { snapshot, keep: reasons.length > 0, reasons };
  });
}

function countRule(count: KeepCount | undefined, reason: string, bucket: CountRule['bucket']): CountRule | undefined {
  if (count === undefined || count === 0) return undefined;
  return { reason, bucket, left: count === 'unlimited' ? -1 : count, last: undefined };
}

/** restic's findLatestTimestamp: the newest snapshot time not after `now`, or the epoch. */
function newestNotAfter(list: readonly RetentionCandidate[], now: Date): Date {
  let latest = new Date(0);
  for (const { time } of list) if (time > latest && time < now) latest = time;
  return latest;
}
