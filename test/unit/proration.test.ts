// Proration by the day (billing/proration.ts): what a period costs after any number of changes is
// each price × the share of the period it was in force, to the cent per line; pending items fill
// an invoice down to zero and carry the rest.
import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { formatSignedCents, parseAmount, parseSignedAmount } from '../../src/billing/money.js';
import { anniversary, periodContaining } from '../../src/billing/periods.js';
import {
  applyItems,
  daysBetween,
  paidForPrice,
  prorated,
  prorationItems,
} from '../../src/billing/proration.js';

const addDays = (day: string, n: number) =>
  new Date(Date.parse(`${day}T00:00:00Z`) + n * 86_400_000).toISOString().slice(0, 10);

describe('prorated', () => {
  it.each([
    // price, days, of days, cents: half up at the half cent
    ['30.00', 21, 31, '20.32'], // 20.3225…
    ['60.00', 21, 31, '40.65'], // 40.6451…
    ['0.01', 1, 2, '0.01'], // 0.005 rounds up
    ['0.01', 1, 3, '0.00'],
    ['1200.00', 366, 366, '1200.00'],
    ['1200.00', 1, 366, '3.28'], // 3.2786…
    ['9999999999.99', 15, 28, '5357142857.14'], // 5357142857.137…
  ])('%s for %i of %i days is %s', (price, days, of, expected) => {
    expect(formatSignedCents(prorated(price, days, of))).toBe(expected);
  });
});

describe('prorationItems', () => {
  it('credits the old price and charges the new one for the rest of the period, by the day', () => {
    const items = prorationItems(
      { start: '2026-01-01', end: '2026-02-01' },
      '2026-01-11',
      { amount: '30.00', label: 'Basic' },
      { amount: '60.00', label: 'Pro' },
    );
    expect(items).toEqual([
      {
        kind: 'proration_credit',
        description: 'Unused time on Basic from 2026-01-11 to 2026-02-01 (21 of 31 days)',
        amount: '-20.32',
        period_start: '2026-01-11',
        period_end: '2026-02-01',
      },
      {
        kind: 'proration_charge',
        description: 'Remaining time on Pro from 2026-01-11 to 2026-02-01 (21 of 31 days)',
        amount: '40.65',
        period_start: '2026-01-11',
        period_end: '2026-02-01',
      },
    ]);
  });

  it('credits the days up to `until` only, naming the days to the period end as made', () => {
    const period = { start: '2026-01-01', end: '2026-02-01' };
    const paid = { numerator: 150_000n, denominator: 1n }; // 15.00 paid of 30.00
    expect(
      prorationItems(
        period,
        '2026-01-11',
        { amount: '30.00', label: 'Basic', paid },
        undefined,
        '2026-01-15',
      ),
    ).toEqual([
      {
        kind: 'proration_credit',
        description:
          'Unused time on Basic from 2026-01-11 to 2026-02-01 (21 of 31 days), at 15.00 paid of 30.00, until 2026-01-15 (4 of 31 days)',
        amount: '-1.94',
        period_start: '2026-01-11',
        period_end: '2026-01-15',
      },
    ]);
  });

  it('makes no item of a zero amount (a free plan, or no new price)', () => {
    const period = { start: '2028-02-01', end: '2028-03-01' };
    expect(prorationItems(period, '2028-02-15', { amount: '0.00', label: 'Free' }, undefined)).toEqual([]);
    expect(prorationItems(period, '2028-02-15', { amount: '29.00', label: 'A' }, undefined)).toEqual([
      expect.objectContaining({ amount: '-15.00', description: expect.stringContaining('(15 of 29 days)') }),
    ]);
  });

  // Any period of any schedule (month ends, leap years), any prices, changed on any days of it:
  // the full price billed at the start plus every change's items equals Σ price × days in force /
  // days of the period, to within half a cent per line.
  test.prop([
    fc.date({ min: new Date('2020-01-01'), max: new Date('2032-12-31'), noInvalidDate: true }),
    fc.constantFrom('month' as const, 'year' as const),
    fc.integer({ min: 1, max: 3 }),
    fc.array(fc.integer({ min: 0, max: 99_999_999 }), { minLength: 2, maxLength: 6 }),
    fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 5, maxLength: 5 }),
  ])('a period costs each price for its share of it', (anchorDate, interval, count, cents, cuts) => {
    const anchor = anchorDate.toISOString().slice(0, 10);
    const period = periodContaining(anchor, interval, count, anniversary(anchor, interval, count, 1));
    const periodDays = daysBetween(period.start, period.end);
    const prices = cents.map((c) => formatSignedCents(BigInt(c) * 100n));
    // The change days, in order, within the period (the first day too).
    const days = cuts
      .slice(0, prices.length - 1)
      .map((cut) => Math.min(periodDays - 1, Math.floor(cut * periodDays)))
      .sort((a, b) => a - b);
    let billed = parseAmount(prices[0]!);
    let lines = 1;
    days.forEach((offset, i) => {
      const items = prorationItems(
        period,
        addDays(period.start, offset),
        { amount: prices[i]!, label: 'before' },
        { amount: prices[i + 1]!, label: 'after' },
      );
      for (const item of items) billed += parseSignedAmount(item.amount);
      lines += items.length;
    });
    // Exactly: Σ price × days in force, in ten-thousandths × periodDays.
    const bounds = [0, ...days, periodDays];
    let exact = 0n;
    prices.forEach((price, i) => {
      exact += parseAmount(price) * BigInt(bounds[i + 1]! - bounds[i]!);
    });
    const error = billed * BigInt(periodDays) - exact;
    const halfCentPerLine = 50n * BigInt(lines) * BigInt(periodDays);
    expect(error <= halfCentPerLine && error >= -halfCentPerLine).toBe(true);
  });
});

describe('applyItems', () => {
  const item = (id: string, amount: string) => ({ id, amount });

  it('bills every item when the invoice stays at or above zero', () => {
    const items = [item('a', '-20.32'), item('b', '40.65')];
    expect(applyItems(parseAmount('60.00'), items)).toEqual({
      billed: [
        { item: items[0], amount: '-20.32' },
        { item: items[1], amount: '40.65' },
      ],
    });
  });

  it('applies a credit up to zero and carries the rest; later credits wait whole', () => {
    const items = [item('a', '-96.77'), item('b', '0.97'), item('c', '-5.00')];
    expect(applyItems(parseAmount('1.00'), items)).toEqual({
      billed: [
        { item: items[0], amount: '-1.97' },
        { item: items[1], amount: '0.97' },
      ],
      carried: { item: items[0], amount: '-94.80' },
    });
  });

  it('carries a credit whole when the invoice is already at zero', () => {
    const items = [item('a', '-3.00')];
    expect(applyItems(0n, items)).toEqual({ billed: [], carried: { item: items[0], amount: '-3.00' } });
  });

  test.prop([
    fc.integer({ min: 0, max: 1_000_000 }),
    fc.array(fc.integer({ min: -1_000_000, max: 1_000_000 }), { maxLength: 8 }),
  ])('never takes an invoice below zero and loses no cent', (subtotal, amounts) => {
    const items = amounts.map((c, i) => item(String(i), formatSignedCents(BigInt(c) * 100n)));
    const { billed, carried } = applyItems(BigInt(subtotal) * 100n, items);
    const sum = (xs: string[]) => xs.reduce((s, x) => s + parseSignedAmount(x), 0n);
    expect(BigInt(subtotal) * 100n + sum(billed.map((b) => b.amount))).toBeGreaterThanOrEqual(0n);
    const waiting = items.filter((i) => !billed.some((b) => b.item === i) && i !== carried?.item);
    // What was billed, carried and left waiting adds up to the items.
    expect(
      sum(billed.map((b) => b.amount)) +
        sum(carried ? [carried.amount] : []) +
        sum(waiting.map((i) => i.amount)),
    ).toBe(sum(items.map((i) => i.amount)));
  });
});

describe('paidForPrice', () => {
  const line = (type: string, amount: string) => ({ type, amount });
  const paid = (
    lines: Array<{ type: string; amount: string }>,
    notes: Array<[number | null, string]> = [],
  ) => {
    const share = paidForPrice({ lines }, [
      { lines: notes.map(([line_index, amount]) => ({ line_index, amount })) },
    ]);
    return share && formatSignedCents(share.numerator / share.denominator);
  };

  it('is the price line less its share of the discount, among the charges it reduced', () => {
    expect(paid([line('subscription', '100.00')])).toBe('100.00');
    // 10% off 50.00 of charges: 2.00 of it on the price's 20.00.
    expect(paid([line('subscription', '20.00'), line('usage', '30.00'), line('discount', '-5.00')])).toBe(
      '18.00',
    );
    expect(paid([line('subscription', '100.00'), line('discount', '-100.00')])).toBe('0.00');
    // A credit carried from before paid for it: it reduces nothing.
    expect(paid([line('subscription', '10.00'), line('proration', '-10.00')])).toBe('10.00');
    expect(paid([line('usage', '10.00')])).toBeUndefined();
  });

  it('is less its share of the discount and of the credit notes together', () => {
    const discounted = [line('subscription', '100.00'), line('discount', '-10.00')];
    expect(paid(discounted)).toBe('90.00');
    // 45.00 of the 90.00 paid credited back: half of what was paid is left.
    expect(paid(discounted, [[null, '45.00']])).toBe('45.00');
    expect(paid(discounted, [[null, '90.00']])).toBe('0.00');
    expect(paid(discounted, [[0, '90.00']])).toBe('0.00');
  });

  it("is less the credit notes: the price line's whole, the invoice's from its charges in proportion", () => {
    expect(paid([line('subscription', '100.00')], [[null, '100.00']])).toBe('0.00');
    expect(paid([line('subscription', '20.00'), line('usage', '30.00')], [[null, '10.00']])).toBe('16.00');
    expect(paid([line('subscription', '20.00'), line('usage', '30.00')], [[1, '30.00']])).toBe('20.00');
    expect(paid([line('usage', '30.00'), line('subscription', '20.00')], [[1, '5.00']])).toBe('15.00');
    // A credit note of the whole subtotal gives back the money paid, not the credit that paid
    // the rest: 20.32 of the charges' 100.65 is still paid, 12.11 of it for the price.
    const prorated = [line('subscription', '60.00'), line('proration', '-20.32'), line('proration', '40.65')];
    expect(paid(prorated, [[null, '80.33']])).toBe('12.11');
    expect(paid(prorated, [[null, '40.00']])).toBe('36.15');
    // A credit note of an invoice mostly paid by a credit takes back only the money: 0.97 of the
    // charges' 59.03, the price keeps 58.06 / 59.03 of its 30.00.
    const mostlyCredited = [
      line('subscription', '30.00'),
      line('proration', '-58.06'),
      line('proration', '29.03'),
    ];
    expect(paid(mostlyCredited, [[null, '0.97']])).toBe('29.51');
    // Never below zero.
    expect(paid([line('subscription', '20.00'), line('discount', '-10.00')], [[0, '15.00']])).toBe('0.00');
  });
});
