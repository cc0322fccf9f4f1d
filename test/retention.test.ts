import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { applyRetentionPolicy, type RetentionCandidate } from '../shared/retention/apply-policy.js';
import { calendarBucket } from '../shared/retention/calendar-buckets.js';
import { parseCalendarDuration, subtractCalendarDuration } from '../shared/retention/calendar-duration.js';
import type { RetentionPolicy } from '../shared/retention/retention-policy.js';
import { InvalidInputError } from '../shared/errors.js';

interface ResticFixture {
  snapshots: Array<{ time: string; labels?: Record<string, string> }>;
  cases: Array<{ policy: RetentionPolicy; keep: Array<{ time: string; matches: string[] }> }>;
}

/** restic's own policy test data and golden results, tags turned into labels `tag=yes`. */
const restic = JSON.parse(readFileSync(new URL('./fixtures/restic-retention-policy.json', import.meta.url), 'utf8')) as ResticFixture;

function candidates(times: Array<string | { time: string; labels?: Record<string, string> }>): RetentionCandidate[] {
  return times.map((entry, index) => {
    const { time, labels } = typeof entry === 'string' ? { time: entry, labels: undefined } : entry;
    return { id: `s${index}`, time: new Date(time), labels: labels ?? {} };
  });
}

function kept(snapshots: RetentionCandidate[], policy: RetentionPolicy, now = new Date('2030-01-01T00:00:00Z')) {
  return applyRetentionPolicy(snapshots, policy, now)
    .filter((d) => d.keep)
    .map((d) => ({ time: d.snapshot.time.toISOString().replace('.000Z', 'Z'), reasons: d.reasons }));
}

// doc/060_forget.rst: backups every weekday at 11:00, an extra one on Fridays at 23:00, no Wednesday 30 April.
const documented = [
  '2025-04-21T11:00:00Z', '2025-04-22T11:00:00Z', '2025-04-23T11:00:00Z', '2025-04-24T11:00:00Z',
  '2025-04-25T11:00:00Z', '2025-04-25T23:00:00Z', '2025-04-28T11:00:00Z', '2025-04-29T11:00:00Z',
  '2025-05-01T11:00:00Z', '2025-05-02T11:00:00Z', '2025-05-02T23:00:00Z',
];

describe('retention with restic semantics', () => {
  for (const [index, { policy, keep }] of restic.cases.entries()) {
    it(`matches restic's golden result ${index + 1}: ${JSON.stringify(policy)}`, () => {
      const result = kept(candidates(restic.snapshots), policy);
      assert.deepEqual(
        result,
        keep.map((k) => ({ time: new Date(k.time).toISOString().replace('.000Z', 'Z'), reasons: k.matches })),
      );
    });
  }


  it('keeps the newest of each of the last five days that have snapshots with keep-daily 5 (restic docs)', () => {
    const result = kept(candidates(documented), { keepDaily: 5 }, new Date('2025-05-03T00:00:00Z'));
    assert.deepEqual(result.map((r) => r.time).sort(), [
      '2025-04-25T23:00:00Z', '2025-04-28T11:00:00Z', '2025-04-29T11:00:00Z', '2025-05-01T11:00:00Z', '2025-05-02T23:00:00Z',
    ]);
    assert.ok(result.every((r) => r.reasons.join() === 'daily snapshot'));
  });

  it('keeps one per day within 7 days of the newest with keep-within-daily 7d (restic docs)', () => {
    const result = kept(candidates(documented), { keepWithinDaily: '7d' }, new Date('2025-05-03T00:00:00Z'));
    assert.deepEqual(result.map((r) => r.time).sort(), ['2025-04-28T11:00:00Z', '2025-04-29T11:00:00Z', '2025-05-01T11:00:00Z', '2025-05-02T23:00:00Z']);
    assert.ok(result.every((r) => r.reasons.join() === 'daily within 7d'));
  });

  it('keeps 7 daily, 4 weekly and 12 monthly of a nightly history, the dailies counting toward the weeks', () => {
    const nights = Array.from({ length: 400 }, (_, day) => new Date(Date.UTC(2025, 0, 1 + day, 3)).toISOString());
    const result = kept(candidates(nights), { keepDaily: 7, keepWeekly: 4, keepMonthly: 12 }, new Date('2026-03-01T00:00:00Z'));
    // Nights run to Wednesday 4 February 2026: 7 dailies (29 January on), the Sundays 25 and 18 January
    // as the weeks not yet covered, and the month ends from December back to March 2025.
    assert.equal(result.length, 7 + 2 + 10);
    assert.deepEqual(result.slice(7, 10).map((r) => [r.time.slice(0, 10), r.reasons.join()]), [
      ['2026-01-25', 'weekly snapshot'],
      ['2026-01-18', 'weekly snapshot'],
      ['2025-12-31', 'monthly snapshot'],
    ]);
    assert.equal(result[0]!.reasons.join(), 'daily snapshot,weekly snapshot,monthly snapshot');
  });

  it('never lets a policy without any rule remove anything, and treats counts of 0 and zero durations as no rule', () => {
    for (const policy of [{}, { keepLast: 0 }, { keepDaily: 0, keepTag: [] }, { keepWithin: '0d' }, { keepWithinDaily: '0s', keepLast: 0 }] as RetentionPolicy[]) {
      assert.equal(kept(candidates(documented), policy).length, documented.length);
    }
  });

  it('keeps snapshots in the future and counts keep-within from the newest snapshot that is not', () => {
    const snapshots = candidates(['2025-01-01T00:00:00Z', '2025-01-05T00:00:00Z', '2025-01-10T00:00:00Z', '2031-01-01T00:00:00Z']);
    const result = kept(snapshots, { keepWithin: '6d' }, new Date('2026-01-01T00:00:00Z'));
    assert.deepEqual(result.map((r) => r.time), ['2031-01-01T00:00:00Z', '2025-01-10T00:00:00Z', '2025-01-05T00:00:00Z']);
  });
});

describe('calendar buckets in a time zone', () => {
  it('puts a snapshot at 00:30 Prague time in the Prague day, not the UTC one', () => {
    const time = new Date('2026-06-01T22:30:00Z'); // 00:30 CEST on 2 June
    assert.equal(calendarBucket(time, 'daily', 'UTC'), 20260601);
    assert.equal(calendarBucket(time, 'daily', 'Europe/Prague'), 20260602);
    // Sunday 31 May 22:30 UTC is Monday 1 June in Prague: a new ISO week there.
    const sunday = new Date('2026-05-31T22:30:00Z');
    assert.equal(calendarBucket(sunday, 'weekly', 'UTC'), 202622);
    assert.equal(calendarBucket(sunday, 'weekly', 'Europe/Prague'), 202623);
    // New Year's Eve 23:30 UTC is already next year in Prague.
    assert.equal(calendarBucket(new Date('2026-12-31T23:30:00Z'), 'yearly', 'Europe/Prague'), 2027);
  });

  it('treats the hour repeated when clocks go back as one hourly bucket and keeps one snapshot of it', () => {
    // 25 October 2026, Prague: 02:00-02:59 CEST (00:xx UTC), then 02:00-02:59 CET again (01:xx UTC).
    const first = new Date('2026-10-25T00:30:00Z');
    const second = new Date('2026-10-25T01:30:00Z');
    assert.equal(calendarBucket(first, 'hourly', 'Europe/Prague'), calendarBucket(second, 'hourly', 'Europe/Prague'));
    const result = kept(candidates([first.toISOString(), second.toISOString(), '2026-10-25T02:30:00Z']), { keepHourly: 2, timeZone: 'Europe/Prague' });
    assert.deepEqual(result.map((r) => r.time), ['2026-10-25T02:30:00Z', '2026-10-25T01:30:00Z']);
  });

  it('keeps one snapshot for the 23-hour day when clocks go forward', () => {
    // 29 March 2026, Prague: the local day runs from 28 March 23:00 UTC to 29 March 22:00 UTC.
    const day = ['2026-03-28T23:10:00Z', '2026-03-29T05:00:00Z', '2026-03-29T21:50:00Z'];
    const next = '2026-03-29T22:10:00Z';
    const result = kept(candidates([...day, next]), { keepDaily: 2, timeZone: 'Europe/Prague' });
    assert.deepEqual(result.map((r) => r.time), [next, '2026-03-29T21:50:00Z']);
  });

  it('numbers ISO weeks across year ends like Go and restic (2026-12-31 is week 53, 2027-01-04 week 1)', () => {
    assert.equal(calendarBucket(new Date('2026-12-31T12:00:00Z'), 'weekly', 'UTC'), 202653);
    assert.equal(calendarBucket(new Date('2027-01-03T12:00:00Z'), 'weekly', 'UTC'), 202653);
    assert.equal(calendarBucket(new Date('2027-01-04T12:00:00Z'), 'weekly', 'UTC'), 202701);
    assert.equal(calendarBucket(new Date('2024-12-30T12:00:00Z'), 'weekly', 'UTC'), 202501);
  });

  it('refuses an unknown time zone in one line naming it', () => {
    assert.throws(() => kept(candidates(documented), { keepDaily: 1, timeZone: 'Mars/Olympus' }), (err: unknown) => {
      return err instanceof InvalidInputError && /Mars\/Olympus/.test(err.message);
    });
  });
});

describe('calendar durations', () => {
  it('parses restic-style spans with months as mo and subtracts them on the calendar', () => {
    assert.deepEqual(parseCalendarDuration('1y2mo3d3h'), { years: 1, months: 2, days: 3, seconds: 10800 });
    assert.deepEqual(parseCalendarDuration('30m'), { years: 0, months: 0, days: 0, seconds: 1800 });
    assert.deepEqual(parseCalendarDuration('4w'), { years: 0, months: 0, days: 28, seconds: 0 });
    assert.equal(subtractCalendarDuration(new Date('2026-03-31T10:00:00Z'), parseCalendarDuration('1mo')).toISOString(), '2026-03-03T10:00:00.000Z');
    for (const bad of ['', 'forever', '1d1y', '7', 'mo', '1M']) assert.throws(() => parseCalendarDuration(bad), InvalidInputError);
  });
});
