// The MRR engine at the edges of the calendar the API accepts (0001-01-01 to 9999-12-31), and
// its sums: what the metrics tests check against the independent recomputation, here for dates no
// realistic tenant has.
import { describe, expect, it } from 'vitest';
import {
  ANY,
  Buckets,
  collapseCutoff,
  contribute,
  contributeChange,
  contributeSeries,
  countsIn,
  type CustomerInput,
  type DayRows,
  Dimensions,
  dimensionsOf,
  type EngineSubscription,
  addPackedCells,
  isoDate,
  MrrRangeError,
  packCells,
  patchSeries,
  seriesKey,
  seriesOf,
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

  it("refuses a month whose days' sum passes 2^53 cents on the way, though it ends under it (analytics7)", () => {
    // Two customers at 50,000,000,000,000.00 a month each, both in March only, starting and
    // ending a day apart: no day's change passes 2^53 cents, their MRR from 2 to 20 March does.
    const dims = new Dimensions();
    const buckets = new Buckets();
    for (const [start, end] of [
      ['2020-03-01', '2020-03-21'],
      ['2020-03-02', '2020-03-22'],
    ] as const)
      contribute(
        {
          region: 'DE',
          subscriptions: [
            {
              start: at(start),
              end: at(end),
              canceledAt: null,
              versions: [{ at: at(start), counts: true, cents: 5e15, planId: null }],
              features: [],
            },
          ],
        },
        dims,
        buckets,
        1,
      );
    // Kept daily, each cell is exact.
    expect(toDayRows(buckets, dims, -Infinity).day).toContain('2020-03-02');
    // Summed on 1 March (the check's and the rebuild's rows), the month passes 2^53 on the way.
    const cutoff = at('2020-05-01') / DAY;
    expect(() => toDayRows(buckets, dims, cutoff)).toThrow(MrrRangeError);
    expect(() => packCells(buckets, dims, cutoff)).toThrow(MrrRangeError);
  });

  it('writes years before 1000 and after 9999 as PostgreSQL reads them', () => {
    expect(isoDate(at('0001-01-01') / DAY)).toBe('0001-01-01');
    expect(isoDate(at('0999-12-31') / DAY)).toBe('0999-12-31');
    expect(isoDate(at('9999-12-31') / DAY + 1)).toBe('10000-01-01');
  });
});

describe('patched series', () => {
  // Random customers: subscriptions on two plans or none, with features, several versions, ends
  // and cancellations, many sharing times (so deltas add up and cancel out at one time).
  const PLANS = ['00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-0000000000a2', null];
  const FEATURES = ['00000000-0000-0000-0000-0000000000f1', '00000000-0000-0000-0000-0000000000f2'];
  let seed = 7;
  const random = (n: number) => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    return seed % n;
  };
  const day = () => at('2024-01-01') + random(40) * 15 * DAY;
  let ids = 0;
  const subscription = (): EngineSubscription => {
    const start = day();
    const versions = Array.from({ length: 1 + random(3) }, (_, i) => ({
      at: i === 0 ? start : start + random(20) * 15 * DAY,
      counts: random(5) > 0,
      cents: 100 * (1 + random(4)),
      planId: PLANS[random(3)]!,
    })).sort((a, b) => a.at - b.at);
    return {
      id: `s${ids++}`,
      start,
      end: random(3) === 0 ? start + random(30) * 15 * DAY : null,
      canceledAt: random(4) === 0 ? start + random(30) * 15 * DAY : null,
      versions,
      features: FEATURES.filter(() => random(2) === 0),
    };
  };
  const sums = (count: (dims: Dimensions, buckets: Buckets) => void) => {
    const dims = new Dimensions();
    const buckets = new Buckets();
    count(dims, buckets);
    const rows = toDayRows(buckets, dims, -Infinity);
    return rows.day
      .map(
        (d, i) =>
          `${rows.plan[i]} ${rows.feature[i]} ${rows.region[i]} ${d} ${rows.columns.map((c) => c[i]).join('/')}`,
      )
      .sort();
  };

  it('packed for another thread and added up, sum as if counted in one place', () => {
    const REGIONS = ['DE', 'FR', ''];
    const customers: CustomerInput[] = Array.from({ length: 300 }, () => ({
      region: REGIONS[random(3)]!,
      subscriptions: Array.from({ length: 1 + random(4) }, subscription),
    }));
    const cutoff = at('2025-06-01');
    // Two threads' counts (each sums its regions into '*' only when packing), added up in a third.
    const parts = [customers.slice(0, 140), customers.slice(140)].map((part) => {
      const dims = new Dimensions();
      const buckets = new Buckets({ allFromRegions: true });
      for (const input of part) contribute(input, dims, buckets, 1);
      return packCells(buckets, dims, cutoff / DAY);
    });
    const merged = { dims: new Dimensions(), buckets: new Buckets() };
    for (const part of parts) addPackedCells(part, merged.dims, merged.buckets);
    const one = { dims: new Dimensions(), buckets: new Buckets() };
    for (const input of customers) contribute(input, one.dims, one.buckets, 1);
    // The same rows, in whatever order each run's dimensions put its slots.
    const lines = (rows: DayRows) =>
      rows.day
        .map(
          (d, i) =>
            `${rows.plan[i]} ${rows.feature[i]} ${rows.region[i]} ${d} ${rows.columns.map((c) => c[i]).join('/')}`,
        )
        .sort();
    const expected = lines(toDayRows(one.buckets, one.dims, cutoff / DAY));
    expect(expected.length).toBeGreaterThan(500);
    expect(lines(toDayRows(merged.buckets, merged.dims, cutoff / DAY))).toEqual(expected);
  });

  it('are the series of the changed input, and count the same in the dimensions they touch', () => {
    let changedRounds = 0;
    for (let round = 0; round < 200; round++) {
      const before: CustomerInput = {
        region: 'DE',
        subscriptions: Array.from({ length: 1 + random(12) }, subscription),
      };
      // Some subscriptions change or go, some come.
      const stale = before.subscriptions.filter(() => random(3) === 0);
      const fresh = [
        ...stale.filter(() => random(2) === 0).map((s) => ({ ...subscription(), id: s.id })),
        ...Array.from({ length: random(3) }, subscription),
      ];
      const now: CustomerInput = {
        region: 'DE',
        subscriptions: [...before.subscriptions.filter((s) => !stale.includes(s)), ...fresh],
      };
      const patched = patchSeries(seriesOf(before), stale, fresh);
      expect(new Map([...patched].sort())).toEqual(new Map([...seriesOf(now)].sort()));

      // The difference counted in the touched dimensions only is the whole difference.
      const touched = new Set<string>();
      for (const s of [...stale, ...fresh]) dimensionsOf(s, touched);
      const whole = sums((dims, buckets) => {
        contribute(before, dims, buckets, -1);
        contribute(now, dims, buckets, 1);
      });
      const onlyTouched = sums((dims, buckets) => {
        contributeSeries(seriesOf(before), 'DE', dims, buckets, -1, touched);
        contributeSeries(patched, 'DE', dims, buckets, 1, touched);
      });
      expect(onlyTouched).toEqual(whole);
      // Counted as a change (what both add alike left out): the same sums, in every dimension or
      // the touched ones. (Days where before and now cancel out hold zeros or nothing.)
      const nonZero = (lines: string[]) => lines.filter((l) => !/ 0(\/0)*$/.test(l));
      for (const only of [touched, undefined]) {
        const asChange = sums((dims, buckets) =>
          contributeChange(seriesOf(before), patched, 'DE', dims, buckets, only),
        );
        expect(nonZero(asChange)).toEqual(nonZero(whole));
      }
      if (nonZero(whole).length > 0) changedRounds++;

      // A read of one dimension: that dimension's series alone, the same as the whole patch's,
      // and touched exactly when dimensionsOf says so.
      for (const plan of [ANY, ...PLANS.filter((p) => p !== null)]) {
        for (const feature of [ANY, ...FEATURES]) {
          const key = seriesKey(plan, feature);
          const one = patchSeries(seriesOf(before), stale, fresh, { plan, feature });
          expect([...one.keys()]).toEqual(patched.has(key) ? [key] : []);
          expect(one.get(key)).toEqual(patched.get(key));
          expect([...stale, ...fresh].some((s) => countsIn(s, plan, feature))).toBe(touched.has(key));
        }
      }
    }
    // Most rounds change something: the comparisons above are not of empty sums.
    expect(changedRounds).toBeGreaterThan(100);
  });
});
