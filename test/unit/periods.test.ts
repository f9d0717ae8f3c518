// Billing periods: month ends, leap years, yearly intervals, and a property that periods tile
// time, with no gap and no overlap, whatever the anchor.
import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { anniversary, PeriodBeyondCalendarError, periodContaining } from '../../src/billing/periods.js';

describe('periodContaining', () => {
  it('clamps a Jan 31 anchor to each month end, and returns to the 31st when it can', () => {
    const starts = Array.from({ length: 6 }, (_, n) => anniversary('2026-01-31', 'month', 1, n));
    expect(starts).toEqual([
      '2026-01-31',
      '2026-02-28',
      '2026-03-31',
      '2026-04-30',
      '2026-05-31',
      '2026-06-30',
    ]);
    expect(anniversary('2028-01-31', 'month', 1, 1)).toBe('2028-02-29'); // leap year
    expect(periodContaining('2026-01-31', 'month', 1, '2026-02-27')).toEqual({
      start: '2026-01-31',
      end: '2026-02-28',
    });
    expect(periodContaining('2026-01-31', 'month', 1, '2026-02-28')).toEqual({
      start: '2026-02-28',
      end: '2026-03-31',
    });
    expect(periodContaining('2026-01-31', 'month', 1, '2026-03-30')).toEqual({
      start: '2026-02-28',
      end: '2026-03-31',
    });
  });

  it('refuses a period that would end after 9999-12-31, and reaches the last one that does not', () => {
    expect(periodContaining('9990-01-01', 'year', 9, '9998-06-01')).toEqual({
      start: '9990-01-01',
      end: '9999-01-01',
    });
    expect(() => periodContaining('9990-01-01', 'year', 36, '9990-01-01')).toThrow(PeriodBeyondCalendarError);
    expect(() => periodContaining('9999-12-01', 'month', 1, '9999-12-15')).toThrow(PeriodBeyondCalendarError);
  });

  it('handles yearly intervals from Feb 29', () => {
    expect(periodContaining('2024-02-29', 'year', 1, '2025-02-28')).toEqual({
      start: '2025-02-28',
      end: '2026-02-28',
    });
    expect(periodContaining('2024-02-29', 'year', 1, '2028-03-01')).toEqual({
      start: '2028-02-29',
      end: '2029-02-28',
    });
    expect(periodContaining('2024-02-29', 'year', 1, '2024-02-29')).toEqual({
      start: '2024-02-29',
      end: '2025-02-28',
    });
  });

  it('respects an interval count, and extends the rhythm before the anchor', () => {
    expect(periodContaining('2026-01-15', 'month', 3, '2026-05-01')).toEqual({
      start: '2026-04-15',
      end: '2026-07-15',
    });
    expect(periodContaining('2026-01-15', 'month', 1, '2025-12-20')).toEqual({
      start: '2025-12-15',
      end: '2026-01-15',
    });
  });

  const date = fc
    .date({
      min: new Date('1990-01-01T00:00:00Z'),
      max: new Date('2090-12-31T00:00:00Z'),
      noInvalidDate: true,
    })
    .map((d) => d.toISOString().slice(0, 10));
  const interval = fc.constantFrom('month' as const, 'year' as const);
  const count = fc.integer({ min: 1, max: 12 });

  test.prop([date, interval, count, date])(
    'contains the date, and starts on an anniversary',
    (anchor, iv, n, day) => {
      const period = periodContaining(anchor, iv, n, day);
      expect(period.start <= day && day < period.end).toBe(true);
    },
  );

  test.prop([date, interval, count, date])(
    'tiles time: the next period starts where this one ends',
    (anchor, iv, n, day) => {
      const period = periodContaining(anchor, iv, n, day);
      const next = periodContaining(anchor, iv, n, period.end);
      expect(next.start).toBe(period.end);
      // The day before the end is still in this period: no gap, no overlap.
      const last = new Date(`${period.end}T00:00:00Z`);
      last.setUTCDate(last.getUTCDate() - 1);
      expect(periodContaining(anchor, iv, n, last.toISOString().slice(0, 10))).toEqual(period);
    },
  );
});
