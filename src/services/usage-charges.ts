// A plan's usage charges as sent, checked against the catalog and written canonically
// (plans.usage_charges): each names a live billable metric (and one value of its group_by, or
// all), at most once per metric and value, with a valid usage price.
import { formatCents, formatPrice, parseAmount } from '../billing/money.js';
import {
  formatQuantity,
  parseQuantity,
  priceUsage,
  type UsageModel,
  type UsagePrice,
  usagePriceErrors,
} from '../billing/usage-pricing.js';
import type { Db } from '../database/connection.js';
import type { StoredUsageCharge } from '../database/schema.js';
import { shareBillableMetricsByCode } from '../queries/billable-metrics.js';

export interface UsageChargeInput {
  metric: string;
  dimension_value?: string | null | undefined;
  model: UsageModel;
  amount?: string | null | undefined;
  package_size?: number | null | undefined;
  tiers?:
    ReadonlyArray<{ up_to: number | null; unit_amount: string; flat_amount: string }> | null | undefined;
  free_units?: string | undefined;
  minimum_amount?: string | null | undefined;
}

type FieldErrors = Array<{ field: string; message: string }>;

/** The most one usage charge bills a period: its line must fit an invoice, as a subscription's price does. */
export const MAX_CHARGE_AMOUNT = '9999999999.99';

/**
 * What is wrong with a charge whose least usage past its free units already bills a period more
 * than MAX_CHARGE_AMOUNT: no event past them could ever be recorded (retest9 #6), as no
 * subscription could use a plan price whose one unit costs that much. The least usage is the
 * first whole quantity past the free units for count and unique_count metrics (their events
 * count whole units), a millionth past them for the others.
 */
function firstUnitOverLimit(
  price: UsagePrice,
  wholeUnits: boolean,
): { field: string; message: string } | undefined {
  const limit = parseAmount(MAX_CHARGE_AMOUNT);
  if (parseAmount(priceUsage(price, '0').amount) > limit)
    return {
      field: '/minimum_amount',
      message: `must be at most ${MAX_CHARGE_AMOUNT}, the most a charge bills a period`,
    };
  // Whole units: the first whole quantity past the free units (one event past 0.5 free bills 0.5).
  const free = parseQuantity(price.free_units ?? '0');
  const least = wholeUnits ? (free / 1_000_000n + 1n) * 1_000_000n : free + 1n;
  const amount = priceUsage(price, formatQuantity(least)).amount;
  if (parseAmount(amount) <= limit) return undefined;
  const tiered = price.model === 'graduated' || price.model === 'volume';
  return {
    field: tiered ? '/tiers/0' : '/amount',
    message: `${wholeUnits ? 'the first event' : 'the least usage'} past the free units bills ${amount} a period, over the most a charge bills, ${MAX_CHARGE_AMOUNT}`,
  };
}

/** The price part of a stored charge, for the pricing maths. */
export const usagePriceOf = (charge: StoredUsageCharge): UsagePrice => ({
  model: charge.model,
  amount: charge.amount,
  package_size: charge.package_size,
  tiers: charge.tiers,
  free_units: charge.free_units,
  minimum_amount: charge.minimum_amount,
});

/**
 * The charges to store, or what is wrong with them (pointers under /usage_charges). A metric
 * archived since may stay on a plan that charges it already (`kept`), never be added.
 */
export async function resolveUsageCharges(
  db: Db,
  inputs: readonly UsageChargeInput[],
  kept: readonly StoredUsageCharge[] = [],
): Promise<{ charges: StoredUsageCharge[] } | { errors: FieldErrors }> {
  const errors: FieldErrors = [];
  const metrics = new Map(
    (await shareBillableMetricsByCode(db, [...new Set(inputs.map((c) => c.metric))])).map((m) => [m.code, m]),
  );
  const seen = new Set<string>();
  const charges: StoredUsageCharge[] = [];
  inputs.forEach((input, i) => {
    const at = (field: string) => `/usage_charges/${i}${field}`;
    const price: UsagePrice = {
      model: input.model,
      amount: input.amount ?? null,
      package_size: input.package_size ?? null,
      tiers: input.tiers ?? null,
      free_units: input.free_units ?? '0',
      minimum_amount: input.minimum_amount ?? null,
    };
    const priceErrors = usagePriceErrors(price);
    for (const e of priceErrors) errors.push({ field: at(e.field), message: e.message });
    const metric = metrics.get(input.metric);
    const dimension = input.dimension_value ?? null;
    if (!metric) {
      errors.push({ field: at('/metric'), message: `no billable metric has the code ${input.metric}` });
      return;
    }
    if (metric.archived_at !== null && !kept.some((k) => k.billable_metric_id === metric.id)) {
      errors.push({ field: at('/metric'), message: `the billable metric ${input.metric} is archived` });
    }
    if (dimension !== null && metric.group_by === null) {
      errors.push({
        field: at('/dimension_value'),
        message: `the billable metric ${input.metric} has no group_by: charge all its events (null)`,
      });
    }
    const key = `${metric.id}|${dimension === null ? '' : `=${dimension}`}`;
    if (seen.has(key)) {
      errors.push({
        field: at('/dimension_value'),
        message: `another charge of this plan has the same metric and dimension value`,
      });
    }
    seen.add(key);
    if (priceErrors.length > 0) return;
    const overLimit = firstUnitOverLimit(
      price,
      metric.aggregation === 'count' || metric.aggregation === 'unique_count',
    );
    if (overLimit) {
      errors.push({ field: at(overLimit.field), message: overLimit.message });
      return;
    }
    const money = (text: string) => formatPrice(parseAmount(text));
    charges.push({
      metric: metric.code,
      billable_metric_id: metric.id,
      dimension_value: dimension,
      model: input.model,
      amount: input.amount == null ? null : money(input.amount),
      package_size: input.package_size ?? null,
      tiers:
        input.tiers == null
          ? null
          : input.tiers.map((t) => ({
              up_to: t.up_to,
              unit_amount: money(t.unit_amount),
              flat_amount: money(t.flat_amount),
            })),
      free_units: formatQuantity(parseQuantity(input.free_units ?? '0')),
      minimum_amount: input.minimum_amount == null ? null : formatCents(parseAmount(input.minimum_amount)),
    });
  });
  return errors.length > 0 ? { errors } : { charges };
}
