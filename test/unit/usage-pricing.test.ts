// Usage charges: every model on decimal quantities, free units, minimums and the once-only rounding
// of the total, checked on examples and against an independent BigInt computation.
import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { formatMicros, parseAmount } from '../../src/billing/money.js';
import {
  formatExact,
  formatQuantity,
  parseQuantity,
  priceUsage,
  usageAmountBound,
  type UsagePrice,
  usagePriceErrors,
  type UsageTier,
} from '../../src/billing/usage-pricing.js';

const tiers: UsageTier[] = [
  { up_to: 10, unit_amount: '5.00', flat_amount: '0' },
  { up_to: 100, unit_amount: '4.00', flat_amount: '10.00' },
  { up_to: null, unit_amount: '3.5', flat_amount: '0' },
];

const fields = (price: UsagePrice) => usagePriceErrors(price).map((e) => e.field);

/** Reads a breakdown amount back (1/10^10 units), insisting on its format: 4 to 10 places, no extra zeros. */
const parseExact = (text: string): bigint => {
  const match = /^(\d+)\.(\d{4}(?:\d{0,5}[1-9])?)$/.exec(text);
  if (!match) throw new Error(`not an exact amount: ${text}`);
  return BigInt(match[1]!) * 10n ** 10n + BigInt(match[2]!.padEnd(10, '0'));
};

/** Half-up cents of an exact amount, written without the module's helpers. */
const centsText = (exact: bigint): string => {
  const cents = (exact + 50_000_000n) / 100_000_000n;
  return `${cents / 100n}.${String(cents % 100n).padStart(2, '0')}`;
};

/** A quantity string with its millionths, built independently of parseQuantity. */
const quantityArb = (maxWhole: bigint) =>
  fc
    .record({ whole: fc.bigInt({ min: 0n, max: maxWhole }), fraction: fc.stringMatching(/^[0-9]{0,6}$/) })
    .map(({ whole, fraction }) => ({
      text: fraction === '' ? String(whole) : `${whole}.${fraction}`,
      millionths: whole * 1_000_000n + BigInt(fraction.padEnd(6, '0')),
    }));

const amountArb = fc.bigInt({ min: 0n, max: 100_000_000n }).map(formatMicros); // up to 10,000.0000

const tiersArb: fc.Arbitrary<UsageTier[]> = fc
  .uniqueArray(fc.integer({ min: 1, max: 1_000 }), { maxLength: 5 })
  .chain((ups) => {
    const bounds = [...ups].sort((a, b) => a - b);
    return fc
      .array(fc.tuple(amountArb, amountArb), { minLength: bounds.length + 1, maxLength: bounds.length + 1 })
      .map((amounts) =>
        amounts.map(([unit_amount, flat_amount], i) => ({
          up_to: bounds[i] ?? null,
          unit_amount,
          flat_amount,
        })),
      );
  });

describe('parseQuantity and formatQuantity', () => {
  it('read decimals with up to six places and write them without trailing zeros', () => {
    expect(parseQuantity('12.5')).toBe(12_500_000n);
    expect(parseQuantity('0.000001')).toBe(1n);
    expect(parseQuantity('007.500')).toBe(7_500_000n);
    expect(parseQuantity('999999999999999999.999999')).toBe(10n ** 24n - 1n);
    expect(formatQuantity(12_500_000n)).toBe('12.5');
    expect(formatQuantity(3_000_000n)).toBe('3');
    expect(formatQuantity(1n)).toBe('0.000001');
    expect(formatQuantity(0n)).toBe('0');
    expect(formatQuantity(parseQuantity('007.500'))).toBe('7.5');
  });

  it.each([
    '',
    '-1',
    '+1',
    '1e3',
    '1E3',
    '1.0000001',
    '.5',
    '1.',
    ' 1',
    '1 ',
    '1,5',
    '0x10',
    'NaN',
    'Infinity',
    '1234567890123456789',
  ])('rejects %j', (text) => {
    expect(() => parseQuantity(text)).toThrow(RangeError);
  });

  it('rejects non-strings and negative millionths', () => {
    expect(() => parseQuantity(5 as unknown as string)).toThrow(RangeError);
    expect(() => formatQuantity(-1n)).toThrow(RangeError);
  });

  test.prop([fc.bigInt({ min: 0n, max: 10n ** 24n - 1n })])('round-trip exactly', (millionths) => {
    expect(parseQuantity(formatQuantity(millionths))).toBe(millionths);
  });
});

describe('formatExact', () => {
  it('writes four to ten places, trimming zeros only past the fourth', () => {
    expect(formatExact(0n)).toBe('0.0000');
    expect(formatExact(12_500_000_000n)).toBe('1.2500');
    expect(formatExact(30_000_000_000n)).toBe('3.0000');
    expect(formatExact(125_000n)).toBe('0.0000125');
    expect(formatExact(1n)).toBe('0.0000000001');
    expect(() => formatExact(-1n)).toThrow(RangeError);
  });
});

describe('priceUsage', () => {
  it('prices per unit and rounds the total once, half up', () => {
    const price = (amount: string): UsagePrice => ({ model: 'per_unit', amount });
    expect(priceUsage(price('0.0025'), '3')).toEqual({
      quantity: '3',
      billable_quantity: '3',
      amount: '0.01', // 0.0075 → 0.01
      breakdown: [
        {
          kind: 'unit',
          tier: null,
          quantity: '3',
          unit_amount: '0.0025',
          flat_amount: '0.0000',
          amount: '0.0075',
        },
      ],
    });
    expect(priceUsage(price('0.0049'), '1').amount).toBe('0.00');
    expect(priceUsage(price('0.0025'), '2').amount).toBe('0.01'); // exactly 0.005: up
    expect(priceUsage(price('0.0025'), '2.5').breakdown[0]!.amount).toBe('0.00625');
    expect(priceUsage(price('0.0001'), '0.000001').breakdown[0]!.amount).toBe('0.0000000001');
    // Rounded once: 0.0049999992 is below half a cent (0.0050 at four places would give 0.01).
    expect(priceUsage(price('0.0049'), '1.020408').amount).toBe('0.00');
    expect(priceUsage(price('1.00'), '0')).toMatchObject({
      amount: '0.00',
      breakdown: [{ kind: 'unit', quantity: '0', amount: '0.0000' }],
    });
  });

  it('splits graduated decimal quantities across tier boundaries', () => {
    const price: UsagePrice = { model: 'graduated', tiers };
    expect(priceUsage(price, '12.5')).toEqual({
      quantity: '12.5',
      billable_quantity: '12.5',
      amount: '70.00', // 10 × 5 + (2.5 × 4 + 10)
      breakdown: [
        {
          kind: 'tier',
          tier: 1,
          quantity: '10',
          unit_amount: '5.0000',
          flat_amount: '0.0000',
          amount: '50.0000',
        },
        {
          kind: 'tier',
          tier: 2,
          quantity: '2.5',
          unit_amount: '4.0000',
          flat_amount: '10.0000',
          amount: '20.0000',
        },
      ],
    });
    expect(priceUsage(price, '10').breakdown).toHaveLength(1); // (0, 10] is all tier 1: no flat 10
    expect(priceUsage(price, '10.000001').breakdown[1]).toMatchObject({
      quantity: '0.000001',
      amount: '10.000004',
    });
    expect(priceUsage(price, '100.5').amount).toBe('421.75'); // 50 + 370 + 0.5 × 3.5
    expect(priceUsage(price, '0')).toMatchObject({ amount: '0.00', breakdown: [] });
  });

  it('prices every volume unit at the tier the whole quantity reaches', () => {
    const price: UsagePrice = { model: 'volume', tiers };
    expect(priceUsage(price, '10').amount).toBe('50.00');
    expect(priceUsage(price, '10.5')).toMatchObject({
      amount: '52.00', // 10.5 × 4 + 10
      breakdown: [{ kind: 'tier', tier: 2, quantity: '10.5', amount: '52.0000' }],
    });
    expect(priceUsage(price, '100.000001')).toMatchObject({
      amount: '350.00', // 350.0000035
      breakdown: [{ tier: 3, amount: '350.0000035' }],
    });
    expect(priceUsage(price, '0')).toMatchObject({ amount: '0.00', breakdown: [] });
  });

  it('bills whole packages, rounding a started package up', () => {
    const price: UsagePrice = { model: 'package', amount: '2.50', package_size: 10 };
    expect(priceUsage(price, '10').breakdown).toEqual([
      {
        kind: 'package',
        tier: null,
        quantity: '1',
        unit_amount: '2.5000',
        flat_amount: '0.0000',
        amount: '2.5000',
      },
    ]);
    expect(priceUsage(price, '10.000001')).toMatchObject({
      amount: '5.00',
      breakdown: [{ quantity: '2', amount: '5.0000' }],
    });
    expect(priceUsage(price, '0.000001').amount).toBe('2.50');
    expect(priceUsage(price, '0')).toMatchObject({
      amount: '0.00',
      breakdown: [{ kind: 'package', quantity: '0', amount: '0.0000' }],
    });
  });

  it('subtracts free units first and shows them on a line of their own', () => {
    const graduated: UsagePrice = { model: 'graduated', tiers, free_units: '5' };
    expect(priceUsage(graduated, '12.5')).toMatchObject({
      quantity: '12.5',
      billable_quantity: '7.5',
      amount: '37.50',
      breakdown: [
        {
          kind: 'free',
          tier: null,
          quantity: '5',
          unit_amount: '0.0000',
          flat_amount: '0.0000',
          amount: '0.0000',
        },
        { kind: 'tier', tier: 1, quantity: '7.5', amount: '37.5000' },
      ],
    });
    const perUnit: UsagePrice = { model: 'per_unit', amount: '1', free_units: '100' };
    expect(priceUsage(perUnit, '40.5')).toMatchObject({
      billable_quantity: '0',
      amount: '0.00',
      breakdown: [
        { kind: 'free', quantity: '40.5' },
        { kind: 'unit', quantity: '0', amount: '0.0000' },
      ],
    });
    const packaged: UsagePrice = { model: 'package', amount: '1', package_size: 10, free_units: '0.5' };
    expect(priceUsage(packaged, '10.5').breakdown[1]).toMatchObject({ quantity: '1' }); // 10 billable
    expect(priceUsage({ model: 'per_unit', amount: '1', free_units: '0' }, '2').breakdown).toHaveLength(1);
  });

  it('makes up a minimum, also when nothing was used', () => {
    const price: UsagePrice = { model: 'per_unit', amount: '0.0025', minimum_amount: '5.00' };
    expect(priceUsage(price, '0')).toMatchObject({
      amount: '5.00',
      breakdown: [
        { kind: 'unit', quantity: '0', amount: '0.0000' },
        {
          kind: 'minimum',
          tier: null,
          quantity: '1',
          unit_amount: '0.0000',
          flat_amount: '5.0000',
          amount: '5.0000',
        },
      ],
    });
    expect(priceUsage(price, '1001').breakdown[1]).toMatchObject({ kind: 'minimum', amount: '2.4975' });
    expect(priceUsage(price, '2000').breakdown).toHaveLength(1); // exactly 5.00: nothing to make up
    expect(priceUsage(price, '3000').amount).toBe('7.50');
    // The difference is exact, however many places the usage left.
    const tiny: UsagePrice = { model: 'per_unit', amount: '0.0001', minimum_amount: '1' };
    expect(priceUsage(tiny, '0.5').breakdown[1]).toMatchObject({
      flat_amount: '0.99995',
      amount: '0.99995',
    });
    expect(priceUsage({ model: 'graduated', tiers, minimum_amount: '0.01' }, '0')).toMatchObject({
      amount: '0.01',
      breakdown: [{ kind: 'minimum' }],
    });
  });

  it('refuses invalid prices and quantities', () => {
    expect(() => priceUsage({ model: 'per_unit' }, '1')).toThrow(RangeError);
    expect(() => priceUsage({ model: 'per_unit', amount: '1' }, '-1')).toThrow(RangeError);
    expect(() => priceUsage({ model: 'per_unit', amount: '1' }, '1e3')).toThrow(RangeError);
  });

  test.prop([quantityArb(10n ** 12n), amountArb, fc.option(quantityArb(10n ** 6n), { nil: undefined })])(
    'per unit matches an independent BigInt computation',
    (quantity, amount, free) => {
      const price: UsagePrice = { model: 'per_unit', amount, free_units: free?.text ?? null };
      const billable = quantity.millionths - (free?.millionths ?? 0n);
      const exact = (billable > 0n ? billable : 0n) * parseAmount(amount);
      const result = priceUsage(price, quantity.text);
      expect(result.amount).toBe(centsText(exact));
      expect(parseExact(result.breakdown.at(-1)!.amount)).toBe(exact);
    },
  );

  test.prop([tiersArb, quantityArb(2_000n), quantityArb(2_000n)])(
    'graduated totals never decrease as usage grows',
    (tiers, a, b) => {
      const [low, high] = a.millionths <= b.millionths ? [a, b] : [b, a];
      const price: UsagePrice = { model: 'graduated', tiers };
      expect(usagePriceErrors(price)).toEqual([]);
      const lowTotal = parseAmount(priceUsage(price, low.text).amount);
      expect(parseAmount(priceUsage(price, high.text).amount)).toBeGreaterThanOrEqual(lowTotal);
    },
  );

  test.prop([tiersArb, quantityArb(2_000n), fc.option(quantityArb(100n), { nil: undefined })])(
    'graduated tier lines cover the billable quantity exactly once',
    (tiers, quantity, free) => {
      const result = priceUsage({ model: 'graduated', tiers, free_units: free?.text ?? null }, quantity.text);
      const billable = quantity.millionths - (free?.millionths ?? 0n);
      const covered = result.breakdown
        .filter((l) => l.kind === 'tier')
        .reduce((sum, l) => sum + parseQuantity(l.quantity), 0n);
      expect(covered).toBe(billable > 0n ? billable : 0n);
      expect(parseQuantity(result.billable_quantity)).toBe(covered);
      // And the total is the exact sum of the lines, rounded once.
      expect(result.amount).toBe(centsText(result.breakdown.reduce((s, l) => s + parseExact(l.amount), 0n)));
    },
  );

  test.prop([
    quantityArb(10n ** 9n),
    amountArb,
    fc.option(quantityArb(1_000n), { nil: undefined }),
    fc.option(fc.constantFrom('0', '0.01', '25', '9999999999.99'), { nil: undefined }),
  ])('graduated with one open tier is per unit', (quantity, amount, free, minimum) => {
    const common = { free_units: free?.text ?? null, minimum_amount: minimum ?? null };
    const graduated = priceUsage(
      { model: 'graduated', tiers: [{ up_to: null, unit_amount: amount, flat_amount: '0' }], ...common },
      quantity.text,
    );
    const perUnit = priceUsage({ model: 'per_unit', amount, ...common }, quantity.text);
    expect(graduated.amount).toBe(perUnit.amount);
    expect(graduated.billable_quantity).toBe(perUnit.billable_quantity);
  });
});

describe('usageAmountBound', () => {
  const priceArb: fc.Arbitrary<UsagePrice> = fc
    .record({
      model: fc.constantFrom('per_unit', 'package', 'graduated', 'volume'),
      amount: amountArb,
      package_size: fc.integer({ min: 1, max: 10_000 }),
      tiers: tiersArb,
      free_units: fc.option(quantityArb(1_000n), { nil: undefined }),
      minimum_amount: fc.option(fc.constantFrom('0', '0.01', '25', '9999999999.99'), { nil: undefined }),
    })
    .map(({ model, amount, package_size, tiers: t, free_units, minimum_amount }) => ({
      model,
      amount: model === 'per_unit' || model === 'package' ? amount : null,
      package_size: model === 'package' ? package_size : null,
      tiers: model === 'graduated' || model === 'volume' ? t : null,
      free_units: free_units?.text ?? null,
      minimum_amount: minimum_amount ?? null,
    }));

  test.prop([priceArb, quantityArb(10n ** 12n)])(
    'is never below the exact sum, so a total under it is under any limit it is checked against',
    (price, quantity) => {
      const bound = usageAmountBound(price, quantity.millionths);
      const { breakdown, amount } = priceUsage(price, quantity.text);
      expect(breakdown.reduce((s, l) => s + parseExact(l.amount), 0n)).toBeLessThanOrEqual(bound);
      // The rounded amount exceeds the bound by at most half a cent (half up: 0.0050 rounds up;
      // a run found 760933142850 units at 3691.5693, ...574.5050 billed as ...574.51).
      expect(parseAmount(amount) * 1_000_000n).toBeLessThanOrEqual(bound + 50_000_000n);
    },
  );

  it('is exceeded by the rounded amount by half a cent at most, reached exactly at a half', () => {
    const price = { model: 'per_unit', amount: '3691.5693' } as const;
    const bound = usageAmountBound(price, 760_933_142_850_000_000n);
    expect(priceUsage(price, '760933142850').amount).toBe('2809037429497574.51');
    expect(parseAmount('2809037429497574.51') * 1_000_000n).toBe(bound + 50_000_000n);
  });

  it('is the quantity at the largest unit price plus every flat amount and the minimum', () => {
    expect(usageAmountBound({ model: 'per_unit', amount: '0.5' }, 3_000_000n)).toBe(15_000_000_000n);
    expect(
      usageAmountBound({ model: 'graduated', tiers, minimum_amount: '1' }, 20_000_000n),
      // 20 units at 5.00, flat 10.00, minimum 1.00: 111.00.
    ).toBe(1_110_000_000_000n);
    expect(usageAmountBound({ model: 'package', amount: '2', package_size: 10 }, 25_000_000n)).toBe(
      // 25 × 2 + 2: a loose bound (the exact price is 3 packages, 6.00).
      520_000_000_000n,
    );
  });
});

describe('usagePriceErrors', () => {
  it('accepts valid prices of every model', () => {
    expect(
      fields({ model: 'per_unit', amount: '0.0025', free_units: '1000.5', minimum_amount: '5' }),
    ).toEqual([]);
    expect(fields({ model: 'package', amount: '2.50', package_size: 1 })).toEqual([]);
    expect(fields({ model: 'graduated', tiers, minimum_amount: '9999999999.99' })).toEqual([]);
    expect(fields({ model: 'volume', tiers: [{ up_to: null, unit_amount: '1', flat_amount: '0' }] })).toEqual(
      [],
    );
  });

  it('requires the amount exactly where the model uses it', () => {
    expect(fields({ model: 'per_unit' })).toEqual(['/amount']);
    expect(fields({ model: 'package', package_size: 10, amount: null })).toEqual(['/amount']);
    expect(fields({ model: 'per_unit', amount: '1.00001' })).toEqual(['/amount']);
    expect(fields({ model: 'per_unit', amount: '-1' })).toEqual(['/amount']);
    expect(fields({ model: 'graduated', tiers, amount: '1' })).toEqual(['/amount']);
    expect(fields({ model: 'bulk' as UsagePrice['model'] })).toEqual(['/model']);
  });

  it('requires an integer package size of at least 1, on packages only', () => {
    expect(fields({ model: 'package', amount: '1' })).toEqual(['/package_size']);
    expect(fields({ model: 'package', amount: '1', package_size: 0 })).toEqual(['/package_size']);
    expect(fields({ model: 'package', amount: '1', package_size: 2.5 })).toEqual(['/package_size']);
    expect(fields({ model: 'per_unit', amount: '1', package_size: 10 })).toEqual(['/package_size']);
    expect(fields({ model: 'volume', tiers, package_size: 10 })).toEqual(['/package_size']);
  });

  it('requires contiguous, increasing, open-ended tiers on tiered models only', () => {
    const tier = (up_to: number | null): UsageTier => ({ up_to, unit_amount: '1', flat_amount: '0' });
    expect(fields({ model: 'graduated' })).toEqual(['/tiers']);
    expect(fields({ model: 'volume', tiers: [] })).toEqual(['/tiers']);
    const many = [...Array.from({ length: 50 }, (_, i) => tier(i + 1)), tier(null)];
    expect(fields({ model: 'graduated', tiers: many })).toEqual(['/tiers']);
    expect(fields({ model: 'graduated', tiers: many.slice(1) })).toEqual([]);
    expect(fields({ model: 'volume', tiers: [tier(10)] })).toEqual(['/tiers/0/up_to']);
    expect(fields({ model: 'graduated', tiers: [tier(10), tier(10), tier(null)] })).toEqual([
      '/tiers/1/up_to',
    ]);
    expect(fields({ model: 'graduated', tiers: [tier(null), tier(null)] })).toEqual(['/tiers/0/up_to']);
    expect(fields({ model: 'graduated', tiers: [tier(0), tier(null)] })).toEqual(['/tiers/0/up_to']);
    expect(fields({ model: 'graduated', tiers: [tier(2.5), tier(null)] })).toEqual(['/tiers/0/up_to']);
    expect(
      fields({
        model: 'volume',
        tiers: [
          { up_to: 10, unit_amount: '1.00001', flat_amount: '0' },
          { up_to: null, unit_amount: '1', flat_amount: '-1' },
        ],
      }),
    ).toEqual(['/tiers/0/unit_amount', '/tiers/1/flat_amount']);
    expect(fields({ model: 'per_unit', amount: '1', tiers })).toEqual(['/tiers']);
    expect(fields({ model: 'package', amount: '1', package_size: 1, tiers })).toEqual(['/tiers']);
  });

  it('checks free units and the minimum amount', () => {
    const price = (extra: Partial<UsagePrice>): UsagePrice => ({ model: 'per_unit', amount: '1', ...extra });
    for (const free_units of ['-1', '1.0000001', '1e3', ''])
      expect(fields(price({ free_units }))).toEqual(['/free_units']);
    for (const minimum_amount of ['1.005', '01.00', '-1', '12345678901', '1.', '.5', ''])
      expect(fields(price({ minimum_amount }))).toEqual(['/minimum_amount']);
    for (const minimum_amount of ['0', '0.5', '10.25', '9999999999.99'])
      expect(fields(price({ minimum_amount }))).toEqual([]);
  });
});
