// Subscriptions, their lifecycle and the features linked to them.
import { discountFirstDay } from '../billing/discounts.js';
import { formatCents, parseAmount, sameAmount } from '../billing/money.js';
import {
  firstPeriodStartFrom,
  LAST_DATE,
  PeriodBeyondCalendarError,
  periodContaining,
} from '../billing/periods.js';
import {
  billingAnchor,
  dayOf,
  firstUsageDayBilled,
  servedPeriodEnd,
  subscriptionNow,
  trialPeriodOf,
} from '../billing/subscription-time.js';
import type {
  BillingInterval,
  Discount,
  FeatureRow,
  InvoiceItemRow,
  InvoiceRow,
  NewSubscription,
  SubscriptionPatch,
  SubscriptionRow,
  SubscriptionStatus,
  PaymentRail,
} from '../database/schema.js';
import { isCheckViolation, isForeignKeyViolation } from '../database/errors.js';
import { mergeMetadata, type Metadata, type MetadataUpdate, storedMetadata } from '../database/metadata.js';
import { findFeature } from '../queries/features.js';
import { pendingInvoiceItems } from '../queries/invoice-items.js';
import { findInvoiceForPeriod, hasAnyInvoice, latestInvoicedPeriod } from '../queries/invoices.js';
import {
  findPlanVersion,
  findPlanWithPrice,
  lockUsageChargesOf,
  type PlanWithPrice,
} from '../queries/plans.js';
import * as subscriptions from '../queries/subscriptions.js';
import { giveBackRedemption, recountedDiscount, redeem } from './coupons.js';
import { toFeatureResponse } from '../responses/features.js';
import type { Schemas } from '../contract.js';
import { toSubscriptionResponse } from '../responses/subscriptions.js';
import { priceSubscription } from './plans.js';
import { matchesAfterRenewals, performDueRenewals, resumeCollection, stopRetries } from './collection.js';
import { chargesOverLimitOnSubscription } from './usage.js';
import { emitItemDropped } from './invoices.js';
import { hasCountedUsage, latestCountedUsageAfter } from '../queries/usage.js';
import {
  creditedPrice,
  periodBilled,
  planProration,
  performProration,
  priceLabel,
  type ProrationBehavior,
  type ProrationPlan,
  type ProrationRefusal,
} from './prorations.js';
import { prorationItems } from '../billing/proration.js';
import {
  type Actor,
  defined,
  inTenant,
  type NewEvent,
  type Page,
  previousValues,
  type ServiceContext,
  satisfies,
  toPage,
  type Tx,
  type VersionCondition,
  readyClock,
} from './context.js';

/** The lifecycle: which status may follow which. `canceled` is final. */
export const NEXT_STATUSES: Record<SubscriptionStatus, readonly SubscriptionStatus[]> = {
  trialing: ['active', 'canceled'],
  active: ['past_due', 'canceled'],
  past_due: ['active', 'unpaid', 'canceled'],
  unpaid: ['active', 'canceled'],
  // Paused and resumed by their own operations (services/pauses.ts), which bill the pause.
  paused: ['canceled'],
  canceled: [],
};

/**
 * Performs the cancellations scheduled for now or earlier (`cancel` with at=period_end), as the
 * system, so that every read and every aggregate sees them the moment they are due. Runs first in
 * every subscription and analytics transaction; an index on pending cancellations makes it a
 * single index probe when none is due. (The background worker will also run it on a schedule.)
 */
export async function performDueCancellations(tx: Tx): Promise<void> {
  for (const { previous_status, ...row } of await subscriptions.performDueCancellations(tx.db)) {
    tx.emit({
      type: 'subscription.canceled',
      resource_type: 'subscription',
      resource_id: row.id,
      actor: 'system',
      data: toSubscriptionResponse(row),
      previous: { status: previous_status, canceled_at: null },
    });
  }
}

/**
 * The subscription, locked for this transaction's change, after the cancellations now due (it
 * may be one of them). Sent together, in this order: one round trip, and the lock sees them.
 */
export async function lockAfterDueCancellations(tx: Tx, id: string): Promise<SubscriptionRow | undefined> {
  const [, row] = await Promise.all([performDueCancellations(tx), subscriptions.lockSubscription(tx.db, id)]);
  return row;
}

export interface WithFeatures {
  subscription: SubscriptionRow;
  /** Present when asked for: the linked features, by name. */
  features?: FeatureRow[];
}

export function listSubscriptions(
  ctx: ServiceContext,
  actor: Actor,
  filter: subscriptions.SubscriptionFilter,
  includeFeatures: boolean,
): Promise<Page<WithFeatures>> {
  return inTenant(ctx, actor, async (tx) => {
    // Sent together: the list reads what the cancellations wrote (same transaction, in order).
    const [, rows] = await Promise.all([
      performDueCancellations(tx),
      subscriptions.listSubscriptions(tx.db, filter),
    ]);
    const page = toPage(rows, filter.limit);
    const features = includeFeatures
      ? await subscriptions.featuresOfSubscriptions(
          tx.db,
          page.rows.map((r) => r.id),
        )
      : undefined;
    return {
      more: page.more,
      rows: page.rows.map((subscription) => ({
        subscription,
        ...(features ? { features: features.get(subscription.id) ?? [] } : {}),
      })),
    };
  });
}

export function getSubscription(
  ctx: ServiceContext,
  actor: Actor,
  id: string,
  includeFeatures: boolean,
): Promise<WithFeatures | undefined> {
  return inTenant(ctx, actor, async (tx) => {
    const [, subscription, features] = await Promise.all([
      performDueCancellations(tx),
      subscriptions.findSubscription(tx.db, id),
      includeFeatures ? subscriptions.featuresOfSubscriptions(tx.db, [id]) : undefined,
    ]);
    if (!subscription) return undefined;
    return features ? { subscription, features: features.get(id) ?? [] } : { subscription };
  });
}

const addDays = (day: string, n: number) =>
  new Date(Date.parse(`${day}T00:00:00Z`) + n * 86_400_000).toISOString().slice(0, 10);

/**
 * The plan (its version) a subscription is put on was deleted by a transaction that committed
 * while this one ran (retest8 #6): as unknown as one never made.
 */
const PLAN_VERSION_KEY = 'subscriptions_plan_version_fkey';

/** end_date before start_date (checked by the database, whichever write caused it). */
const END_BEFORE_START = 'subscriptions_end_date_check';

/** A custom price (no plan) may be set only by an admin key, or by the system. */
const mayPriceByHand = (actor: Actor) => actor.role === undefined || actor.role === 'admin';

type FieldErrors = Array<{ field: string; message: string }>;

export interface SubscriptionInput {
  user_id: string;
  status: SubscriptionStatus;
  start_date: string;
  end_date?: string | null | undefined;
  plan_id?: string | undefined;
  quantity?: number | undefined;
  plan_cost?: string | undefined;
  billing_interval?: BillingInterval | undefined;
  test_clock_id?: string | undefined;
  payment_method?: string | undefined;
  payment_rail?: PaymentRail | undefined;
  trial_end?: string | undefined;
  coupon_id?: string | undefined;
  /** Imported: the first day the old system has not billed (the current period's end). */
  billed_until?: string | undefined;
  metadata?: Metadata | undefined;
}

/** payment_method and payment_rail go together: both set, or both null. */
function collectionErrors(
  method: string | null | undefined,
  rail: PaymentRail | null | undefined,
): FieldErrors {
  if ((method ?? null) === null && (rail ?? null) === null) return [];
  if (method && rail) return [];
  const missing = method ? '/payment_rail' : '/payment_method';
  return [{ field: missing, message: 'is required with ' + (method ? 'payment_method' : 'payment_rail') }];
}

/** Refusals shared by create and update: prices are the server's to compute. */
export type PricingRefusal =
  | { kind: 'invalid'; errors: FieldErrors }
  | { kind: 'unknown-plan' }
  | { kind: 'plan-archived' }
  | { kind: 'needs-admin' };

export type CreateSubscriptionOutcome =
  | { kind: 'created'; subscription: SubscriptionRow }
  | { kind: 'unknown-user' }
  | { kind: 'end-before-start' }
  | PricingRefusal;

/**
 * The plan to price a subscription with, and its current price; or why not. An archived plan
 * takes no new subscriptions, nor subscriptions moving to it, unless `archivedToo`.
 */
async function livePlan(
  tx: Tx,
  planId: string,
  archivedToo = false,
): Promise<PlanWithPrice | PricingRefusal> {
  const plan = await findPlanWithPrice(tx.db, planId);
  if (!plan) return { kind: 'unknown-plan' };
  if (plan.plan.archived_at !== null && !archivedToo) return { kind: 'plan-archived' };
  return plan;
}

export async function createSubscription(
  ctx: ServiceContext,
  actor: Actor,
  input: SubscriptionInput,
): Promise<CreateSubscriptionOutcome> {
  const {
    plan_id,
    quantity,
    plan_cost,
    billing_interval,
    test_clock_id,
    trial_end,
    coupon_id,
    billed_until: paidThrough,
    metadata,
    ...common
  } = input;
  const collection = collectionErrors(common.payment_method, common.payment_rail);
  if (collection.length > 0) return { kind: 'invalid', errors: collection };
  if (common.status === 'paused')
    return {
      kind: 'invalid',
      errors: [{ field: '/status', message: 'is set by POST /subscriptions/{id}/pause, once created' }],
    };
  if (trial_end !== undefined && common.status !== 'trialing')
    return { kind: 'invalid', errors: [{ field: '/trial_end', message: 'needs status trialing' }] };
  if (trial_end !== undefined && trial_end <= common.start_date)
    return { kind: 'invalid', errors: [{ field: '/trial_end', message: 'must be after start_date' }] };
  if (plan_id) {
    const errors: FieldErrors = [];
    if (plan_cost !== undefined) {
      errors.push({
        field: '/plan_cost',
        message: 'is computed from the plan: send plan_id and quantity only',
      });
    }
    if (billing_interval !== undefined)
      errors.push({ field: '/billing_interval', message: "comes from the plan's interval" });
    if (errors.length > 0) return { kind: 'invalid', errors };
  } else {
    if (plan_cost === undefined)
      return { kind: 'invalid', errors: [{ field: '/plan_cost', message: 'is required without plan_id' }] };
    if (quantity !== undefined)
      return { kind: 'invalid', errors: [{ field: '/quantity', message: 'needs a plan_id' }] };
    if (!mayPriceByHand(actor)) return { kind: 'needs-admin' };
  }
  try {
    return await inTenant(ctx, actor, async (tx): Promise<CreateSubscriptionOutcome> => {
      let priced: Partial<NewSubscription> = { plan_cost, billing_interval: billing_interval ?? 'month' };
      let trialDays: number | null = null;
      if (plan_id) {
        const plan = await livePlan(tx, plan_id);
        if ('kind' in plan) return plan;
        trialDays = plan.plan.trial_days;
        priced = {
          ...priceSubscription(plan_id, plan.price, quantity ?? 1),
          billing_interval: plan.plan.interval,
          interval_count: plan.plan.interval_count,
        };
      }
      // Renewals start with the current period (the clock's, on a test clock): a subscription
      // dated in the past is not billed for the periods before today.
      let now = new Date();
      if (test_clock_id) {
        // Not while it advances: created at the clock's new time, the worker's steps on the way
        // would bill it first at theirs (its first invoice and payment dated before its creation,
        // its first period's usage closed at once).
        const clock = await readyClock(tx, test_clock_id);
        if (!clock)
          return { kind: 'invalid', errors: [{ field: '/test_clock_id', message: 'no such test clock' }] };
        now = clock.frozen_time;
        tx.occurAt(clock.frozen_time);
      }
      const today = now.toISOString().slice(0, 10);
      if (trial_end !== undefined && trial_end <= today)
        return {
          kind: 'invalid',
          errors: [{ field: '/trial_end', message: `must be after today (${today})` }],
        };
      // A trial with an end: its first period starts on that day, billed then by the worker.
      const trialEnd =
        trial_end ??
        (common.status === 'trialing' && trialDays ? addDays(common.start_date, trialDays) : undefined);
      // The plan's trial past the calendar (addDays then writes a six-digit year, '+010001-12').
      if (trial_end === undefined && trialEnd !== undefined && !/^\d{4}-/.test(trialEnd))
        return {
          kind: 'invalid',
          errors: [
            {
              field: '/start_date',
              message: `the plan's ${trialDays}-day trial from start_date would end after ${LAST_DATE}: dates in this API have four-digit years`,
            },
          ],
        };
      // The plan's trial, over already: it would trial without an end, never billed.
      if (trial_end === undefined && trialEnd !== undefined && trialEnd <= today)
        return {
          kind: 'invalid',
          errors: [
            {
              field: '/status',
              message: `the plan's ${trialDays}-day trial from start_date ended on ${trialEnd}, not after today (${today}): create it active, or send a trial_end after today`,
            },
          ],
        };
      const interval = priced.billing_interval ?? 'month';
      const trial = trialEnd; // after today: both kinds are checked above
      // The first period after the trial must end within the calendar, as one from start_date
      // must (PeriodBeyondCalendarError: 422): reads of it would otherwise fail later.
      if (trial && trial_end === undefined) {
        // The plan's trial: no date of the body names it, start_date does (retest8 #8).
        try {
          periodContaining(trial, interval, priced.interval_count ?? 1, trial);
        } catch (error) {
          if (!(error instanceof PeriodBeyondCalendarError)) throw error;
          return {
            kind: 'invalid',
            errors: [
              {
                field: '/start_date',
                message: `the plan's ${trialDays}-day trial from start_date ends on ${trial}, and the first billing period after it would end after ${LAST_DATE}: dates in this API have four-digit years`,
              },
            ],
          };
        }
      } else if (trial) periodContaining(trial, interval, priced.interval_count ?? 1, trial);
      // Created canceled (a customer imported after churning): billing has ended, at the clock's
      // time on a clock (in real time the database stamps canceled_at).
      const canceled = common.status === 'canceled';
      const firstBilled = canceled
        ? null
        : (trial ??
          periodContaining(
            common.start_date,
            interval,
            priced.interval_count ?? 1,
            today > common.start_date ? today : common.start_date,
          ).start);
      // Imported, billed by the old system through the current period: renewals start after it.
      let billedFrom = firstBilled;
      const imported = paidThrough !== undefined && paidThrough !== firstBilled;
      if (imported) {
        if (firstBilled === null || trial || common.status !== 'active')
          return {
            kind: 'invalid',
            errors: [{ field: '/billed_until', message: 'is for an active subscription without a trial' }],
          };
        if (common.start_date > today)
          return {
            kind: 'invalid',
            errors: [{ field: '/billed_until', message: `needs a start_date on or before today (${today})` }],
          };
        if (common.end_date != null && common.end_date < firstBilled)
          return {
            kind: 'invalid',
            errors: [
              {
                field: '/billed_until',
                message: `end_date ends it before its current period (${firstBilled})`,
              },
            ],
          };
        const current = periodContaining(
          common.start_date,
          interval,
          priced.interval_count ?? 1,
          firstBilled,
        );
        if (paidThrough !== current.end)
          return {
            kind: 'invalid',
            errors: [
              {
                field: '/billed_until',
                message: `must be ${current.end} (the current period billed elsewhere) or ${current.start} (invoiced here)`,
              },
            ],
          };
        billedFrom = current.end;
      }
      // Ended before that period (created with a past end_date): billing has ended already, as
      // the worker's first step would find (collection.ts); nothing was or will be invoiced.
      // Imported, its billing goes on to billed_until even when end_date falls in that period: its
      // days are paid, a change or a pause in them credits them (retest14 #2).
      const billedUntil =
        !imported && billedFrom !== null && common.end_date != null && common.end_date < billedFrom
          ? null
          : billedFrom;
      // The last check before writing: a refusal returned after it would commit the redemption.
      const discount = coupon_id
        ? await redeem(
            tx,
            coupon_id,
            plan_id ?? null,
            now,
            discountFirstDay(today, billedUntil, common.status === 'trialing' ? common.start_date : null),
            '/coupon_id',
          )
        : null;
      if (discount && 'kind' in discount) return discount;
      // Usage is billed in arrears: the first renewal bills the usage of the period before
      // billed_until, and no invoice ever bills the periods before that one (created two or more
      // periods back). Their usage is closed from the start: events in them are refused.
      const usageFrom =
        billedUntil === null || trial
          ? undefined
          : firstUsageDayBilled(
              {
                start_date: common.start_date,
                billing_anchor: null,
                billing_interval: interval,
                interval_count: priced.interval_count ?? 1,
              },
              billedUntil,
            );
      const subscription = await subscriptions.insertSubscription(tx.db, {
        ...common,
        ...priced,
        test_clock_id: test_clock_id ?? null,
        billed_until: billedUntil,
        ...(usageFrom !== undefined && usageFrom > common.start_date
          ? { usage_invoiced_until: usageFrom }
          : {}),
        ...(canceled && test_clock_id ? { canceled_at: now } : {}),
        ...(trial ? { trial_end: trial, billing_anchor: trial } : {}),
        ...(discount ? { discount: JSON.stringify(discount) } : {}),
        ...(metadata ? { metadata: storedMetadata(metadata) } : {}),
      } as NewSubscription);
      emitShowing(tx, {
        type: 'subscription.created',
        resource_type: 'subscription',
        resource_id: subscription.id,
        data: toSubscriptionResponse(subscription),
      });
      return { kind: 'created', subscription };
    });
  } catch (error) {
    // The foreign key includes tenant_id, so another tenant's user is as unknown as a missing one.
    if (isForeignKeyViolation(error, 'subscriptions_user_id_fkey')) return { kind: 'unknown-user' };
    if (isForeignKeyViolation(error, PLAN_VERSION_KEY)) return { kind: 'unknown-plan' };
    if (isCheckViolation(error, END_BEFORE_START)) return { kind: 'end-before-start' };
    throw error;
  }
}

/** A change refused because the lifecycle does not allow it. */
export interface IllegalTransition {
  kind: 'illegal-transition';
  from: SubscriptionStatus;
  to: SubscriptionStatus;
  allowed: readonly SubscriptionStatus[];
}

export type UpdateSubscriptionOutcome =
  /** With the invoice the change issued, if any (always_invoice, a new schedule). */
  | { kind: 'updated'; subscription: SubscriptionRow; invoice: InvoiceRow | undefined }
  | ProrationRefusal
  | PeriodEndPending
  | CanceledFinal
  | { kind: 'missing' }
  | { kind: 'stale'; current: SubscriptionRow }
  | IllegalTransition
  | { kind: 'end-before-start' }
  | PricingRefusal;

export interface SubscriptionPatchInput {
  status?: SubscriptionStatus | undefined;
  plan_id?: string | undefined;
  quantity?: number | undefined;
  plan_cost?: string | undefined;
  billing_interval?: BillingInterval | undefined;
  start_date?: string | undefined;
  end_date?: string | null | undefined;
  payment_method?: string | null | undefined;
  payment_rail?: PaymentRail | null | undefined;
  trial_end?: string | undefined;
  proration_behavior?: ProrationBehavior | undefined;
  /** Merged into the metadata it has (a null value removes its key). */
  metadata?: MetadataUpdate | undefined;
}

/**
 * The columns a price change sets: moving to a plan (its current version), a new quantity (at
 * the version the subscription is on), or a custom price (admins only). An archived plan is
 * refused, except the subscription's own and, with `scheduled`, a change scheduled before the
 * plan was archived (its renewal makes it).
 */
export async function repricing(
  tx: Tx,
  actor: Actor,
  before: SubscriptionRow,
  patch: SubscriptionPatchInput,
  { scheduled = false }: { scheduled?: boolean } = {},
): Promise<SubscriptionPatch | PricingRefusal> {
  const { plan_id, quantity, plan_cost, billing_interval } = patch;
  if (plan_id === undefined && before.plan_id === null) {
    if (quantity !== undefined)
      return { kind: 'invalid', errors: [{ field: '/quantity', message: 'needs a plan_id' }] };
    // A custom price is an amount per interval: changing either one sets a new price. Amounts
    // compare as numbers ("10" is the "10.00" stored) and travel on written as stored, so that
    // resending the price is no change: no role check, no proration, no write.
    const cost = plan_cost === undefined ? undefined : formatCents(parseAmount(plan_cost));
    const repriced =
      (cost !== undefined && !sameAmount(cost, before.plan_cost)) ||
      (billing_interval !== undefined && billing_interval !== before.billing_interval);
    if (repriced && !mayPriceByHand(actor)) return { kind: 'needs-admin' };
    return defined({ plan_cost: cost, billing_interval });
  }
  const errors: FieldErrors = [];
  if (plan_cost !== undefined)
    errors.push({ field: '/plan_cost', message: 'is computed from the plan: change plan_id or quantity' });
  if (billing_interval !== undefined)
    errors.push({ field: '/billing_interval', message: "comes from the plan's interval" });
  if (errors.length > 0) return { kind: 'invalid', errors };
  if (plan_id !== undefined) {
    const plan = await livePlan(tx, plan_id, scheduled || plan_id === before.plan_id);
    if ('kind' in plan) return plan;
    return {
      ...priceSubscription(plan_id, plan.price, quantity ?? before.quantity),
      billing_interval: plan.plan.interval,
      interval_count: plan.plan.interval_count,
    };
  }
  if (quantity === undefined || quantity === before.quantity) return {};
  const version = (await findPlanVersion(tx.db, before.plan_version_id!))!;
  return priceSubscription(before.plan_id!, version, quantity);
}

/**
 * billed_until (the first day not billed yet) on the new schedule when the start date or the
 * interval changes: renewals would otherwise look for a period that the new schedule does not
 * have (a start date moved past it stopped billing for good). Unchanged when billing had ended.
 */
function rescheduledBilling(
  before: SubscriptionRow,
  changes: SubscriptionPatch,
  creditBack = true,
): string | null {
  if (before.billed_until === null) return null;
  const anchor = changes.billing_anchor ?? changes.start_date ?? billingAnchor(before);
  const interval = changes.billing_interval ?? before.billing_interval;
  const count = changes.interval_count ?? before.interval_count;
  if (
    anchor === billingAnchor(before) &&
    interval === before.billing_interval &&
    count === before.interval_count
  )
    return before.billed_until;
  // A new start date whose schedule has a period starting after today and holding billed_until
  // (a start moved earlier): billing goes on from that period's start, its days billed already
  // credited back (daysBeforeNewSchedule), so every period still to come has an invoice of its
  // own. Charged forward to its end instead, the next period's days were an item that a change
  // or a pause before it neither repriced nor shortened (retest17 #1).
  const status = changes.status ?? before.status;
  if (
    creditBack &&
    changes.start_date !== undefined &&
    changes.start_date !== before.start_date &&
    before.billed_until > anchor &&
    BILLED_BY_RENEWALS.has(status)
  ) {
    const holding = periodContaining(anchor, interval, count, before.billed_until);
    if (holding.start > dayOf(subscriptionNow(before))) return holding.start;
  }
  return firstPeriodStartFrom(anchor, interval, count, before.billed_until);
}

/** Statuses whose periods renewals invoice (not a trial's, a pause's or an ended one's). */
const BILLED_BY_RENEWALS: ReadonlySet<SubscriptionRow['status']> = new Set(['active', 'past_due', 'unpaid']);

/**
 * A start date moved before anything was billed (the worker's first renewal not run yet, and no
 * import's billed_until past the current period's start): billed from the current period of the
 * new schedule, as a subscription created with that start date is. Moved on the schedule's terms (rescheduledBilling), the days between the old start and the
 * new schedule's next period would never be billed. Undefined otherwise.
 */
async function billingAsCreated(
  tx: Tx,
  before: SubscriptionRow,
  changes: SubscriptionPatch,
): Promise<string | undefined> {
  const start = changes.start_date;
  if (start === undefined || start === before.start_date || before.billed_until === null) return undefined;
  if (before.status !== 'active' || changes.status !== undefined) return undefined;
  // Anchored elsewhere (a trial's end, ended early or not, or a new interval): billing went on
  // from there, not from the start; as created, the trial's free days were billed (retest20 #1).
  if (before.billing_anchor !== null) return undefined;
  if (await hasAnyInvoice(tx.db, before.id)) return undefined;
  const today = dayOf(subscriptionNow(before));
  // Imported with its current period billed by the old system (billed_until past that period's
  // start): billed, so moved as a subscription invoiced here is, never billed again (retest15 #5).
  const current = periodContaining(
    billingAnchor(before),
    before.billing_interval,
    before.interval_count,
    today > before.start_date ? today : before.start_date,
  );
  if (before.billed_until > current.start) return undefined;
  return periodContaining(
    start,
    changes.billing_interval ?? before.billing_interval,
    changes.interval_count ?? before.interval_count,
    today > start ? today : start,
  ).start;
}

/**
 * An end_date before the first day of the last period invoiced: that period was billed whole, and
 * no day of it would be served. Refused, also once billing has ended (an end_date moved back after
 * it): end it on or after that day, and credit the invoice (a credit note) to give part of it back.
 */
async function endBeforeInvoicedPeriod(
  tx: Tx,
  before: SubscriptionRow,
  endDate: string | null | undefined,
): Promise<string | undefined> {
  if (!endDate || before.status === 'trialing') return undefined;
  const last = await latestInvoicedPeriod(tx.db, before.id);
  if (!last || endDate >= last.period_start) return undefined;
  return `is before ${last.period_start}, the first day of the period to ${last.period_end} already invoiced: end it on or after ${last.period_start} (a credit note gives part of that invoice back)`;
}

/**
 * An end_date moved back before the day of a usage event counted for the subscription: the
 * closing invoice would bill that usage for days after the service, which an event sent after the
 * move is refused for (usage7 #2). Refused, naming the day of the latest such event. Not during a
 * trial: its usage is free whatever its end.
 */
async function endBeforeCountedUsage(
  tx: Tx,
  before: SubscriptionRow,
  endDate: string | null | undefined,
): Promise<string | undefined> {
  if (!endDate || before.status === 'trialing') return undefined;
  if (endDate >= dayOf(subscriptionNow(before))) return undefined; // no event is dated after it yet
  const anchor = billingAnchor(before);
  const periodStart =
    endDate < anchor
      ? before.start_date
      : periodContaining(anchor, before.billing_interval, before.interval_count, endDate).start;
  const latest = await latestCountedUsageAfter(tx.db, before, endDate, periodStart);
  if (!latest) return undefined;
  const day = dayOf(latest);
  return `is before ${day}, the day of a usage event counted for the subscription: its usage would be billed for days after its service; end it on or after ${day}`;
}

/**
 * Billing that ended at the end_date, which is moved later (or cleared): it resumes with the first
 * period not billed, the one after the period of the old end_date (a trial's end, for a trial with
 * an end it fell in; the anchor, for an end before it). Else the days served after it would never
 * be billed, whether renewals had invoiced that period or it was paused or trialing then.
 */
function billingResumed(before: SubscriptionRow, changes: SubscriptionPatch): string | null {
  if (before.billed_until !== null || before.end_date === null || before.status === 'canceled') return null;
  if (changes.status === 'canceled' || changes.end_date === undefined) return null;
  if (changes.end_date !== null && changes.end_date <= before.end_date) return null;
  const anchor = billingAnchor(before);
  if (before.end_date < anchor) return anchor;
  return (
    trialPeriodOf(before, before.end_date) ??
    periodContaining(anchor, before.billing_interval, before.interval_count, before.end_date)
  ).end;
}

/**
 * Billing resumed (an end_date moved later or cleared after billing ended at it) with a period
 * that has begun and whose invoice is the closing one of the usage before it (dated its first
 * day, usage only): that invoice holds the period, so no renewal would bill its price, which the
 * subscription now serves (usage7 #3: a month's price lost). It is charged whole and invoiced
 * now, as a resume on a period's first day after a renewal during a pause is, and renewals go on
 * from its end.
 */
async function priceOfResumedPeriod(
  tx: Tx,
  after: SubscriptionRow,
  billedUntil: string,
): Promise<{ billedUntil: string; plan: ProrationPlan } | undefined> {
  if (!['active', 'past_due', 'unpaid'].includes(after.status)) return undefined;
  const period = periodContaining(
    billingAnchor(after),
    after.billing_interval,
    after.interval_count,
    billedUntil,
  );
  if (period.start !== billedUntil || period.start > dayOf(subscriptionNow(after))) return undefined;
  // Its closing invoice billed the usage of the period before, not this period's price: voided,
  // it forgave that usage only (retest22 #1).
  const invoice = await findInvoiceForPeriod(tx.db, after.id, period);
  if (!invoice) return undefined;
  const lines = invoice.lines as unknown as Array<{ type: string }>;
  if (lines.some((line) => line.type === 'subscription')) return undefined;
  const price = { amount: after.plan_cost, label: await priceLabel(tx, after) };
  return {
    billedUntil: period.end,
    plan: {
      mode: 'items',
      items: prorationItems(period, period.start, undefined, price),
      invoiceNow: true,
      period,
      day: period.start,
    },
  };
}

/**
 * A new start date (moved back two or more periods before billed_until) leaves periods that no
 * renewal will bill, as a subscription created so: their usage is closed, as at creation
 * (usage_invoiced_until). Undefined when nothing more is closed. Not during a trial (its own
 * period, free, is its usage's).
 */
function usageClosedByNewStart(before: SubscriptionRow, changes: SubscriptionPatch): string | undefined {
  if (changes.start_date === undefined || changes.start_date === before.start_date) return undefined;
  if (before.status === 'trialing') return undefined;
  const billedUntil = changes.billed_until === undefined ? before.billed_until : changes.billed_until;
  if (billedUntil === null) return undefined;
  const from = firstUsageDayBilled(
    {
      start_date: changes.start_date,
      billing_anchor: changes.billing_anchor === undefined ? before.billing_anchor : changes.billing_anchor,
      billing_interval: changes.billing_interval ?? before.billing_interval,
      interval_count: changes.interval_count ?? before.interval_count,
    },
    billedUntil,
  );
  if (from === undefined || from <= changes.start_date) return undefined;
  return before.usage_invoiced_until !== null && before.usage_invoiced_until >= from ? undefined : from;
}

/**
 * A cancellation or a change scheduled for the end of the current period, which a change of the
 * period's end (a new interval or start date, a trial moved or ended) would leave stranded: the
 * cancellation mid-period after a new period was billed in full, the change on a date that is no
 * period's end. Refused (409) rather than guessed at: the caller undoes it first. A canceled
 * subscription's last period is final too: a new interval would show one it never served.
 */
export interface PeriodEndPending {
  kind: 'period-end-pending';
  what: 'cancellation' | 'scheduled-change' | 'canceled';
  /** The current period's end, when it is due. */
  at: string;
  /** The current period's end after the change. */
  newEnd: string;
}

/**
 * A canceled subscription is final: what it was (its price, its dates, how it paid) is what its
 * invoices, its MRR history and the analytics were made of, and a change would rewrite them (a
 * start date moved back gave it MRR for months before it existed). Only its metadata may change.
 */
export interface CanceledFinal {
  kind: 'canceled-final';
  /** The fields the change would set to other values. */
  fields: string[];
}

function changedOnCanceled(
  before: SubscriptionRow,
  patch: SubscriptionPatchInput,
): CanceledFinal | undefined {
  if (before.status !== 'canceled') return undefined;
  const differs: Record<string, boolean> = {
    plan_id: patch.plan_id !== undefined && patch.plan_id !== before.plan_id,
    quantity: patch.quantity !== undefined && patch.quantity !== before.quantity,
    plan_cost: patch.plan_cost !== undefined && !sameAmount(patch.plan_cost, before.plan_cost),
    billing_interval:
      patch.billing_interval !== undefined && patch.billing_interval !== before.billing_interval,
    start_date: patch.start_date !== undefined && patch.start_date !== before.start_date,
    end_date: patch.end_date !== undefined && patch.end_date !== before.end_date,
    payment_method: patch.payment_method !== undefined && patch.payment_method !== before.payment_method,
    payment_rail: patch.payment_rail !== undefined && patch.payment_rail !== before.payment_rail,
    trial_end: patch.trial_end !== undefined && patch.trial_end !== before.trial_end,
  };
  const fields = Object.keys(differs).filter((field) => differs[field]);
  return fields.length > 0 ? { kind: 'canceled-final', fields } : undefined;
}

function periodEndPending(before: SubscriptionRow, changes: SubscriptionPatch): PeriodEndPending | undefined {
  const canceled = before.status === 'canceled';
  if (!canceled && !before.cancel_at && !before.scheduled_change) return undefined;
  const end = toSubscriptionResponse(before).current_period_end;
  const newEnd = toSubscriptionResponse({ ...before, ...changes } as SubscriptionRow).current_period_end;
  if (newEnd === end) return undefined;
  return {
    kind: 'period-end-pending',
    what: canceled ? 'canceled' : before.cancel_at ? 'cancellation' : 'scheduled-change',
    at: end,
    newEnd,
  };
}

/**
 * A trial with an end, moved (its first period moves with it, and its trial_will_end notice is
 * due again), or a trial ended by hand (status active: billing starts today, on a schedule
 * anchored today; the trial's days, and their usage, stay free).
 */
function trialChanges(
  before: SubscriptionRow,
  patch: SubscriptionPatchInput,
): SubscriptionPatch | { kind: 'invalid'; errors: FieldErrors } {
  const today = dayOf(subscriptionNow(before));
  if (patch.trial_end !== undefined && patch.trial_end !== before.trial_end) {
    if (before.status !== 'trialing' || before.trial_end === null)
      return {
        kind: 'invalid',
        errors: [{ field: '/trial_end', message: 'moves only a trial that has an end' }],
      };
    if (patch.status === 'active')
      return {
        kind: 'invalid',
        errors: [
          {
            field: '/trial_end',
            message: 'cannot move the trial that status active ends now: send one or the other',
          },
        ],
      };
    if (patch.trial_end <= today || patch.trial_end <= (patch.start_date ?? before.start_date))
      return {
        kind: 'invalid',
        errors: [{ field: '/trial_end', message: `must be after today (${today}) and after start_date` }],
      };
    periodContaining(patch.trial_end, before.billing_interval, before.interval_count, patch.trial_end);
    // Billed from the new end on, as a trial created so would be: also when its end_date fell
    // within the trial before and the move puts a paid day before it (retest20 #6: it stayed
    // trialing for good, its days after the trial never billed).
    const endDate = patch.end_date === undefined ? before.end_date : patch.end_date;
    const billed = before.billed_until !== null || (endDate !== null && endDate >= patch.trial_end);
    return {
      trial_end: patch.trial_end,
      trial_notified_at: null,
      billing_anchor: patch.trial_end,
      ...(billed ? { billed_until: patch.trial_end } : {}),
    };
  }
  // Ended early, or a trial without an end made active: its first period starts today.
  if (
    patch.status === 'active' &&
    before.status === 'trialing' &&
    (before.trial_end === null || before.trial_end > today)
  ) {
    // Not once its service ended (an end_date passed while it trialed): no period is left to
    // start, and one anchored today would begin after the last day served (trials1 #5).
    const endDate = patch.end_date === undefined ? before.end_date : patch.end_date;
    if (endDate !== null && endDate < today)
      return {
        kind: 'invalid',
        errors: [
          {
            field: '/status',
            message: `cannot end a trial whose service ended on ${endDate} (end_date): move end_date first`,
          },
        ],
      };
    // On the start date it is given with, if any: moved later, the first period starts there
    // (the anchor left on the old start made a period before the start no renewal could bill,
    // trials1 #1).
    const startDate = patch.start_date ?? before.start_date;
    const start = today > startDate ? today : startDate;
    // The trial's days, free, stay unbilled: usage is billed from the first period on (the
    // periods of the new schedule before it would cover the trial, or days before the start).
    const closeTrial =
      start > startDate && (before.usage_invoiced_until === null || before.usage_invoiced_until < start);
    return {
      trial_end: null,
      billing_anchor: start,
      // The trial's own period, start_date to today, stays readable (its free usage).
      ...(start > startDate ? { trial_ended_on: start } : {}),
      // Billed from its first period on: also when billing had ended before it, at an end_date
      // within the trial that is still to come (or moved on): the period holding it is billed
      // whole (retest18 #1).
      ...(before.billed_until !== null || (before.end_date !== null && (endDate === null || endDate >= start))
        ? { billed_until: start }
        : {}),
      ...(closeTrial ? { usage_invoiced_until: start } : {}),
    };
  }
  return {};
}

/**
 * A subscription as an event shows it: as of the time the event occurs. A worker's step on a test
 * clock happens at its own due time while the clock already reads the time it advances to: its
 * period fields are those of the step's day, not of the clock's target.
 */
export function eventData(tx: Tx, row: SubscriptionRow): ReturnType<typeof toSubscriptionResponse> {
  const at = row.test_clock_id ? tx.occurredAt() : undefined;
  return toSubscriptionResponse(at ? { ...row, clock_time: at } : row);
}

const shownKey = (id: string) => `subscription:${id}`;

/**
 * The subscription as a step that starts a period (a renewal, a cancellation taking effect) saw it
 * before its changes: at `at`, the ended period's last instant. Seen at the step's time, its
 * current period would already be the new one, and no `previous` would name the period that ended.
 */
export function seenBefore(tx: Tx, row: SubscriptionRow, at: Date): void {
  if (tx.lastShown(shownKey(row.id)) === undefined)
    tx.show(shownKey(row.id), toSubscriptionResponse({ ...row, clock_time: at }));
}

/** Records an event showing the subscription (its data), for the next change's `previous`. */
export function emitShowing(tx: Tx, event: NewEvent & { data: Schemas['Subscription'] }): void {
  tx.emit(event);
  tx.show(shownKey(event.resource_id), event.data);
}

/**
 * Records a change of a subscription: `subscription.canceled` when it ends, else `.updated`. Its
 * `previous` names what moved since the subscription's last event in this transaction, or else
 * since `before`.
 */
export function emitChange(tx: Tx, before: SubscriptionRow, after: SubscriptionRow, type?: string): void {
  const data = eventData(tx, after);
  const seen =
    (tx.lastShown(shownKey(after.id)) as Schemas['Subscription'] | undefined) ?? eventData(tx, before);
  emitShowing(tx, {
    type:
      type ??
      (after.status === 'canceled' && before.status !== 'canceled'
        ? 'subscription.canceled'
        : 'subscription.updated'),
    resource_type: 'subscription',
    resource_id: after.id,
    data,
    previous: previousValues(seen, data),
  });
}

/**
 * A change scheduled for the period's end never comes once the subscription is canceled or its
 * cancellation scheduled (for that same end): the cancellation dropped it (`scheduled_change:
 * null` in its update); its own event says so, naming the change dropped in `previous` (the
 * cancellation's event, of the same update, names it too).
 */
export function emitScheduledChangeDropped(tx: Tx, before: SubscriptionRow, after: SubscriptionRow): void {
  if (!before.scheduled_change || after.scheduled_change) return;
  const data = eventData(tx, after);
  emitShowing(tx, {
    type: 'subscription.scheduled_change_canceled',
    resource_type: 'subscription',
    resource_id: after.id,
    data,
    previous: { scheduled_change: eventData(tx, before).scheduled_change },
  });
}

/**
 * Changes only what differs. A status change must follow the lifecycle (NEXT_STATUSES); becoming
 * `canceled` stamps canceled_at and drops a scheduled cancellation. A price change is prorated as
 * `proration_behavior` says (services/prorations.ts).
 */
export async function updateSubscription(
  ctx: ServiceContext,
  actor: Actor,
  id: string,
  patch: SubscriptionPatchInput,
  ifMatch?: VersionCondition,
): Promise<UpdateSubscriptionOutcome> {
  try {
    return await inTenant(ctx, actor, (tx) => changeSubscription(tx, actor, id, patch, ifMatch));
  } catch (error) {
    if (isForeignKeyViolation(error, PLAN_VERSION_KEY)) return { kind: 'unknown-plan' };
    if (isCheckViolation(error, END_BEFORE_START)) return { kind: 'end-before-start' };
    throw error;
  }
}

export type ChangePreviewOutcome =
  | {
      kind: 'preview';
      day: string;
      subscription: SubscriptionRow;
      items: InvoiceItemRow[];
      invoice: InvoiceRow | undefined;
    }
  | Exclude<UpdateSubscriptionOutcome, { kind: 'updated' }>;

/** Carries a preview out of the transaction it rolls back. */
class PreviewRollback extends Error {
  constructor(readonly preview: ChangePreviewOutcome) {
    super('preview: rolled back');
  }
}

/**
 * What the same change made by PATCH now would do: made in a transaction that is rolled back,
 * so it is computed by the very code that makes it. The items are those it would make or change:
 * its own, and the pending charges it would shorten, as they would be.
 */
export async function previewChange(
  ctx: ServiceContext,
  actor: Actor,
  id: string,
  patch: SubscriptionPatchInput,
): Promise<ChangePreviewOutcome> {
  try {
    return await inTenant(ctx, actor, async (tx): Promise<ChangePreviewOutcome> => {
      const before = await subscriptions.findSubscription(tx.db, id);
      // Each pending item as it was: the change's own are new, and those it shortened differ.
      const seen = (i: InvoiceItemRow) => `${i.amount} ${i.period_end}`;
      const pendingBefore = new Map(
        before ? (await pendingInvoiceItems(tx.db, id)).map((i) => [i.id, seen(i)]) : [],
      );
      const outcome = await changeSubscription(tx, actor, id, patch);
      if (outcome.kind !== 'updated') return outcome;
      const items = (await pendingInvoiceItems(tx.db, id)).filter(
        (item) => pendingBefore.get(item.id) !== seen(item),
      );
      throw new PreviewRollback({
        kind: 'preview',
        day: dayOf(subscriptionNow(outcome.subscription)),
        subscription: outcome.subscription,
        items,
        invoice: outcome.invoice,
      });
    });
  } catch (error) {
    if (error instanceof PreviewRollback) return error.preview;
    if (isForeignKeyViolation(error, PLAN_VERSION_KEY)) return { kind: 'unknown-plan' };
    if (isCheckViolation(error, END_BEFORE_START)) return { kind: 'end-before-start' };
    throw error;
  }
}

async function changeSubscription(
  tx: Tx,
  actor: Actor,
  id: string,
  patch: SubscriptionPatchInput,
  ifMatch?: VersionCondition,
): Promise<UpdateSubscriptionOutcome> {
  const before = await lockAfterDueCancellations(tx, id);
  if (!before) return { kind: 'missing' };
  if (!satisfies(ifMatch, before.version)) return { kind: 'stale', current: before };
  await onClockOf(tx, before);
  const to = patch.status;
  if (to !== undefined && to !== before.status && !NEXT_STATUSES[before.status].includes(to)) {
    return { kind: 'illegal-transition', from: before.status, to, allowed: NEXT_STATUSES[before.status] };
  }
  const final = changedOnCanceled(before, patch);
  if (final) return final;
  const priced = await repricing(tx, actor, before, patch);
  if ('kind' in priced) return priced;
  // Its plan sent as it is, but priced anew: at the plan's current version, another price.
  if (
    before.status === 'canceled' &&
    ((priced.plan_version_id !== undefined && priced.plan_version_id !== before.plan_version_id) ||
      (priced.plan_cost !== undefined && !sameAmount(String(priced.plan_cost), before.plan_cost)))
  )
    return { kind: 'canceled-final', fields: [patch.plan_id !== undefined ? 'plan_id' : 'quantity'] };
  // Usage is counted in the periods of the start date it was recorded under: a new start date
  // would leave it in periods that no longer exist, billed by no invoice. Refused rather than lost.
  if (
    patch.start_date !== undefined &&
    patch.start_date !== before.start_date &&
    (await hasCountedUsage(tx.db, id))
  )
    return {
      kind: 'invalid',
      errors: [
        {
          field: '/start_date',
          message:
            'cannot change once usage was counted for the subscription: its usage is kept in the periods of the current start date, which a new one would orphan (cancel it and create another instead)',
        },
      ],
    };
  const endError =
    (await endBeforeInvoicedPeriod(tx, before, patch.end_date)) ??
    (await endBeforeCountedUsage(tx, before, patch.end_date));
  if (endError) return { kind: 'invalid', errors: [{ field: '/end_date', message: endError }] };
  if (typeof priced.plan_id === 'string' && priced.plan_id !== before.plan_id) {
    // The new plan's charges price the periods not invoiced yet: none may bill past a line's cap.
    const charges = await lockUsageChargesOf(tx.db, priced.plan_id);
    const over = await chargesOverLimitOnSubscription(tx, id, charges);
    if (over.length > 0)
      return {
        kind: 'invalid',
        errors: over.map((o) => ({
          field: '/plan_id',
          message: `the plan's usage charge ${o.index} ${o.message}`,
        })),
      };
  }
  const collection = defined({ payment_method: patch.payment_method, payment_rail: patch.payment_rail });
  const errors = collectionErrors(
    collection.payment_method === undefined ? before.payment_method : collection.payment_method,
    collection.payment_rail === undefined ? before.payment_rail : collection.payment_rail,
  );
  if (errors.length > 0) return { kind: 'invalid', errors };
  const metadata = patch.metadata && mergeMetadata(before.metadata, patch.metadata);
  if (metadata === 'too-many')
    return { kind: 'invalid', errors: [{ field: '/metadata', message: 'more than 50 keys once merged' }] };
  const changes: SubscriptionPatch = {
    ...defined({ status: to, start_date: patch.start_date, end_date: patch.end_date }),
    ...collection,
    ...priced,
    ...(metadata && metadata !== before.metadata ? { metadata: storedMetadata(metadata) } : {}),
  };
  // A new start date anchors billing on it again, and leaves no trial ended early behind it. A
  // trial with an end keeps it: its first period starts on trial_end (billing_anchor), wherever
  // the trial starts, so the new start must come before it.
  if (changes.start_date !== undefined && changes.start_date !== before.start_date) {
    const trialEnd =
      before.status === 'trialing' && patch.status === undefined
        ? (patch.trial_end ?? before.trial_end)
        : null;
    if (trialEnd !== null && changes.start_date >= trialEnd)
      return {
        kind: 'invalid',
        errors: [
          {
            field: '/start_date',
            message: `must be before trial_end (${trialEnd}), where the trial ends and its first period starts: move trial_end too`,
          },
        ],
      };
    if (trialEnd !== null) changes.billing_anchor = trialEnd;
    else if (before.billing_anchor) changes.billing_anchor = null;
    if (before.trial_ended_on) changes.trial_ended_on = null;
    // A trial over (converted on its end) that would end on or before the new start was never
    // served: it goes, rather than refuse the move with a bare constraint error (trials1 #3).
    if (trialEnd === null && before.trial_end !== null && before.trial_end <= changes.start_date)
      changes.trial_end = null;
  }
  const trial = trialChanges(before, patch);
  if ('kind' in trial) return trial;
  Object.assign(changes, trial);
  const beyond = firstPeriodAfterTrialBeyondCalendar({ ...before, ...changes } as SubscriptionRow, patch);
  if (beyond) return beyond;
  const proration = await planProration(tx, before, changes, patch.proration_behavior ?? 'create_prorations');
  if ('kind' in proration) return proration;
  Object.assign(changes, proration.set);
  let plan: ProrationPlan = proration.plan;
  if (changes.billed_until === undefined) {
    const asCreated = await billingAsCreated(tx, before, changes);
    // Credited back only from the old schedule as its invoice left it: after an earlier move
    // whose item is still pending, charged forward (moved there and back, the days between were
    // billed twice or not at all: retest19 #1, #2).
    const moves =
      changes.start_date !== undefined &&
      changes.start_date !== before.start_date &&
      (await pendingInvoiceItems(tx.db, before.id)).some((item) => item.kind !== 'one_off');
    const billedUntil =
      asCreated ?? rescheduledBilling(before, changes, !moves) ?? billingResumed(before, changes);
    if (billedUntil !== before.billed_until) changes.billed_until = billedUntil;
    if (asCreated === undefined && plan.mode === 'nothing')
      plan = await daysBeforeNewSchedule(tx, before, changes, billedUntil);
    if (before.billed_until === null && billedUntil !== null && plan.mode === 'nothing') {
      const resumed = await priceOfResumedPeriod(
        tx,
        { ...before, ...changes } as SubscriptionRow,
        billedUntil,
      );
      if (resumed) {
        changes.billed_until = resumed.billedUntil;
        plan = resumed.plan;
      }
    }
  }
  const usageClosed = usageClosedByNewStart(before, changes);
  if (usageClosed !== undefined) changes.usage_invoiced_until = usageClosed;
  const recounted = discountMovedWithStart(before, changes);
  if (recounted) changes.discount = JSON.stringify(recounted);
  if (to !== 'canceled' || before.status === 'canceled') {
    const pending = periodEndPending(before, changes);
    if (pending) return pending;
  }
  // Served no more on the change's day (an end_date before it): no period starts there, so the
  // change goes now, with its event, not at the renewal that finds it can never be made.
  const change = before.scheduled_change;
  if (change && typeof changes.end_date === 'string' && changes.end_date < change.effective_date)
    changes.scheduled_change = null;
  // Unchanged when the columns are (the breakdown follows plan, version and quantity).
  const compared = { ...before, ...changes, price_breakdown: before.price_breakdown };
  if (Object.keys(previousValues(before, compared)).length === 0) {
    return { kind: 'updated', subscription: before, invoice: undefined };
  }
  const canceling = to === 'canceled' && before.status !== 'canceled';
  const after = await subscriptions.updateSubscription(tx.db, id, {
    ...changes,
    // On a clock, canceled at the clock's time (in real time the database stamps now()).
    ...(canceling
      ? {
          cancel_at: null,
          canceled_at: before.clock_time ?? undefined,
          paused_at: null,
          resumes_at: null,
          scheduled_change: null,
        }
      : {}),
  });
  if (canceling) await stopRetries(tx, id);
  // Unpaid: never collected automatically, no retry stays scheduled; active again: the invoices
  // issued while unpaid are collected (as when its failed invoices are paid). Past due made
  // active by hand: its dunning ends (the admin's word stands: a retry failing later made it
  // past_due again, and its last one canceled it), its invoices stay owed (dunning1 F2).
  if (to === 'unpaid' && before.status !== 'unpaid') await stopRetries(tx, id);
  if (to === 'active' && before.status === 'past_due') await stopRetries(tx, id);
  if (to === 'active' && before.status === 'unpaid')
    await resumeCollection(tx, id, before.clock_time ?? undefined);
  emitChange(tx, before, after);
  emitScheduledChangeDropped(tx, before, after);
  const billed = await performProration(tx, actor.tenantId, after, plan);
  return { kind: 'updated', ...billed };
}

/**
 * A trialing subscription's schedule must give its first period after the trial an end within
 * the calendar, as a change made to an active one must by its current period: a move to a
 * yearly plan near 9999-12-31 would otherwise be kept, and never be billed (retest9 #2). The
 * field named is the one that moved the schedule.
 */
function firstPeriodAfterTrialBeyondCalendar(
  after: SubscriptionRow,
  patch: SubscriptionPatchInput,
): { kind: 'invalid'; errors: FieldErrors } | undefined {
  if (after.status !== 'trialing' || after.trial_end === null) return undefined;
  const anchor = billingAnchor(after);
  try {
    periodContaining(anchor, after.billing_interval, after.interval_count, anchor);
    return undefined;
  } catch (error) {
    if (!(error instanceof PeriodBeyondCalendarError)) throw error;
    const fields = ['plan_id', 'billing_interval', 'trial_end', 'start_date'] as const;
    const field = fields.find((name) => patch[name] !== undefined) ?? 'trial_end';
    return {
      kind: 'invalid',
      errors: [
        {
          field: `/${field}`,
          message: `the first billing period after the trial, from ${anchor}, would end after ${LAST_DATE}: dates in this API have four-digit years`,
        },
      ],
    };
  }
}

/**
 * A repeating discount whose months have not begun (its first day is after today) when the start
 * date moves: its months count from the new first invoice, as they would had it been given with
 * the subscription so (a future one's first N invoices). Undefined when nothing moves.
 */
function discountMovedWithStart(before: SubscriptionRow, changes: SubscriptionPatch): Discount | undefined {
  if (changes.start_date === undefined || changes.start_date === before.start_date) return undefined;
  const today = dayOf(subscriptionNow(before));
  if (before.discount?.from === undefined || before.discount.from <= today) return undefined;
  const after = { ...before, ...changes } as SubscriptionRow;
  const firstDay = discountFirstDay(
    today,
    after.billed_until,
    after.status === 'trialing' ? after.start_date : null,
  );
  return recountedDiscount(before.discount, firstDay);
}

/**
 * A new start date moves billing to the new schedule's first period from the old billed_until:
 * the days in between (the end of a period of the new schedule) were served and billed by no
 * invoice. They are charged as an item of that period's price for those days, which the next
 * invoice bills; else moving the start date before each renewal would never bill anything.
 */
async function daysBeforeNewSchedule(
  tx: Tx,
  before: SubscriptionRow,
  changes: SubscriptionPatch,
  billedUntil: string | null,
): Promise<ProrationPlan> {
  const nothing = { mode: 'nothing' } as const;
  const start = changes.start_date;
  if (start === undefined || start === before.start_date || before.billed_until === null) return nothing;
  const after = { ...before, ...changes } as SubscriptionRow;
  if (!BILLED_BY_RENEWALS.has(after.status)) return nothing;
  if (billedUntil !== null && billedUntil < before.billed_until) {
    // Billing goes on from an earlier day (rescheduledBilling): the days from it to the old
    // billed_until, billed by the old schedule's period, are credited at what was paid for them.
    const old = periodContaining(
      billingAnchor(before),
      before.billing_interval,
      before.interval_count,
      dayOf(new Date(Date.parse(`${before.billed_until}T00:00:00Z`) - 86_400_000)),
    );
    // A period whose invoice was voided (and nothing bills it) was never paid: nothing to credit
    // (invariants1 #1: its list price went to the balance).
    if (!(await periodBilled(tx, before, old))) return nothing;
    const credited = await creditedPrice(tx, before, old, billedUntil);
    const items = prorationItems(old, billedUntil, credited, undefined, before.billed_until);
    return items.length === 0
      ? nothing
      : { mode: 'items', items, invoiceNow: false, period: old, day: billedUntil, shorten: credited.shorten };
  }
  // Not before the new start date: a start moved later serves nothing before it.
  const from = start > before.billed_until ? start : before.billed_until;
  if (billedUntil === null || billedUntil <= from) return nothing;
  const period = periodContaining(billingAnchor(after), after.billing_interval, after.interval_count, from);
  if (period.end !== billedUntil) return nothing;
  const items = prorationItems(period, from, undefined, {
    amount: after.plan_cost,
    label: await priceLabel(tx, after),
  });
  return items.length === 0 ? nothing : { mode: 'items', items, invoiceNow: false, period, day: from };
}

export interface CancelInput {
  /** `now`, or the end of the current billing period. */
  at: 'now' | 'period_end';
  reason?: string | undefined;
}

export type CancelOutcome =
  | { kind: 'canceled' | 'scheduled'; subscription: SubscriptionRow }
  | { kind: 'missing' }
  | { kind: 'stale'; current: SubscriptionRow }
  | { kind: 'already-canceled'; current: SubscriptionRow };

/**
 * Cancels now (status canceled, canceled_at now), or at the end of the current billing period:
 * then `cancel_at` is set and the subscription stays as it is until that moment, when it becomes
 * canceled with canceled_at = cancel_at (see performDueCancellations). On a test clock, "now" and
 * the current period are the clock's.
 */
export async function cancelSubscription(
  ctx: ServiceContext,
  actor: Actor,
  id: string,
  input: CancelInput,
  ifMatch?: VersionCondition,
): Promise<CancelOutcome> {
  // Canceled now, the period being served is billed in full (no proration): its renewal first,
  // if due and not performed yet, so that it is. (At the period's end, the renewal comes anyway.)
  const caughtUp =
    input.at === 'now'
      ? await performDueRenewals(ctx, actor.tenantId, id, { ifMatch, allows: (s) => s.status !== 'canceled' })
      : undefined;
  return inTenant(ctx, actor, async (tx): Promise<CancelOutcome> => {
    const before = await lockAfterDueCancellations(tx, id);
    if (!before) return { kind: 'missing' };
    if (!matchesAfterRenewals(ifMatch, before.version, caughtUp)) return { kind: 'stale', current: before };
    if (before.status === 'canceled') return { kind: 'already-canceled', current: before };
    await onClockOf(tx, before);
    const reason = input.reason ?? before.cancel_reason;
    // A paused subscription has no period being served (the pause credited it), nor has one whose
    // end_date has passed (a cancellation at a period's end would come after its service ended):
    // it ends now.
    const served = before.end_date === null || before.end_date >= dayOf(subscriptionNow(before));
    if (input.at === 'now' || before.status === 'paused' || !served) {
      const after = await subscriptions.updateSubscription(tx.db, id, {
        status: 'canceled',
        canceled_at: before.clock_time ?? undefined, // the database stamps now() in real time
        cancel_at: null,
        cancel_reason: reason,
        paused_at: null,
        resumes_at: null,
        scheduled_change: null,
      });
      await stopRetries(tx, id);
      emitChange(tx, before, after, 'subscription.canceled');
      emitScheduledChangeDropped(tx, before, after);
      return { kind: 'canceled', subscription: after };
    }
    // The end of the period served today (on its clock): a trial's end during one (retest8 #2).
    const end = servedPeriodEnd(before, dayOf(subscriptionNow(before)));
    const cancelAt = new Date(`${end}T00:00:00.000Z`);
    if (before.cancel_at?.getTime() === cancelAt.getTime() && before.cancel_reason === reason) {
      return { kind: 'scheduled', subscription: before };
    }
    const after = await subscriptions.updateSubscription(tx.db, id, {
      cancel_at: cancelAt,
      cancel_reason: reason,
      scheduled_change: null,
    });
    emitChange(tx, before, after, 'subscription.cancellation_scheduled');
    emitScheduledChangeDropped(tx, before, after);
    return { kind: 'scheduled', subscription: after };
  });
}

export type WithdrawCancellationOutcome =
  | { kind: 'withdrawn'; subscription: SubscriptionRow }
  | { kind: 'missing' }
  | { kind: 'stale'; current: SubscriptionRow }
  | { kind: 'not-scheduled' }
  | { kind: 'already-canceled'; current: SubscriptionRow };

/**
 * Undoes a cancellation scheduled for the period's end, before it comes (one already due is
 * performed first, and then it is too late: canceled is final). The change it dropped stays
 * dropped.
 */
export function withdrawCancellation(
  ctx: ServiceContext,
  actor: Actor,
  id: string,
  ifMatch?: VersionCondition,
): Promise<WithdrawCancellationOutcome> {
  return inTenant(ctx, actor, async (tx): Promise<WithdrawCancellationOutcome> => {
    const before = await lockAfterDueCancellations(tx, id);
    if (!before) return { kind: 'missing' };
    if (!satisfies(ifMatch, before.version)) return { kind: 'stale', current: before };
    if (before.status === 'canceled') return { kind: 'already-canceled', current: before };
    if (!before.cancel_at) return { kind: 'not-scheduled' };
    await onClockOf(tx, before);
    const after = await subscriptions.updateSubscription(tx.db, id, { cancel_at: null, cancel_reason: null });
    emitChange(tx, before, after, 'subscription.cancellation_withdrawn');
    return { kind: 'withdrawn', subscription: after };
  });
}

/**
 * Events of a change to a subscription on a test clock happen at the clock's time. A change asked
 * for while the clock is advancing is refused (ClockAdvancingError, 409): the clock's time is
 * already the new one, while the worker has not yet billed the periods on the way, which the
 * change would reach (a new quantity or coupon billed months served before it). A worker's step
 * has set its own time (its due time on the way) and goes on.
 */
export async function onClockOf(tx: Tx, subscription: SubscriptionRow): Promise<void> {
  if (!subscription.test_clock_id) return;
  if (tx.occurredAt() === undefined) await readyClock(tx, subscription.test_clock_id);
  if (subscription.clock_time) tx.occurAt(subscription.clock_time);
}

export type DeleteSubscriptionOutcome =
  | { kind: 'deleted' }
  | { kind: 'missing' }
  | { kind: 'stale'; current: SubscriptionRow }
  | { kind: 'has-invoices' }
  /** Usage counted for it: its events must stay billed to it. */
  | { kind: 'has-usage' };

/** Invoices keep a subscription: a subscription that was ever invoiced is canceled, not deleted. */
export async function deleteSubscription(
  ctx: ServiceContext,
  actor: Actor,
  id: string,
  ifMatch?: VersionCondition,
): Promise<DeleteSubscriptionOutcome> {
  try {
    return await deleteUnlessInvoiced(ctx, actor, id, ifMatch);
  } catch (error) {
    if (isForeignKeyViolation(error, 'invoices_tenant_id_subscription_id_fkey'))
      return { kind: 'has-invoices' };
    throw error;
  }
}

function deleteUnlessInvoiced(
  ctx: ServiceContext,
  actor: Actor,
  id: string,
  ifMatch?: VersionCondition,
): Promise<DeleteSubscriptionOutcome> {
  return inTenant(ctx, actor, async (tx): Promise<DeleteSubscriptionOutcome> => {
    // Locked first: an event recorded meanwhile (which reads it in share mode) is seen below.
    const current = await subscriptions.lockSubscription(tx.db, id);
    if (current && !satisfies(ifMatch, current.version)) return { kind: 'stale', current };
    // Its counted events would say they are billed to a subscription that no longer exists.
    if (current && (await hasCountedUsage(tx.db, id))) return { kind: 'has-usage' };
    // Its feature links and items (all pending: an invoice refuses the delete) go with it: each
    // says so in the feed, as an unlink or an item deleted alone would. The links are deleted
    // here, each announced by whoever deleted it (a feature's delete may take a canceled one's).
    const items = current ? await pendingInvoiceItems(tx.db, id) : [];
    const features = current ? await subscriptions.unlinkAllFeatures(tx.db, id) : [];
    const deleted = await subscriptions.deleteSubscription(tx.db, id);
    if (!deleted) return { kind: 'missing' };
    await onClockOf(tx, deleted);
    // Never invoiced (an invoice refuses the delete): its coupon billed nothing.
    if (deleted.discount) await giveBackRedemption(tx, deleted.discount.coupon_id);
    for (const feature of features)
      tx.emit({
        type: 'subscription_feature.unlinked',
        resource_type: 'subscription',
        resource_id: id,
        data: { subscription_id: id, feature: toFeatureResponse(feature) },
      });
    for (const item of items) emitItemDropped(tx, item);
    tx.emit({
      type: 'subscription.deleted',
      resource_type: 'subscription',
      resource_id: id,
      data: toSubscriptionResponse(deleted),
    });
    return { kind: 'deleted' };
  });
}

/** The subscription's features by name; undefined when there is no such subscription. */
export function listSubscriptionFeatures(
  ctx: ServiceContext,
  actor: Actor,
  id: string,
): Promise<FeatureRow[] | undefined> {
  return inTenant(ctx, actor, async (tx) => {
    const [subscription, features] = await Promise.all([
      subscriptions.findSubscription(tx.db, id),
      subscriptions.featuresOfSubscriptions(tx.db, [id]),
    ]);
    return subscription && (features.get(id) ?? []);
  });
}

export type LinkOutcome =
  | { kind: 'linked' | 'already-linked'; feature: FeatureRow }
  /** A canceled subscription is final: its features stay as they were. */
  | { kind: 'canceled' }
  | { kind: 'no-feature' }
  | { kind: 'no-subscription' }
  | { kind: 'stale'; current: SubscriptionRow };

/**
 * Idempotent: the state afterwards is the same whether or not the link existed. A new link is a
 * change of the subscription: its version moves and `subscription_feature.linked` is recorded.
 */
export async function linkFeature(
  ctx: ServiceContext,
  actor: Actor,
  subscriptionId: string,
  featureId: string,
  ifMatch?: VersionCondition,
): Promise<LinkOutcome> {
  try {
    return await linkIfBothExist(ctx, actor, subscriptionId, featureId, ifMatch);
  } catch (error) {
    // The feature deleted by a transaction that committed after our read: it is gone (404).
    if (isForeignKeyViolation(error, 'subscription_features_feature_id_fkey')) return { kind: 'no-feature' };
    throw error;
  }
}

function linkIfBothExist(
  ctx: ServiceContext,
  actor: Actor,
  subscriptionId: string,
  featureId: string,
  ifMatch?: VersionCondition,
): Promise<LinkOutcome> {
  return inTenant(ctx, actor, async (tx): Promise<LinkOutcome> => {
    const [subscription, feature] = await Promise.all([
      subscriptions.lockSubscription(tx.db, subscriptionId),
      findFeature(tx.db, featureId),
    ]);
    if (!feature) return { kind: 'no-feature' };
    if (!subscription) return { kind: 'no-subscription' };
    if (!satisfies(ifMatch, subscription.version)) return { kind: 'stale', current: subscription };
    if (subscription.status === 'canceled') return { kind: 'canceled' };
    await onClockOf(tx, subscription);
    const linked = await subscriptions.linkFeature(tx.db, subscriptionId, featureId);
    // Missing: the feature was deleted since we read it (the subscription is locked).
    if (linked === 'missing') return { kind: 'no-feature' };
    if (linked === 'existed') return { kind: 'already-linked', feature };
    await subscriptions.updateSubscription(tx.db, subscriptionId, {});
    tx.emit({
      type: 'subscription_feature.linked',
      resource_type: 'subscription',
      resource_id: subscriptionId,
      data: { subscription_id: subscriptionId, feature: toFeatureResponse(feature) },
    });
    return { kind: 'linked', feature };
  });
}

export type UnlinkOutcome =
  | { kind: 'unlinked' }
  | { kind: 'not-linked' }
  /** A canceled subscription is final: its features stay as they were. */
  | { kind: 'canceled' }
  | { kind: 'stale'; current: SubscriptionRow };

export function unlinkFeature(
  ctx: ServiceContext,
  actor: Actor,
  subscriptionId: string,
  featureId: string,
  ifMatch?: VersionCondition,
): Promise<UnlinkOutcome> {
  return inTenant(ctx, actor, async (tx): Promise<UnlinkOutcome> => {
    const subscription = await subscriptions.lockSubscription(tx.db, subscriptionId);
    if (subscription && !satisfies(ifMatch, subscription.version))
      return { kind: 'stale', current: subscription };
    if (subscription?.status === 'canceled') {
      // Final, but a link that is not there (its feature deleted, say) is not there: 404.
      const held = (await subscriptions.featuresOfSubscriptions(tx.db, [subscriptionId])).get(subscriptionId);
      return held?.some((f) => f.id === featureId) ? { kind: 'canceled' } : { kind: 'not-linked' };
    }
    const feature = await findFeature(tx.db, featureId);
    if (!subscription || !feature || !(await subscriptions.unlinkFeature(tx.db, subscriptionId, featureId))) {
      return { kind: 'not-linked' };
    }
    await onClockOf(tx, subscription);
    await subscriptions.updateSubscription(tx.db, subscriptionId, {});
    tx.emit({
      type: 'subscription_feature.unlinked',
      resource_type: 'subscription',
      resource_id: subscriptionId,
      data: { subscription_id: subscriptionId, feature: toFeatureResponse(feature) },
    });
    return { kind: 'unlinked' };
  });
}
