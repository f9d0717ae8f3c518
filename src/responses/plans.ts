import { formatPrice, parseAmount } from '../billing/money.js';
import type { Tier } from '../billing/pricing.js';
import type { Schemas } from '../contract.js';
import type { PlanRow, PlanVersionRow } from '../database/schema.js';

export function toPriceResponse(version: PlanVersionRow): Schemas['PlanPriceSent'] {
  return {
    model: version.price_model,
    amount: version.amount === null ? null : formatPrice(parseAmount(version.amount)),
    tiers: (version.tiers as Tier[] | null) ?? null,
  };
}

export function toPlanResponse(plan: PlanRow, price: PlanVersionRow): Schemas['Plan'] {
  return {
    id: plan.id,
    code: plan.code,
    name: plan.name,
    interval: plan.interval,
    interval_count: plan.interval_count,
    trial_days: plan.trial_days,
    price: toPriceResponse(price),
    price_version: plan.current_version,
    usage_charges: plan.usage_charges,
    archived: plan.archived_at !== null,
    archived_at: plan.archived_at?.toISOString() ?? null,
    version: plan.version,
    created_at: plan.created_at.toISOString(),
    updated_at: plan.updated_at.toISOString(),
  };
}
