import type { Schemas } from '../contract.js';
import type { FeatureRow, SubscriptionRow } from '../database/schema.js';
import { toFeatureResponse } from './features.js';

export function toSubscriptionResponse(
  row: SubscriptionRow,
  features?: FeatureRow[],
): Schemas['Subscription'] {
  return {
    id: row.id,
    user_id: row.user_id,
    status: row.status,
    plan_cost: row.plan_cost,
    billing_interval: row.billing_interval,
    start_date: row.start_date,
    end_date: row.end_date,
    canceled_at: row.canceled_at?.toISOString() ?? null,
    cancel_at: row.cancel_at?.toISOString() ?? null,
    cancel_reason: row.cancel_reason,
    version: row.version,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
    ...(features ? { features: features.map(toFeatureResponse) } : {}),
  };
}
