import { InvalidInputError } from '../errors.js';

/** The calendar units retention counts in, smallest first. */
export type CalendarUnit = 'hourly' | 'daily' | 'weekly' | 'monthly' | 'yearly';

export const CALENDAR_UNITS: readonly CalendarUnit[] = ['hourly', 'daily', 'weekly', 'monthly', 'yearly'];

interface WallClock {
  year: number;
  month: number;
  day: number;
  hour: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

/**
 * Checks an IANA time zone name (`Europe/Prague`, `UTC`).
 * @throws InvalidInputError naming the zone when the runtime does not know it.
 */
export function checkTimeZone(timeZone: string): string {
  formatter(timeZone);
  return timeZone;
}

/**
 * The bucket `time` falls in for `unit`, read on the wall clock of `timeZone` (restic's ymdh, ymd,
 * ISO yw, ym and y): two snapshots share a bucket when they share the local hour, day, ISO week
 * (Monday to Sunday), month or year. Across a DST change the local clock decides, so the hour
 * 02:00-02:59 repeated when clocks go back is one hourly bucket, and a local day is 23 or 25
 * hours long.
 */
export function calendarBucket(time: Date, unit: CalendarUnit, timeZone: string): number {
  const { year, month, day, hour } = wallClock(time, timeZone);
  switch (unit) {
    case 'hourly':
      return ((year * 100 + month) * 100 + day) * 100 + hour;
    case 'daily':
      return (year * 100 + month) * 100 + day;
    case 'weekly': {
      const { isoYear, week } = isoWeek(year, month, day);
      return isoYear * 100 + week;
    }
    case 'monthly':
      return year * 100 + month;
    default:
      return year;
  }
}

function wallClock(time: Date, timeZone: string): WallClock {
  const fields: Record<string, number> = {};
  for (const part of formatter(timeZone).formatToParts(time)) {
    if (part.type !== 'literal') fields[part.type] = Number(part.value);
  }
  return { year: fields.year!, month: fields.month!, day: fields.day!, hour: fields.hour! };
}

function formatter(timeZone: string): Intl.DateTimeFormat {
  let cached = formatters.get(timeZone);
  if (!cached) {
    try {
      cached = new Intl.DateTimeFormat('en-US', {
        timeZone,
        hourCycle: 'h23',
        year: 'numeric',
        month: 'numeric',
        day: 'numeric',
        hour: 'numeric',
      });
    } catch (err) {
      throw new InvalidInputError(`time zone "${timeZone}" is not an IANA zone name like Europe/Prague or UTC`, { cause: err });
    }
    formatters.set(timeZone, cached);
  }
  return cached;
}

/** ISO 8601 week of a calendar date: weeks start on Monday, week 1 holds the year's first Thursday. */
function isoWeek(year: number, month: number, day: number): { isoYear: number; week: number } {
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  const weekday = (date.getUTCDay() + 6) % 7; // Monday 0 … Sunday 6
  const thursday = new Date(date.getTime() + (3 - weekday) * 86_400_000);
  const isoYear = thursday.getUTCFullYear();
  const januaryFirst = new Date(0);
  januaryFirst.setUTCFullYear(isoYear, 0, 1);
  const week = Math.floor((thursday.getTime() - januaryFirst.getTime()) / (7 * 86_400_000)) + 1;
  return { isoYear, week };
}
