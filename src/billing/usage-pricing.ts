// What a usage charge costs for a period's metered quantity: pure and exact, never a float.
// Quantities are decimals with up to six places (2.5 GB, 0.000001 hours), held as BigInt
// millionths; prices are money.ts Micros (1/10,000). Their product is in 1/10^10 of the unit,
// which is what the breakdown lines show exactly; the total is rounded to the cent once, half up.
//   free_units  subtracted first (a 'free' line shows them); everything below prices the rest,
//               the billable quantity
//   per_unit    billable × amount, one 'unit' line (even for 0)
//   graduated   like pricing.ts 'tiered': each unit priced by the tier it falls in, tier i covering
//               (previous up_to, up_to], so 12.5 with up_to 10 is 10 + 2.5; a tier's flat amount
//               is added once when a positive part of the quantity falls in it
//   volume      every billable unit at the tier the whole billable quantity reaches, plus that
//               tier's flat amount
//   package     ceil(billable / package_size) packages × amount (10.000001 units in packages of
//               10 are 2 packages)
//   minimum     when the exact sum of the lines is below minimum_amount, a 'minimum' line makes up
//               the difference (also when nothing was used)
import { formatCents, formatMicros, type Micros, parseAmount } from './money.js';

export type UsageModel = 'per_unit' | 'graduated' | 'volume' | 'package';

/** Same shape as pricing.ts Tier. */
export interface UsageTier {
  up_to: number | null;
  unit_amount: string;
  flat_amount: string;
}

export interface UsagePrice {
  model: UsageModel;
  /** per_unit: price per unit; package: price per package. Absent/null for graduated and volume. */
  amount?: string | null;
  /** package: units per package, an integer >= 1. Absent/null otherwise. */
  package_size?: number | null;
  /** graduated and volume: tiers, up_to strictly increasing integers, last one null. Absent/null otherwise. */
  tiers?: readonly UsageTier[] | null;
  /** Units free each period, subtracted before pricing (decimal string, <= 6 decimals). Default "0". */
  free_units?: string | null;
  /** The least the charge bills a period (Money: <= 2 decimals); null/absent: none. */
  minimum_amount?: string | null;
}

export interface UsageBreakdownLine {
  kind: 'free' | 'unit' | 'tier' | 'package' | 'minimum';
  /** 1-based for graduated and volume lines, else null. */
  tier: number | null;
  /** Units on this line (packages on a 'package' line), exact: formatQuantity. */
  quantity: string;
  /** Price per unit (per package on a 'package' line), formatMicros style. */
  unit_amount: string;
  /** formatMicros style; formatExact on a 'minimum' line, whose difference may need ten places. */
  flat_amount: string;
  /** quantity × unit_amount + flat_amount, exact: formatExact. */
  amount: string;
}

export interface UsageQuote {
  /** The usage given, normalized. */
  quantity: string;
  /** max(0, quantity − free_units). */
  billable_quantity: string;
  /** The exact sum of the lines rounded once, half up, to the cent. */
  amount: string;
  breakdown: UsageBreakdownLine[];
}

const QUANTITY_SCALE = 1_000_000n;
/** Micros × QUANTITY_SCALE: amounts in 1/10^10, the unit of quantity × unit price. */
const EXACT_PER_MICRO = QUANTITY_SCALE;
const EXACT_PER_CENT = 100_000_000n;
const QUANTITY = /^(\d{1,18})(?:\.(\d{1,6}))?$/;
const TOTAL = /^(\d+)(?:\.(\d{1,6}))?$/;
const MONEY = /^(0|[1-9][0-9]{0,9})(\.[0-9]{1,2})?$/;
const MAX_TIERS = 50;

/**
 * "12.5" → 12_500_000n. Throws RangeError on anything but a non-negative decimal with ≤ 6 places
 * and at most 18 integer digits: what one event or a price may carry. A period's quantity, a sum
 * of many events, may be longer: parseTotal.
 */
export function parseQuantity(text: string): bigint {
  // typeof guards values straight from JSON: the regex would happily coerce the number 5.
  const match = typeof text === 'string' ? QUANTITY.exec(text) : null;
  if (!match) throw new RangeError(`not a quantity: ${String(text)}`);
  return BigInt(match[1]!) * QUANTITY_SCALE + BigInt((match[2] ?? '').padEnd(6, '0'));
}

/** A period's quantity (a sum of events): as parseQuantity, with any number of integer digits. */
export function parseTotal(text: string): bigint {
  const match = typeof text === 'string' ? TOTAL.exec(text) : null;
  if (!match) throw new RangeError(`not a quantity: ${String(text)}`);
  return BigInt(match[1]!) * QUANTITY_SCALE + BigInt((match[2] ?? '').padEnd(6, '0'));
}

/** 12_500_000n → "12.5": no trailing zeros, no trailing dot. */
export function formatQuantity(millionths: bigint): string {
  if (millionths < 0n) throw new RangeError(`negative quantity: ${millionths}`);
  const fraction = String(millionths % QUANTITY_SCALE)
    .padStart(6, '0')
    .replace(/0+$/, '');
  const whole = String(millionths / QUANTITY_SCALE);
  return fraction === '' ? whole : `${whole}.${fraction}`;
}

/**
 * An exact amount in 1/10^10 of the unit: four decimals at least, like formatMicros, and up to ten
 * when they matter (12_500_000_000n → "1.2500", 125_000n → "0.0000125").
 */
export function formatExact(value: bigint): string {
  if (value < 0n) throw new RangeError(`negative amount: ${value}`);
  const scale = EXACT_PER_MICRO * 10_000n;
  // Trim at most six zeros, so the four places of formatMicros always remain.
  const fraction = String(value % scale)
    .padStart(10, '0')
    .replace(/0{1,6}$/, '');
  return `${value / scale}.${fraction}`;
}

const isAmount = (value: unknown): boolean => {
  if (typeof value !== 'string') return false;
  try {
    parseAmount(value);
    return true;
  } catch {
    return false;
  }
};

/** What is wrong with a usage price, as field errors (JSON pointers into it); empty when valid. */
export function usagePriceErrors(price: UsagePrice): Array<{ field: string; message: string }> {
  const errors: Array<{ field: string; message: string }> = [];
  const { model } = price;
  const tiered = model === 'graduated' || model === 'volume';
  if (!tiered && model !== 'per_unit' && model !== 'package') {
    errors.push({ field: '/model', message: 'must be per_unit, graduated, volume or package' });
    return errors; // Which other fields belong depends on the model.
  }

  if (tiered) {
    if (price.amount != null)
      errors.push({ field: '/amount', message: `must be absent for ${model} prices` });
  } else if (price.amount == null) {
    errors.push({ field: '/amount', message: `is required for ${model} prices` });
  } else if (!isAmount(price.amount)) {
    errors.push({ field: '/amount', message: 'must be a non-negative decimal with at most 4 places' });
  }

  if (model === 'package') {
    const size = price.package_size;
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 1)
      errors.push({ field: '/package_size', message: 'must be an integer of at least 1' });
  } else if (price.package_size != null) {
    errors.push({ field: '/package_size', message: `must be absent for ${model} prices` });
  }

  if (tiered) {
    const tiers = price.tiers ?? [];
    if (tiers.length === 0) errors.push({ field: '/tiers', message: 'must list at least one tier' });
    if (tiers.length > MAX_TIERS)
      errors.push({ field: '/tiers', message: `must list at most ${MAX_TIERS} tiers` });
    let previous = 0;
    tiers.forEach((tier, i) => {
      const last = i === tiers.length - 1;
      if (last && tier.up_to !== null)
        errors.push({ field: `/tiers/${i}/up_to`, message: 'the last tier must be open: up_to null' });
      if (!last && tier.up_to === null)
        errors.push({ field: `/tiers/${i}/up_to`, message: 'only the last tier may be open' });
      if (tier.up_to !== null) {
        if (!Number.isSafeInteger(tier.up_to) || tier.up_to < 1) {
          errors.push({ field: `/tiers/${i}/up_to`, message: 'must be a positive integer' });
        } else {
          if (tier.up_to <= previous) {
            errors.push({
              field: `/tiers/${i}/up_to`,
              message: `must be greater than the previous tier's (${previous})`,
            });
          }
          previous = tier.up_to;
        }
      }
      for (const key of ['unit_amount', 'flat_amount'] as const) {
        if (!isAmount(tier[key]))
          errors.push({
            field: `/tiers/${i}/${key}`,
            message: 'must be a non-negative decimal with at most 4 places',
          });
      }
    });
  } else if (price.tiers != null) {
    errors.push({ field: '/tiers', message: `must be absent for ${model} prices` });
  }

  if (price.free_units != null) {
    try {
      parseQuantity(price.free_units);
    } catch {
      errors.push({
        field: '/free_units',
        message: 'must be a non-negative decimal with at most 18 integer digits and 6 decimals',
      });
    }
  }
  if (price.minimum_amount != null) {
    if (typeof price.minimum_amount !== 'string' || !MONEY.test(price.minimum_amount))
      errors.push({ field: '/minimum_amount', message: 'must be an amount with at most 2 decimals' });
  }
  return errors;
}

type Line = UsageBreakdownLine & { total: bigint };

/** A line of `quantity` millionths at `unit` Micros each plus `flat` Micros, with its exact total. */
const line = (
  kind: UsageBreakdownLine['kind'],
  tier: number | null,
  quantity: bigint,
  unit: Micros,
  flat: Micros,
): Line => {
  const total = quantity * unit + flat * EXACT_PER_MICRO;
  return {
    kind,
    tier,
    quantity: formatQuantity(quantity),
    unit_amount: formatMicros(unit),
    flat_amount: formatMicros(flat),
    amount: formatExact(total),
    total,
  };
};

/** The amount `quantity` (a decimal string) of usage costs under a valid usage price. */
export function priceUsage(price: UsagePrice, quantity: string): UsageQuote {
  const errors = usagePriceErrors(price);
  if (errors.length > 0)
    throw new RangeError(`invalid usage price: ${errors.map((e) => `${e.field} ${e.message}`).join('; ')}`);
  const used = parseTotal(quantity);
  const free = parseQuantity(price.free_units ?? '0');
  const billable = used > free ? used - free : 0n;

  const lines: Line[] = [];
  if (free > 0n) lines.push(line('free', null, used < free ? used : free, 0n, 0n));

  switch (price.model) {
    case 'per_unit':
      lines.push(line('unit', null, billable, parseAmount(price.amount!), 0n));
      break;
    case 'graduated': {
      let below = 0n;
      for (const [i, tier] of price.tiers!.entries()) {
        if (below >= billable) break;
        const top = tier.up_to === null ? billable : bigMin(billable, BigInt(tier.up_to) * QUANTITY_SCALE);
        lines.push(
          line('tier', i + 1, top - below, parseAmount(tier.unit_amount), parseAmount(tier.flat_amount)),
        );
        below = top;
      }
      break;
    }
    case 'volume': {
      if (billable === 0n) break; // No tier is reached, so no flat amount is due either.
      const tiers = price.tiers!;
      const i = tiers.findIndex((t) => t.up_to === null || billable <= BigInt(t.up_to) * QUANTITY_SCALE);
      const tier = tiers[i]!;
      lines.push(line('tier', i + 1, billable, parseAmount(tier.unit_amount), parseAmount(tier.flat_amount)));
      break;
    }
    case 'package': {
      const size = BigInt(price.package_size!) * QUANTITY_SCALE;
      const packages = (billable + size - 1n) / size; // Ceiling: a started package is a whole one.
      // The line's quantity counts packages, so compute it apart from line(), which takes millionths.
      const unit = parseAmount(price.amount!);
      const total = packages * unit * EXACT_PER_MICRO;
      lines.push({
        kind: 'package',
        tier: null,
        quantity: String(packages),
        unit_amount: formatMicros(unit),
        flat_amount: formatMicros(0n),
        amount: formatExact(total),
        total,
      });
      break;
    }
  }

  let total = lines.reduce((sum, l) => sum + l.total, 0n);
  if (price.minimum_amount != null) {
    const minimum = parseAmount(price.minimum_amount) * EXACT_PER_MICRO;
    if (total < minimum) {
      const difference = formatExact(minimum - total);
      lines.push({
        kind: 'minimum',
        tier: null,
        quantity: '1',
        unit_amount: formatMicros(0n),
        flat_amount: difference,
        amount: difference,
        total: minimum - total,
      });
      total = minimum;
    }
  }

  // Round the exact sum to whole cents here, once; formatCents then has nothing left to round.
  const cents = (total + EXACT_PER_CENT / 2n) / EXACT_PER_CENT;
  return {
    quantity: formatQuantity(used),
    billable_quantity: formatQuantity(billable),
    amount: formatCents(cents * 100n),
    breakdown: lines.map(({ total: _, ...rest }) => rest),
  };
}

/**
 * A bound that priceUsage's exact sum (in 1/10^10 of the unit, before rounding to the cent) never
 * exceeds, for `quantity` millionths under a valid price: the whole quantity at the largest unit
 * price, a package more, every flat amount and the minimum. Cheap: checking many totals against a
 * limit, only those whose bound reaches it need pricing.
 */
export function usageAmountBound(price: UsagePrice, quantity: bigint): bigint {
  let unit = 0n;
  let flat = 0n;
  if (price.model === 'per_unit') unit = parseAmount(price.amount!);
  else if (price.model === 'package') {
    unit = parseAmount(price.amount!);
    flat = unit; // The package that a remainder starts (package_size >= 1 unit).
  } else
    for (const tier of price.tiers!) {
      const tierUnit = parseAmount(tier.unit_amount);
      if (tierUnit > unit) unit = tierUnit;
      flat += parseAmount(tier.flat_amount);
    }
  if (price.minimum_amount != null) flat += parseAmount(price.minimum_amount);
  return quantity * unit + flat * EXACT_PER_MICRO;
}

const bigMin = (a: bigint, b: bigint): bigint => (a < b ? a : b);
