import { InvalidInputError } from '../errors.js';

/**
 * A span of calendar time such as `7d`, `1y2mo3d3h` or `90m`: restic's keep-within durations
 * (years, months, days, hours) plus weeks, minutes and seconds. `m` stays minutes, as in every other
 * duration snapworker accepts, so months are written `mo`. Units appear at most once, largest first.
 */
export interface CalendarDuration {
  years: number;
  months: number;
  /** Weeks are folded into days. */
  days: number;
  /** Hours, minutes and seconds, in seconds: exact time, unlike the calendar units above. */
  seconds: number;
}

/** The text form accepted by job data and the CLI, as a regular expression. */
export const CALENDAR_DURATION_PATTERN = /^(?=\d)(\d+y)?(\d+mo)?(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+s)?$/;

/**
 * Parses a calendar duration.
 * @throws InvalidInputError naming the text when it is not one.
 */
export function parseCalendarDuration(text: string): CalendarDuration {
  const match = CALENDAR_DURATION_PATTERN.exec(text);
  if (!match) throw new InvalidInputError(`"${text}" is not a duration like 7d, 12h, 4w, 6mo or 1y2mo3d`);
  const [years, months, weeks, days, hours, minutes, seconds] = match.slice(1).map((part) => (part ? parseInt(part, 10) : 0)) as number[];
  return {
    years: years!,
    months: months!,
    days: weeks! * 7 + days!,
    seconds: hours! * 3600 + minutes! * 60 + seconds!,
  };
}

/**
 * `time` minus `span`: years, months and days on the UTC calendar (a month back from 31 March is
 * 3 March, as Go's `AddDate` that restic uses normalises it), then the exact seconds.
 */
export function subtractCalendarDuration(time: Date, span: CalendarDuration): Date {
  const result = new Date(time.getTime());
  // setUTCFullYear, not Date.UTC: Date.UTC maps years 0-99 to 1900-1999.
  result.setUTCFullYear(time.getUTCFullYear() - span.years, time.getUTCMonth() - span.months, time.getUTCDate() - span.days);
  return new Date(result.getTime() - span.seconds * 1000);
}
