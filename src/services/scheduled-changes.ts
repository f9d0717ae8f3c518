// Price changes scheduled for the end of the current period (typical for downgrades): kept on the
// subscription, made by the worker at the renewal that starts the next period, before its invoice
// (services/collection.ts, renewDue), so the new period is invoiced at the new price.
import { formatCents, parseAmount } from '../billing/money.js';
import { periodContaining } from '../billing/periods.js';
import { PriceTooHighError } from '../billing/pricing.js';
import { dayOf, servedPeriodEnd, subscriptionNow } from '../billing/subscription-time.js';
import type { ScheduledChange, SubscriptionRow } from '../database/schema.js';
import { findPlanWithPrice } from '../queries/plans.js';
import * as subscriptions from '../queries/subscriptions.js';
import {
  type Actor,
  inTenant,
  type ServiceContext,
  satisfies,
  type Tx,
  type VersionCondition,
} from './context.js';
import {
  emitChange,
  onClockOf,
  lockAfterDueCancellations,
  type PricingRefusal,
  repricing,
  type SubscriptionPatchInput,
} from './subscriptions.js';

export type ScheduleOutcome =
  | { kind: 'scheduled' | 'canceled'; subscription: SubscriptionRow }
  | { kind: 'missing' }
  | { kind: 'stale'; current: SubscriptionRow }
  | { kind: 'not-scheduled' }
  | { kind: 'not-renewing'; why: 'canceled' | 'cancel_at' | 'no-renewals' | 'end_date' }
  | PricingRefusal;

type ChangeInput = Pick<SubscriptionPatchInput, 'plan_id' | 'quantity' | 'plan_cost' | 'billing_interval'>;

/** Schedules `input` for the end of the current period (replacing a change scheduled before). */
export function scheduleChange(
  ctx: ServiceContext,
  actor: Actor,
  id: string,
  input: ChangeInput,
  ifMatch?: VersionCondition,
): Promise<ScheduleOutcome> {
  return inTenant(ctx, actor, async (tx): Promise<ScheduleOutcome> => {
    const before = await lockAfterDueCancellations(tx, id);
    if (!before) return { kind: 'missing' };
    if (!satisfies(ifMatch, before.version)) return { kind: 'stale', current: before };
    if (before.status === 'canceled') return { kind: 'not-renewing', why: 'canceled' };
    if (before.cancel_at) return { kind: 'not-renewing', why: 'cancel_at' };
    if (before.billed_until === null) return { kind: 'not-renewing', why: 'no-renewals' };
    // Validated now as PATCH validates it (roles, plan, fields); priced when it is made.
    const priced = await repricing(tx, actor, before, input);
    if ('kind' in priced) return priced;
    // Only its own plan may be archived here: the change is then made only while it is on it.
    const toArchived =
      input.plan_id !== undefined &&
      (await findPlanWithPrice(tx.db, input.plan_id))?.plan.archived_at != null;
    await onClockOf(tx, before);
    // At the end of the period served today: a trial's end during one (retest8 #3).
    const end = servedPeriodEnd(before, dayOf(subscriptionNow(before)));
    // Ended with this period by its end_date: no period would start on the change.
    if (before.end_date !== null && before.end_date < end) return { kind: 'not-renewing', why: 'end_date' };
    // The period the change starts must end within the calendar, as a change made now must
    // (PeriodBeyondCalendarError: 422), or the change could never be made: a new schedule's
    // (retest8 #7), or the same schedule's next period, which no renewal can start (retest12).
    const interval = priced.billing_interval ?? before.billing_interval;
    const count = priced.interval_count ?? before.interval_count;
    periodContaining(end, interval, count, end);
    const change: ScheduledChange = {
      ...(toArchived ? { to_archived: true } : {}),
      plan_id: input.plan_id ?? null,
      quantity: input.quantity ?? null,
      // Written as a stored price is ("10" as "10.00"), as responses show every amount.
      plan_cost: input.plan_cost === undefined ? null : formatCents(parseAmount(input.plan_cost)),
      billing_interval: input.billing_interval ?? null,
      effective_date: end,
      scheduled_at: subscriptionNow(before).toISOString(),
    };
    const after = await subscriptions.updateSubscription(tx.db, id, {
      scheduled_change: JSON.stringify(change),
    });
    emitChange(tx, before, after, 'subscription.change_scheduled');
    return { kind: 'scheduled', subscription: after };
  });
}

export function cancelScheduledChange(
  ctx: ServiceContext,
  actor: Actor,
  id: string,
  ifMatch?: VersionCondition,
): Promise<ScheduleOutcome> {
  return inTenant(ctx, actor, async (tx): Promise<ScheduleOutcome> => {
    const before = await subscriptions.lockSubscription(tx.db, id);
    if (!before) return { kind: 'missing' };
    if (!satisfies(ifMatch, before.version)) return { kind: 'stale', current: before };
    if (!before.scheduled_change) return { kind: 'not-scheduled' };
    await onClockOf(tx, before);
    const after = await subscriptions.updateSubscription(tx.db, id, { scheduled_change: null });
    emitChange(tx, before, after, 'subscription.scheduled_change_canceled');
    return { kind: 'canceled', subscription: after };
  });
}

/**
 * At the renewal of the period starting on billed_until, on a locked subscription: the change
 * scheduled for that day or earlier, made as the system (admin rights: it was authorized when
 * scheduled), priced at its plan's current version. A new interval starts its schedule on that
 * day. Dropped, with an event, when it cannot be made any more (its plan was deleted, or it would
 * cost over the most a period may); a plan archived since still takes it (the customer agreed to
 * it before). Returns the subscription as it is then.
 */
export async function applyScheduledChange(
  tx: Tx,
  tenantId: string,
  before: SubscriptionRow,
): Promise<SubscriptionRow> {
  const change = before.scheduled_change;
  if (!change || before.billed_until === null || change.effective_date > before.billed_until) return before;
  const system: Actor = { tenantId, keyId: 'system' };
  const priced = await repricing(
    tx,
    system,
    before,
    {
      plan_id: change.plan_id ?? undefined,
      quantity: change.quantity ?? undefined,
      plan_cost: change.plan_cost ?? undefined,
      billing_interval: change.billing_interval ?? undefined,
    },
    // A plan archived since it was scheduled still takes it; one archived before, only its own.
    { scheduled: change.to_archived !== true },
  ).catch((error: unknown) => {
    // Over the most a period may cost at today's prices (its plan's price went up since, or the
    // subscription moved to a dearer plan): it cannot be made, and the renewal must go on.
    if (error instanceof PriceTooHighError) return { kind: 'too-high' as const };
    throw error;
  });
  if ('kind' in priced) {
    const after = await subscriptions.updateSubscription(tx.db, before.id, { scheduled_change: null });
    emitChange(tx, before, after, 'subscription.scheduled_change_canceled');
    return after;
  }
  const interval = priced.billing_interval ?? before.billing_interval;
  const count = priced.interval_count ?? before.interval_count;
  const newSchedule = interval !== before.billing_interval || count !== before.interval_count;
  const after = await subscriptions.updateSubscription(tx.db, before.id, {
    ...priced,
    ...(newSchedule ? { billing_anchor: before.billed_until } : {}),
    scheduled_change: null,
  });
  emitChange(tx, before, after, 'subscription.scheduled_change_applied');
  return after;
}
