// The MRR engine at the edges of the calendar the API accepts (0001-01-01 to 9999-12-31), and
// its sums: what the metrics tests check against the independent recomputation, here for dates no
// realistic tenant has.
import { describe, expect, it } from 'vitest';
import {
  Buckets,
  collapseCutoff,
  contribute,
  Dimensions,
  isoDate,
  toDayRows,
} from '../../src/analytics/mrr-engine.js';

const DAY = 86_400_000;
const at = (date: string) => Date.parse(`${date}T00:00:00Z`);

function rowsOf(start: string, endDate: string | null, cutoff = -Infinity) {
  const dims = new Dimensions();
  const buckets = new Buckets();
  contribute(
    {
      region: 'DE',
      subscriptions: [
        {
          start: at(start),
          end: endDate === null ? null : at(endDate) + DAY,
          canceledAt: null,
          versions: [{ at: at('2020-01-01'), counts: true, cents: 1000, planId: null }],
          features: [],
        },
      ],
    },
    dims,
    buckets,
    1,
  );
  const rows = toDayRows(buckets, dims, cutoff);
  return rows.day.map((day, i) => ({
    region: rows.region[i],
    day,
    mrr: rows.columns[0]![i],
    customers: rows.columns[1]![i],
    new: rows.columns[3]![i],
    nrrBase: rows.columns[12]![i],
  }));
}

describe('the MRR engine', () => {
  it('counts a subscription from 0001-01-01 to 9999-12-31, in dates PostgreSQL reads', () => {
    const rows = rowsOf('0001-01-01', '9999-12-31')
      .filter((r) => r.mrr !== '0' || r.customers !== '0')
      .map(({ region, day, mrr, customers }) => ({ region, day, mrr, customers }));
    expect(rows).toEqual(
      expect.arrayContaining([
        { region: 'DE', day: '0001-01-01', mrr: '1000', customers: '1' },
        { region: '*', day: '0001-01-01', mrr: '1000', customers: '1' },
        { region: 'DE', day: '10000-01-01', mrr: '-1000', customers: '-1' },
        { region: '*', day: '10000-01-01', mrr: '-1000', customers: '-1' },
      ]),
    );
    expect(rows).toHaveLength(4);
  });

  it('in year 1: a new customer on its first day, in the 12-month cohort from 11 months later', () => {
    expect(rowsOf('0001-03-15', null).filter((r) => r.region === '*')).toEqual([
      { region: '*', day: '0001-03-15', mrr: '1000', customers: '1', new: '1', nrrBase: '0' },
      // The base of trailing-12-month retention from 0002-03 (the cohort of 0001-04's start).
      { region: '*', day: '0002-02-28', mrr: '0', customers: '0', new: '0', nrrBase: '1000' },
    ]);
  });

  it('sums the days of months before the previous one on their first day, and keeps later days', () => {
    const cutoff = collapseCutoff(at('0001-06-20'));
    expect(isoDate(cutoff)).toBe('0001-05-01');
    const rows = rowsOf('0001-03-15', '0001-05-09', cutoff).filter((r) => r.region === '*');
    expect(rows.map((r) => [r.day, r.mrr, r.customers])).toEqual([
      ['0001-03-01', '1000', '1'],
      ['0001-05-10', '-1000', '-1'],
    ]);
  });

  it('writes years before 1000 and after 9999 as PostgreSQL reads them', () => {
    expect(isoDate(at('0001-01-01') / DAY)).toBe('0001-01-01');
    expect(isoDate(at('0999-12-31') / DAY)).toBe('0999-12-31');
    expect(isoDate(at('9999-12-31') / DAY + 1)).toBe('10000-01-01');
  });
});
