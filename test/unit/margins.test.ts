// Margins from exact sums (src/billing/margins.ts): examples at the edges of rounding and sign, and
// a property checked against a rational comparison in BigInt.
import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { formatSum, marginFigures, marginPercent, parseSum } from '../../src/billing/margins.js';

describe('margin figures', () => {
  it('reads numeric text with up to four decimals, trailing zeros or none, and writes four', () => {
    expect(
      ['0', '12.34', '1.230000', '-0.0005', '99999999999999999999.9999'].map((t) => formatSum(parseSum(t))),
    ).toEqual(['0.0000', '12.3400', '1.2300', '-0.0005', '99999999999999999999.9999']);
    expect(() => parseSum('0.00001')).toThrow(RangeError);
    expect(() => parseSum('1e3')).toThrow(RangeError);
  });

  it('computes margin and percentage exactly, half away from zero, null without revenue', () => {
    expect(marginFigures({ revenue: '20.00', cost: '45', unbilled_cost: '1.5' })).toEqual({
      revenue: '20.0000',
      cost: '45.0000',
      margin: '-25.0000',
      margin_percent: '-125.00',
      unbilled_cost: '1.5000',
    });
    expect(marginPercent(1n, 8n)).toBe('12.50'); // exactly 12.5 %
    expect(marginPercent(1n, 80_000n)).toBe('0.00'); // 0.00125 %
    expect(marginPercent(1n, 20_000n)).toBe('0.01'); // 0.005 %: a tie, up
    expect(marginPercent(-1n, 20_000n)).toBe('-0.01'); // a tie, away from zero
    expect(marginPercent(-1n, 20_001n)).toBe('0.00'); // just under the tie
    expect(marginPercent(-1n, 80_000n)).toBe('0.00'); // never "-0.00"
    expect(marginPercent(-5n, 0n)).toBeNull();
  });

  test.prop([fc.bigInt({ min: -(10n ** 20n), max: 10n ** 20n }), fc.bigInt({ min: 1n, max: 10n ** 20n })])(
    'rounds 100 × margin / revenue to the nearest hundredth, ties away from zero',
    (margin, revenue) => {
      const text = marginPercent(margin, revenue)!;
      const shown = BigInt(text.replace('.', '')); // hundredths of a percent
      // |shown − 10,000 × margin / revenue| ≤ 1/2, with ties away from zero: compare in integers.
      const twice = 2n * (shown * revenue - 10_000n * margin); // 2 × revenue × error
      expect(twice <= revenue && twice >= -revenue).toBe(true);
      if (twice === revenue) expect(margin > 0n).toBe(true); // a tie went up: only for a gain
      if (twice === -revenue) expect(margin < 0n).toBe(true); // went down: only for a loss
    },
  );
});
