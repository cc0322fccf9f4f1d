import { parseCalendarDuration } from './calendar-duration.js';
import { InvalidInputError } from '../errors.js';
import { CALENDAR_UNITS, type CalendarUnit } from './calendar-buckets.js';

/** A count of snapshots to keep; `unlimited` keeps one in every bucket (restic's `-1`). */
export type KeepCount = number | 'unlimited';

/**
 * What to keep of one group of snapshots, with restic's rules and names (`restic forget`,
 * doc/060_forget.rst). A snapshot kept by any rule stays. Counts of 0 and absent fields are
 * rules not given; a policy without any rule keeps everything (restic refuses an empty policy;
 * we never let one mean "delete everything").
 */
export interface RetentionPolicy {
  /** Keep the newest N snapshots. */
  keepLast?: KeepCount;
  /** For the last N hours that have snapshots, keep the newest of each hour. */
  keepHourly?: KeepCount;
  /** For the last N days that have snapshots, keep the newest of each day. */
  keepDaily?: KeepCount;
  /** For the last N ISO weeks (Monday to Sunday) that have snapshots, keep the newest of each. */
  keepWeekly?: KeepCount;
  /** For the last N months that have snapshots, keep the newest of each. */
  keepMonthly?: KeepCount;
  /** For the last N years that have snapshots, keep the newest of each. */
  keepYearly?: KeepCount;
  /** Keep every snapshot within this calendar duration (`7d`, `1y2mo`) of the group's newest. */
  keepWithin?: string;
  /** Keep the newest snapshot of each hour within this duration of the group's newest. */
  keepWithinHourly?: string;
  keepWithinDaily?: string;
  keepWithinWeekly?: string;
  keepWithinMonthly?: string;
  keepWithinYearly?: string;
  /**
   * Keep snapshots carrying labels: each entry is `k=v` or `k=v,k2=v2` (all must match); a
   * snapshot matching any entry is kept (restic's `--keep-tag`).
   */
  keepTag?: string[];
  /** IANA zone the calendar buckets are read in. Default `UTC`. */
  timeZone?: string;
}

/** The calendar count rules, with their policy field. */
export const CALENDAR_COUNT_FIELDS: ReadonlyArray<readonly [CalendarUnit, 'keepHourly' | 'keepDaily' | 'keepWeekly' | 'keepMonthly' | 'keepYearly']> = [
  ['hourly', 'keepHourly'],
  ['daily', 'keepDaily'],
  ['weekly', 'keepWeekly'],
  ['monthly', 'keepMonthly'],
  ['yearly', 'keepYearly'],
];

/** The calendar within rules, with their policy field. */
export const CALENDAR_WITHIN_FIELDS = CALENDAR_UNITS.map(
  (unit) => [unit, `keepWithin${unit[0]!.toUpperCase()}${unit.slice(1)}` as `keepWithin${Capitalize<CalendarUnit>}`] as const,
);

/**
 * True when the policy has no rule at all, so that applying it keeps everything. A count of 0
 * and a zero duration (`keepWithin: "0d"`) are no rule, as in restic (`Duration.Zero()`): a
 * policy of only such rules never removes every snapshot.
 */
export function isEmptyPolicy(policy: RetentionPolicy): boolean {
  const counts = [policy.keepLast, ...CALENDAR_COUNT_FIELDS.map(([, field]) => policy[field])];
  const withins = [policy.keepWithin, ...CALENDAR_WITHIN_FIELDS.map(([, field]) => policy[field])];
  return counts.every((count) => count === undefined || count === 0) && withins.every((w) => w === undefined || isZeroDuration(w)) && !policy.keepTag?.length;
}

function isZeroDuration(text: string): boolean {
  const span = parseCalendarDuration(text);
  return span.years === 0 && span.months === 0 && span.days === 0 && span.seconds === 0;
}

/**
 * One `keepTag` entry as a label set.
 * @throws InvalidInputError when an element is not `k=v`.
 */
export function parseLabelSelector(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const pair of text.split(',')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new InvalidInputError(`keep-tag "${text}": "${pair}" is not a label k=v`);
    labels[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return labels;
}

/** The policy in words, like restic's "Applying Policy: keep 7 daily, 4 weekly snapshots". */
export function describePolicy(policy: RetentionPolicy): string {
  if (isEmptyPolicy(policy)) return 'no keep rule: keep everything';
  const counts: string[] = [];
  const add = (count: KeepCount | undefined, what: string) => {
    if (count === 'unlimited') counts.push(`all ${what}`);
    else if (count) counts.push(`${count} ${what}`);
  };
  add(policy.keepLast, 'latest');
  for (const [unit, field] of CALENDAR_COUNT_FIELDS) add(policy[field], unit);
  const parts: string[] = counts.length ? [`${counts.join(', ')} snapshots`] : [];
  for (const [unit, field] of CALENDAR_WITHIN_FIELDS) if (policy[field]) parts.push(`${unit} snapshots within ${policy[field]}`);
  if (policy.keepTag?.length) parts.push(`all snapshots with labels ${policy.keepTag.join(' or ')}`);
  if (policy.keepWithin) parts.push(`all snapshots within ${policy.keepWithin} of the newest`);
  return `keep ${parts.join(', ')}${policy.timeZone && policy.timeZone !== 'UTC' ? ` (calendar in ${policy.timeZone})` : ''}`;
}
