// Each usage line's share of an invoice's discount (billing/discounts.ts, usageShares): what
// prepaid credits may not pay of it. The shares add up to the usage's part of the discount,
// rounded up to the cent, never more, whatever the number of lines.
import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { usageShares } from '../../src/billing/discounts.js';
import { parseAmount } from '../../src/billing/money.js';

const usage = (amount: string) => ({ type: 'usage', amount });

describe('usageShares', () => {
  it('splits 10% of five lines of 0.05 (0.03) in whole cents that add up to it', () => {
    const lines = Array.from({ length: 5 }, () => usage('0.05'));
    const shares = usageShares(lines, parseAmount('0.03'), parseAmount('0.25'));
    expect([...shares.values()].reduce((a, b) => a + b, 0n)).toBe(parseAmount('0.03'));
    expect([...shares.values()].every((s) => s % 100n === 0n)).toBe(true);
  });

  it("takes the usage's part of a discount on the price and usage together", () => {
    // 17.00 charged, 1.70 off: the 7.00 of usage bears 0.70.
    const lines = [{ type: 'subscription', amount: '10.00' }, usage('7.00')];
    expect(usageShares(lines, parseAmount('1.70'), parseAmount('17.00'))).toEqual(new Map([[1, 7000n]]));
  });

  test.prop([
    fc.array(fc.integer({ min: 0, max: 100_000 }), { minLength: 1, maxLength: 12 }),
    fc.integer({ min: 0, max: 100_000 }),
    fc.integer({ min: 0, max: 100 }),
  ])('add up to the usage part rounded up to the cent, each within its line', (cents, price, percent) => {
    const lines = [
      { type: 'subscription', amount: (price / 100).toFixed(2) },
      ...cents.map((c) => usage((c / 100).toFixed(2))),
    ];
    const charged = BigInt(price + cents.reduce((a, b) => a + b, 0)) * 100n;
    const discounted = ((charged * BigInt(percent)) / 100n / 100n) * 100n;
    const shares = usageShares(lines, discounted, charged);
    const total = BigInt(cents.reduce((a, b) => a + b, 0)) * 100n;
    const sum = [...shares.values()].reduce((a, b) => a + b, 0n);
    if (discounted === 0n || charged === 0n || total === 0n) expect(sum).toBe(0n);
    else {
      const exact = (discounted * total + charged - 1n) / charged;
      const up = ((exact + 99n) / 100n) * 100n;
      expect(sum).toBe(up < total ? up : total);
    }
    for (const [index, share] of shares) {
      expect(share % 100n).toBe(0n);
      expect(share <= parseAmount(lines[index]!.amount)).toBe(true);
    }
  });
});
