// Server-side prices and invoice amounts: every price model at every tier boundary, exact
// decimals, and the rounding rule on awkward values.
import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { invoiceAmounts } from '../../src/billing/invoices.js';
import { formatCents, parseAmount, percentOf } from '../../src/billing/money.js';
import { type Price, priceErrors, quote } from '../../src/billing/pricing.js';

const tiers = [
  { up_to: 10, unit_amount: '5.00', flat_amount: '0' },
  { up_to: 100, unit_amount: '4.00', flat_amount: '10.00' },
  { up_to: null, unit_amount: '3.5', flat_amount: '0' },
];

describe('quote', () => {
  it('charges a flat price whatever the quantity, and per unit by quantity', () => {
    expect(quote({ model: 'flat', amount: '49.99' }, 7)).toMatchObject({ amount: '49.99' });
    expect(quote({ model: 'per_unit', amount: '0.0025' }, 1001)).toMatchObject({ amount: '2.50' }); // 2.5025 → 2.50
    expect(quote({ model: 'per_unit', amount: '0.0025' }, 1002)).toMatchObject({ amount: '2.51' }); // 2.5050 → 2.51 (half up)
  });

  it('prices graduated tiers unit by unit, at each boundary', () => {
    const price: Price = { model: 'tiered', tiers };
    expect(quote(price, 1).amount).toBe('5.00');
    expect(quote(price, 10).amount).toBe('50.00');
    expect(quote(price, 11).amount).toBe('64.00'); // 50 + (4 + 10 flat)
    expect(quote(price, 100).amount).toBe('420.00'); // 50 + 90 × 4 + 10
    expect(quote(price, 101)).toEqual({
      amount: '423.50',
      breakdown: [
        { tier: 1, quantity: 10, unit_amount: '5.0000', flat_amount: '0.0000', amount: '50.0000' },
        { tier: 2, quantity: 90, unit_amount: '4.0000', flat_amount: '10.0000', amount: '370.0000' },
        { tier: 3, quantity: 1, unit_amount: '3.5000', flat_amount: '0.0000', amount: '3.5000' },
      ],
    });
  });

  it('prices all units at the tier the volume reaches, at each boundary', () => {
    const price: Price = { model: 'volume', tiers };
    expect(quote(price, 10).amount).toBe('50.00');
    expect(quote(price, 11).amount).toBe('54.00'); // 11 × 4 + 10
    expect(quote(price, 100).amount).toBe('410.00');
    expect(quote(price, 101).amount).toBe('353.50'); // 101 × 3.5
  });

  test.prop([fc.integer({ min: 1, max: 100_000 })])(
    'graduated breakdowns cover every unit once',
    (quantity) => {
      const { breakdown } = quote({ model: 'tiered', tiers }, quantity);
      expect(breakdown.reduce((n, l) => n + l.quantity, 0)).toBe(quantity);
      const exact = breakdown.reduce((sum, l) => sum + parseAmount(l.amount), 0n);
      expect(quote({ model: 'tiered', tiers }, quantity).amount).toBe(formatCents(exact));
    },
  );
});

describe('priceErrors', () => {
  it('refuses tiers that are not contiguous, not increasing, or not open at the end', () => {
    expect(priceErrors({ model: 'tiered', tiers })).toEqual([]);
    expect(priceErrors({ model: 'tiered', tiers: [] }).map((e) => e.field)).toEqual(['/tiers']);
    expect(
      priceErrors({ model: 'volume', tiers: [{ up_to: 10, unit_amount: '1', flat_amount: '0' }] }).map(
        (e) => e.field,
      ),
    ).toEqual(['/tiers/0/up_to']);
    expect(
      priceErrors({
        model: 'tiered',
        tiers: [
          { up_to: 10, unit_amount: '1', flat_amount: '0' },
          { up_to: 10, unit_amount: '1', flat_amount: '0' },
          { up_to: null, unit_amount: '1', flat_amount: '0' },
        ],
      }).map((e) => e.field),
    ).toEqual(['/tiers/1/up_to']);
    expect(priceErrors({ model: 'flat', amount: null }).map((e) => e.field)).toEqual(['/amount']);
    expect(priceErrors({ model: 'per_unit', amount: '1', tiers }).map((e) => e.field)).toEqual(['/tiers']);
  });
});

describe('invoice amounts', () => {
  const line = {
    type: 'subscription' as const,
    quantity: 1,
    breakdown: [],
    period_start: '2026-01-01',
    period_end: '2026-02-01',
    usage: null,
  };
  it('rounds each line and each tax half up to the cent, on the subtotal', () => {
    const amounts = invoiceAmounts(
      [
        { ...line, description: 'a', amount: '10.005' },
        { ...line, description: 'b', amount: '0.004' },
      ],
      [
        { id: 'r1', code: 'VAT', name: 'VAT', percentage: '19', region: 'DE' },
        { id: 'r2', code: 'X', name: 'Odd', percentage: '8.8750', region: 'DE' },
      ],
    );
    expect(amounts.lines.map((l) => l.amount)).toEqual(['10.01', '0.00']);
    expect(amounts.subtotal).toBe('10.01');
    expect(amounts.taxes.map((t) => t.amount)).toEqual(['1.90', '0.89']); // 1.9019, 0.8883875
    expect(amounts.tax_total).toBe('2.79');
    expect(amounts.total).toBe('12.80');
  });

  it('computes exact percentages of large amounts', () => {
    expect(formatCents(percentOf(parseAmount('9999999999.99'), '19.0000'))).toBe('1900000000.00');
    expect(formatCents(percentOf(parseAmount('0.05'), '10'))).toBe('0.01'); // 0.005 → 0.01
    // Rounded once: 0.00495 is below half a cent (rounding to 0.0050 first would give 0.01).
    expect(formatCents(percentOf(parseAmount('0.99'), '0.5'))).toBe('0.00');
    expect(formatCents(percentOf(parseAmount('1.00'), '0.5'))).toBe('0.01'); // exactly 0.005: up
  });

  it('writes a negative amount with a leading minus, rounded half away from zero', () => {
    // Seen in a refusal's detail as "0.-49" and "-1.-99".
    expect(formatCents(-5_000n)).toBe('-0.50');
    expect(formatCents(-4_950n)).toBe('-0.50'); // -0.495: half away from zero
    expect(formatCents(-19_900n)).toBe('-1.99');
    expect(formatCents(-1_234_567n)).toBe('-123.46');
    expect(formatCents(5_000n)).toBe('0.50');
  });
});
