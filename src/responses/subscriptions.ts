import { type Period, periodContaining } from '../billing/periods.js';
import { billingAnchor, currentPeriodDay, trialPeriodOf } from '../billing/subscription-time.js';
import type { Schemas } from '../contract.js';
import { metadataOf } from '../database/metadata.js';
import type { Discount, FeatureRow, ScheduledChange, SubscriptionRow } from '../database/schema.js';
import { toFeatureResponse } from './features.js';

type Snapshot = Schemas['PriceSnapshot'];

/**
 * Periods computed lately, by anchor, interval, count and day: a page of subscriptions shares a
 * few (anchor, interval) pairs and one day, so each is computed once, not once per row.
 * periodContaining is pure, so a remembered period is the one it would compute again.
 */
const periods = new Map<string, Period>();
const MAX_PERIODS = 10_000;

function currentPeriod(row: SubscriptionRow, day: string): Period {
  const anchor = billingAnchor(row);
  const key = `${anchor}|${row.billing_interval}|${row.interval_count}|${day}`;
  let period = periods.get(key);
  if (period === undefined) {
    period = periodContaining(anchor, row.billing_interval, row.interval_count, day);
    if (periods.size >= MAX_PERIODS) periods.clear();
    periods.set(key, period);
  }
  return period;
}

/** A scheduled change as the contract shows it: without its internal `to_archived`. */
function shownScheduledChange(change: ScheduledChange): Schemas['ScheduledChange'] {
  if (change.to_archived === undefined) return change;
  const { to_archived: _archived, ...shown } = change;
  return shown;
}

/** A discount as the contract shows it: without its internal fields (`from`, `awaiting_resume`). */
function shownDiscount(discount: Discount): Schemas['Discount'] {
  if (discount.from === undefined && discount.awaiting_resume === undefined) return discount;
  const { from: _from, awaiting_resume: _waiting, ...shown } = discount;
  return shown;
}

export function toSubscriptionResponse(
  row: SubscriptionRow,
  features?: FeatureRow[],
  now: Date = new Date(),
): Schemas['Subscription'] {
  const snapshot = row.price_breakdown as Snapshot | null;
  const day = currentPeriodDay(row, now);
  // A trial with an end is a period of its own, before the first one it bills (also for a
  // subscription canceled during it).
  const period = trialPeriodOf(row, day) ?? currentPeriod(row, day);
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
    plan_id: row.plan_id,
    plan_version: snapshot?.plan_version ?? null,
    quantity: row.quantity,
    interval_count: row.interval_count,
    price_breakdown: snapshot,
    current_period_start: period.start,
    current_period_end: period.end,
    billing_anchor: billingAnchor(row),
    billed_until: row.billed_until,
    scheduled_change: row.scheduled_change && shownScheduledChange(row.scheduled_change),
    trial_end: row.trial_end,
    paused_at: row.paused_at?.toISOString() ?? null,
    resumes_at: row.resumes_at,
    discount: row.discount && shownDiscount(row.discount),
    test_clock_id: row.test_clock_id,
    payment_method: row.payment_method,
    payment_rail: row.payment_rail,
    metadata: metadataOf(row.metadata),
    version: row.version,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
    ...(features ? { features: features.map(toFeatureResponse) } : {}),
  };
}
