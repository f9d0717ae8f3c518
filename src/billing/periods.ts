// Billing periods: pure date arithmetic, no I/O. A subscription's periods are anchored on its
// start date: each period starts on an anniversary of it (every `count` months or years), clamped
// to the end of shorter months. Started on Jan 31 (monthly): periods start Jan 31, Feb 28 (29 in a
// leap year), Mar 31, Apr 30, ... Dates are 'YYYY-MM-DD' calendar dates; a period is
// [start, end): `end` is the first day of the next period.

export type Interval = 'month' | 'year';

export interface Period {
  /** First day of the period. */
  start: string;
  /** First day of the next period (exclusive end). */
  end: string;
}

interface Ymd {
  y: number;
  m: number; // 1-12
  d: number;
}

const parse = (date: string): Ymd => {
  // 'YYYY-MM-DD' by slices: this runs for every usage event and every subscription of a page.
  if (date.length === 10 && date[4] === '-' && date[7] === '-')
    return { y: Number(date.slice(0, 4)), m: Number(date.slice(5, 7)), d: Number(date.slice(8)) };
  const [y = NaN, m = NaN, d = NaN] = date.split('-').map(Number);
  return { y, m, d };
};

const format = ({ y, m, d }: Ymd): string =>
  `${String(y).padStart(4, '0')}-${String(m).padStart(2, '0')}-${String(d).padStart(2, '0')}`;

export function daysInMonth(y: number, m: number): number {
  if (m === 2) return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0 ? 29 : 28;
  return [4, 6, 9, 11].includes(m) ? 30 : 31;
}

/** The n-th anniversary of the anchor (n whole intervals later), clamped to the month's end. */
export function anniversary(anchor: string, interval: Interval, count: number, n: number): string {
  return format(anniversaryOf(parse(anchor), (interval === 'year' ? 12 : 1) * count * n));
}

/** The anchor moved by whole months, clamped to the month's end. */
function anniversaryOf({ y, m, d }: Ymd, months: number): Ymd {
  const index = y * 12 + (m - 1) + months;
  const year = Math.floor(index / 12);
  const month = (index % 12) + 1;
  return { y: year, m: month, d: Math.min(d, daysInMonth(year, month)) };
}

/** The last calendar date the API can carry: JSON dates (RFC 3339 full-date) have four-digit years. */
export const LAST_DATE = '9999-12-31';

/** A billing period that would end after LAST_DATE: such a subscription or invoice is refused. */
export class PeriodBeyondCalendarError extends RangeError {
  constructor(readonly period: Period) {
    super(`a billing period starting ${period.start} would end after ${LAST_DATE}`);
  }
}

/** Whole months from a to b, counting a month only once its day is reached (as anniversaries do). */
function monthsBetween(a: Ymd, b: Ymd): number {
  return (b.y - a.y) * 12 + (b.m - a.m);
}

/**
 * The period containing `date`, for a subscription started on `anchor`; periods before the
 * anchor extend the same rhythm backwards (so every date has exactly one period).
 */
export function periodContaining(anchor: string, interval: Interval, count: number, date: string): Period {
  if (!Number.isInteger(count) || count < 1) throw new RangeError('count must be a positive integer');
  const step = (interval === 'year' ? 12 : 1) * count;
  const from = parse(anchor);
  const at = parse(date);
  // An estimate of the number of periods from the anchor, then corrected by at most one step.
  let n = Math.floor(monthsBetween(from, at) / step);
  // Compared as numbers, not strings: '10000-01-01' sorts before '9999-12-31'.
  const day = ({ y, m, d }: Ymd) => (y * 12 + m) * 32 + d;
  const target = day(at);
  while (day(anniversaryOf(from, step * n)) > target) n--;
  while (day(anniversaryOf(from, step * (n + 1))) <= target) n++;
  const end = anniversaryOf(from, step * (n + 1));
  const period = { start: format(anniversaryOf(from, step * n)), end: format(end) };
  if (end.y > 9999) throw new PeriodBeyondCalendarError(period);
  return period;
}

/**
 * Where billing resumes after a subscription's schedule changed (its start date or interval):
 * the first period start of the new schedule on or after `from`, the first day not billed yet.
 * A later start date is itself that period start. No day is ever billed twice; days between
 * `from` and the next period start of the new schedule are not billed.
 */
export function firstPeriodStartFrom(
  anchor: string,
  interval: Interval,
  count: number,
  from: string,
): string {
  if (from <= anchor) return anchor;
  const period = periodContaining(anchor, interval, count, from);
  return period.start === from ? from : period.end;
}
