// What a plan charges for a quantity, with the breakdown that explains it: pure and exact.
//   flat      the flat amount, whatever the quantity
//   per_unit  quantity × unit amount
//   tiered    graduated: each unit is priced by the tier it falls in; a tier's flat amount is
//             added once when any unit falls in it
//   volume    every unit at the tier the whole quantity reaches, plus that tier's flat amount
// Tiers are [{ up_to, unit_amount, flat_amount }], up_to strictly increasing, the last one null
// (open). The total is rounded to the cent once, half up; the lines show exact amounts.
import { formatCents, formatMicros, type Micros, parseAmount } from './money.js';

export type PriceModel = 'flat' | 'per_unit' | 'tiered' | 'volume';

export interface Tier {
  up_to: number | null;
  unit_amount: string;
  flat_amount: string;
}

export interface Price {
  model: PriceModel;
  /** flat: the amount; per_unit: the unit amount. */
  amount?: string | null;
  tiers?: readonly Tier[] | null;
}

export interface BreakdownLine {
  /** 1-based tier, or null for flat and per-unit prices. */
  tier: number | null;
  /** The units this line charges for (0 for a flat price's line). */
  quantity: number;
  unit_amount: string;
  flat_amount: string;
  /** quantity × unit_amount + flat_amount, exact to four decimals. */
  amount: string;
}

/**
 * The most a subscription may cost a period: its plan_cost is Money, ten integer digits and two
 * decimals (numeric(12, 2)). A quote may exceed it; a subscription may not.
 */
export const MAX_PERIOD_AMOUNT = '9999999999.99';

/** A subscription priced over MAX_PERIOD_AMOUNT (a quantity too large for its plan's price). */
export class PriceTooHighError extends RangeError {
  constructor(
    readonly quantity: number,
    readonly amount: string,
  ) {
    super(
      `${quantity === 1 ? '1 unit of this plan costs' : `${quantity} units of this plan cost`} ${amount} a period, over the most a subscription may cost, ${MAX_PERIOD_AMOUNT}`,
    );
  }
}

export interface Quote {
  /** The total, rounded to the cent. */
  amount: string;
  breakdown: BreakdownLine[];
}

/** What is wrong with a price, as field errors (JSON pointers into the plan); empty when valid. */
export function priceErrors(price: Price): Array<{ field: string; message: string }> {
  const errors: Array<{ field: string; message: string }> = [];
  const tiered = price.model === 'tiered' || price.model === 'volume';
  if (tiered) {
    if (price.amount != null)
      errors.push({ field: '/amount', message: `must be absent for ${price.model} prices` });
    const tiers = price.tiers ?? [];
    if (tiers.length === 0) errors.push({ field: '/tiers', message: 'must list at least one tier' });
    let previous = 0;
    tiers.forEach((tier, i) => {
      const last = i === tiers.length - 1;
      if (last && tier.up_to !== null)
        errors.push({ field: `/tiers/${i}/up_to`, message: 'the last tier must be open: up_to null' });
      if (!last && tier.up_to === null)
        errors.push({ field: `/tiers/${i}/up_to`, message: 'only the last tier may be open' });
      if (tier.up_to !== null) {
        if (tier.up_to <= previous) {
          errors.push({
            field: `/tiers/${i}/up_to`,
            message: `must be greater than the previous tier's (${previous})`,
          });
        }
        previous = tier.up_to;
      }
    });
  } else {
    if (price.amount == null)
      errors.push({ field: '/amount', message: `is required for ${price.model} prices` });
    if (price.tiers != null)
      errors.push({ field: '/tiers', message: `must be absent for ${price.model} prices` });
  }
  // A price whose one unit already costs more than a period may: no subscription could use it.
  if (errors.length === 0) {
    const one = quote(price, 1).amount;
    if (parseAmount(one) > parseAmount(MAX_PERIOD_AMOUNT))
      errors.push({
        field: tiered ? '/tiers/0' : '/amount',
        message: `one unit costs ${one} a period, over the most a subscription may cost, ${MAX_PERIOD_AMOUNT}`,
      });
  }
  return errors;
}

const line = (
  tier: number | null,
  quantity: number,
  unit: Micros,
  flat: Micros,
): BreakdownLine & { total: Micros } => {
  const total = BigInt(quantity) * unit + flat;
  return {
    tier,
    quantity,
    unit_amount: formatMicros(unit),
    flat_amount: formatMicros(flat),
    amount: formatMicros(total),
    total,
  };
};

/** The amount for `quantity` units (a positive integer) of a valid price. */
export function quote(price: Price, quantity: number): Quote {
  if (!Number.isSafeInteger(quantity) || quantity < 1)
    throw new RangeError('quantity must be a positive integer');
  const lines: Array<BreakdownLine & { total: Micros }> = [];
  switch (price.model) {
    case 'flat':
      lines.push(line(null, 0, 0n, parseAmount(price.amount!)));
      break;
    case 'per_unit':
      lines.push(line(null, quantity, parseAmount(price.amount!), 0n));
      break;
    case 'tiered': {
      let below = 0;
      for (const [i, tier] of (price.tiers ?? []).entries()) {
        if (below >= quantity) break;
        const top = tier.up_to === null ? quantity : Math.min(quantity, tier.up_to);
        lines.push(line(i + 1, top - below, parseAmount(tier.unit_amount), parseAmount(tier.flat_amount)));
        below = top;
      }
      break;
    }
    case 'volume': {
      const tiers = price.tiers ?? [];
      const i = tiers.findIndex((t) => t.up_to === null || quantity <= t.up_to);
      const tier = tiers[i]!;
      lines.push(line(i + 1, quantity, parseAmount(tier.unit_amount), parseAmount(tier.flat_amount)));
      break;
    }
  }
  const total = lines.reduce((sum, l) => sum + l.total, 0n);
  return { amount: formatCents(total), breakdown: lines.map(({ total: _, ...rest }) => rest) };
}
