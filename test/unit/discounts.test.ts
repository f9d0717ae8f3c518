import { describe, expect, it } from 'vitest';
import { discountEnd, discountFirstDay, discountFor, discountLabel } from '../../src/billing/discounts.js';
import { parseAmount } from '../../src/billing/money.js';
import type { Discount } from '../../src/database/schema.js';

const discount = (over: Partial<Discount> = {}): Discount => ({
  coupon_id: 'c',
  name: 'Launch',
  percent_off: '25.00',
  amount_off: null,
  duration: 'repeating',
  duration_in_months: 3,
  plan_ids: [],
  start: '2026-01-31T10:00:00.000Z',
  end: '2026-04-30T00:00:00.000Z',
  ...over,
});
const at = (iso: string) => new Date(iso);

describe('discountEnd', () => {
  it('is 00:00 UTC of the first day, months later, clamped to the month end', () => {
    expect(discountEnd('2026-01-31', 1).toISOString()).toBe('2026-02-28T00:00:00.000Z');
    expect(discountEnd('2028-01-31', 1).toISOString()).toBe('2028-02-29T00:00:00.000Z');
    expect(discountEnd('2026-11-15', 3).toISOString()).toBe('2027-02-15T00:00:00.000Z');
  });
});

describe('discountFirstDay', () => {
  it('is the next period to invoice, begun or not; during a trial, the day applied or the trial start', () => {
    // Mid-period: the next period's start, so a 1-month coupon applied on January 31st to a
    // subscription billed on the 30th reaches the February 28th invoice.
    expect(discountFirstDay('2026-01-31', '2026-02-28', null)).toBe('2026-02-28');
    expect(discountEnd(discountFirstDay('2026-01-31', '2026-02-28', null), 1).toISOString()).toBe(
      '2026-03-28T00:00:00.000Z',
    );
    // Backdated: the first period, begun before the day applied. Starting later: its start.
    expect(discountFirstDay('2026-01-10', '2026-01-01', null)).toBe('2026-01-01');
    expect(discountFirstDay('2026-01-10', '2026-02-15', null)).toBe('2026-02-15');
    // A trial uses months up: from the day applied, or from its start when that is later.
    expect(discountFirstDay('2026-01-10', '2026-01-15', '2026-01-01')).toBe('2026-01-10');
    expect(discountFirstDay('2026-01-10', '2026-03-01', '2026-02-01')).toBe('2026-02-01');
    // Nothing left to invoice: the day applied.
    expect(discountFirstDay('2026-01-10', null, null)).toBe('2026-01-10');
    // Paused until a day: the period the resume falls in, not the next renewal (which it skips).
    expect(discountFirstDay('2026-02-10', '2026-03-01', null, '2026-04-01')).toBe('2026-04-01');
    expect(discountFirstDay('2026-02-10', '2026-03-01', null, '2026-03-01')).toBe('2026-03-01');
  });

  it('ends with the calendar when its months run past 9999-12-31', () => {
    expect(discountEnd('9990-06-30', 120).toISOString()).toBe('9999-12-31T00:00:00.000Z');
    expect(discountEnd('9999-11-15', 1).toISOString()).toBe('9999-12-15T00:00:00.000Z');
  });
});

describe('discountFor', () => {
  const subtotal = parseAmount('33.33');
  it('takes a percentage half up to the cent, and an amount at most the subtotal', () => {
    expect(
      discountFor(
        discount({ percent_off: '15.00' }),
        null,
        '2026-02-28',
        at('2026-02-28T00:00:00Z'),
        subtotal,
      ),
    ).toEqual({
      kind: 'applies',
      amount: parseAmount('5.00'),
    });
    const amountOff = discount({ percent_off: null, amount_off: '50.00', end: null, duration: 'forever' });
    expect(discountFor(amountOff, null, '2030-01-01', at('2030-01-01T00:00:00Z'), subtotal)).toEqual({
      kind: 'applies',
      amount: subtotal,
    });
  });
  it('runs from its start to the periods starting before its end, for its plans only', () => {
    const d = discount({ plan_ids: ['p1'] });
    expect(discountFor(d, 'p1', '2026-01-31', at('2026-01-31T09:00:00Z'), subtotal).kind).toBe('none');
    expect(discountFor(d, 'p1', '2026-04-29', at('2026-04-29T00:00:00Z'), subtotal).kind).toBe('applies');
    expect(discountFor(d, 'p1', '2026-04-30', at('2026-04-30T00:00:00Z'), subtotal).kind).toBe('ended');
    expect(discountFor(d, 'p2', '2026-03-01', at('2026-03-01T00:00:00Z'), subtotal).kind).toBe(
      'not-for-plan',
    );
    expect(discountFor(d, null, '2026-03-01', at('2026-03-01T00:00:00Z'), subtotal).kind).toBe(
      'not-for-plan',
    );
    expect(discountFor(null, 'p1', '2026-03-01', at('2026-03-01T00:00:00Z'), subtotal).kind).toBe('none');
  });
  it('labels its line', () => {
    expect(discountLabel(discount({ percent_off: '12.50' }))).toBe('Launch (12.5% off)');
    expect(discountLabel(discount({ percent_off: '100.00' }))).toBe('Launch (100% off)');
    expect(discountLabel(discount({ percent_off: null, amount_off: '10' }))).toBe('Launch (10.00 off)');
  });
});
