// Coupons, and discounts: a coupon applied to a subscription (billing/discounts.ts for what a
// discount does to an invoice; services/invoices.ts applies it). A coupon's terms are final; a
// redemption is counted under the coupon's row lock, so max_redemptions holds however many
// subscriptions redeem it at once.
import { discountEnd, discountFirstDay } from '../billing/discounts.js';
import { periodContaining } from '../billing/periods.js';
import { billingAnchor, dayOf, subscriptionNow } from '../billing/subscription-time.js';
import type { CouponDuration, CouponRow, Discount, SubscriptionRow } from '../database/schema.js';
import * as coupons from '../queries/coupons.js';
import * as subscriptions from '../queries/subscriptions.js';
import { couponValid, toCouponResponse } from '../responses/coupons.js';
import {
  type Actor,
  inTenant,
  type Page,
  previousValues,
  type ServiceContext,
  satisfies,
  toPage,
  type Tx,
  type VersionCondition,
} from './context.js';
import { emitChange, lockAfterDueCancellations, onClockOf } from './subscriptions.js';

type FieldErrors = Array<{ field: string; message: string }>;

export interface CouponInput {
  name: string;
  percent_off?: string | undefined;
  amount_off?: string | undefined;
  duration: CouponDuration;
  duration_in_months?: number | undefined;
  max_redemptions?: number | undefined;
  redeem_by?: string | undefined;
  plan_ids?: string[] | undefined;
}

export type CreateCouponOutcome =
  { kind: 'created'; coupon: CouponRow } | { kind: 'invalid'; errors: FieldErrors };

/** The rules the schema cannot say: one kind of amount, months with repeating only, a future redeem_by. */
function couponErrors(input: CouponInput, now: Date): FieldErrors {
  const errors: FieldErrors = [];
  if (input.percent_off !== undefined && input.amount_off !== undefined)
    errors.push({
      field: '/amount_off',
      message: 'cannot be sent with percent_off: a coupon takes one of them',
    });
  if (input.percent_off === undefined && input.amount_off === undefined)
    errors.push({ field: '/percent_off', message: 'or amount_off is required (exactly one of them)' });
  if (input.percent_off !== undefined && Number(input.percent_off) === 0)
    errors.push({ field: '/percent_off', message: 'must be above 0' });
  if (input.amount_off !== undefined && Number(input.amount_off) === 0)
    errors.push({ field: '/amount_off', message: 'must be above 0' });
  if (input.duration === 'repeating' && input.duration_in_months === undefined)
    errors.push({ field: '/duration_in_months', message: 'is required with duration repeating' });
  if (input.duration !== 'repeating' && input.duration_in_months !== undefined)
    errors.push({ field: '/duration_in_months', message: 'is only for duration repeating' });
  if (input.redeem_by !== undefined && new Date(input.redeem_by) <= now)
    errors.push({ field: '/redeem_by', message: 'must be in the future' });
  return errors;
}

export function createCoupon(
  ctx: ServiceContext,
  actor: Actor,
  input: CouponInput,
): Promise<CreateCouponOutcome> {
  const errors = couponErrors(input, new Date());
  if (errors.length > 0) return Promise.resolve({ kind: 'invalid', errors });
  return inTenant(ctx, actor, async (tx): Promise<CreateCouponOutcome> => {
    // Ids in any case (as everywhere), stored as PostgreSQL writes them: compared with plan_id later.
    const planIds = (input.plan_ids ?? []).map((id) => id.toLowerCase());
    // The schema's uniqueItems compares the text: the same id in two cases is caught here.
    const twice = planIds.findIndex((id, i) => planIds.indexOf(id) !== i);
    if (twice >= 0)
      return {
        kind: 'invalid',
        errors: [
          {
            field: `/plan_ids/${twice}`,
            message: `names the same plan as /plan_ids/${planIds.indexOf(planIds[twice]!)}`,
          },
        ],
      };
    const known = await coupons.existingPlanIds(tx.db, planIds);
    const unknown = planIds.findIndex((id) => !known.has(id));
    if (unknown >= 0)
      return { kind: 'invalid', errors: [{ field: `/plan_ids/${unknown}`, message: 'no such plan' }] };
    const coupon = await coupons.insertCoupon(tx.db, {
      name: input.name,
      percent_off: input.percent_off ?? null,
      amount_off: input.amount_off ?? null,
      duration: input.duration,
      duration_in_months: input.duration_in_months ?? null,
      max_redemptions: input.max_redemptions ?? null,
      redeem_by: input.redeem_by ?? null,
      plan_ids: planIds,
    });
    tx.emit({
      type: 'coupon.created',
      resource_type: 'coupon',
      resource_id: coupon.id,
      data: toCouponResponse(coupon),
    });
    return { kind: 'created', coupon };
  });
}

export function listCoupons(
  ctx: ServiceContext,
  actor: Actor,
  filter: { limit: number; after?: string | undefined },
): Promise<Page<CouponRow>> {
  return inTenant(ctx, actor, async (tx) => toPage(await coupons.listCoupons(tx.db, filter), filter.limit));
}

export function getCoupon(ctx: ServiceContext, actor: Actor, id: string): Promise<CouponRow | undefined> {
  return inTenant(ctx, actor, (tx) => coupons.findCoupon(tx.db, id));
}

/** No more redemptions; its discounts keep running. Deleting it again changes nothing. */
export function deleteCoupon(ctx: ServiceContext, actor: Actor, id: string): Promise<CouponRow | undefined> {
  return inTenant(ctx, actor, async (tx) => {
    const coupon = await coupons.lockCoupon(tx.db, id);
    if (!coupon || coupon.deleted_at !== null) return coupon;
    const deleted = await coupons.markCouponDeleted(tx.db, id, new Date());
    tx.emit({
      type: 'coupon.deleted',
      resource_type: 'coupon',
      resource_id: id,
      data: toCouponResponse(deleted),
      previous: { deleted_at: null, valid: couponValid(coupon, new Date()) },
    });
    return deleted;
  });
}

export type RedeemRefusal = { kind: 'invalid'; errors: FieldErrors };

/**
 * The discount `couponId` gives a subscription on `planId` from `at`, its redemption counted; or
 * why it cannot be applied (reported at `field`). A repeating one's months count from `firstDay`
 * (discountFirstDay).
 */
export async function redeem(
  tx: Tx,
  couponId: string,
  planId: string | null,
  at: Date,
  firstDay: string,
  field: string,
): Promise<Discount | RedeemRefusal> {
  const refuse = (message: string): RedeemRefusal => ({ kind: 'invalid', errors: [{ field, message }] });
  const coupon = await coupons.lockCoupon(tx.db, couponId);
  if (!coupon) return refuse('no such coupon');
  if (coupon.deleted_at !== null) return refuse('the coupon was deleted');
  // In the subscription's time: on a test clock, a simulation meets the coupon closed when the
  // real subscription would (applied on the clock's July 1st, a coupon redeemable until June 1st is not).
  if (coupon.redeem_by !== null && at > coupon.redeem_by)
    return refuse(`the coupon could be applied until ${coupon.redeem_by.toISOString()}`);
  if (coupon.max_redemptions !== null && coupon.times_redeemed >= coupon.max_redemptions)
    return refuse(
      `the coupon was used up: applied ${coupon.max_redemptions} ${coupon.max_redemptions === 1 ? 'time' : 'times'}, its max_redemptions`,
    );
  // plan_id as the request spelled it (any case); the coupon's as stored (lower case).
  if (coupon.plan_ids.length > 0 && (planId === null || !coupon.plan_ids.includes(planId.toLowerCase())))
    return refuse("the coupon is for other plans than the subscription's");
  const redeemed = await coupons.countRedemption(tx.db, couponId);
  const data = toCouponResponse(redeemed);
  tx.emit({
    type: 'coupon.updated',
    resource_type: 'coupon',
    resource_id: couponId,
    data,
    previous: previousValues(toCouponResponse(coupon), data),
  });
  return {
    coupon_id: redeemed.id,
    name: redeemed.name,
    percent_off: redeemed.percent_off,
    amount_off: redeemed.amount_off,
    duration: redeemed.duration,
    duration_in_months: redeemed.duration_in_months,
    plan_ids: redeemed.plan_ids,
    start: at.toISOString(),
    ...monthsFrom(redeemed.duration_in_months, firstDay),
  };
}

/**
 * A repeating discount counted again from `firstDay`, for a subscription whose first invoice moved
 * before the discount's months began (or that resumes from a pause they began in); undefined
 * when nothing changes, or for a discount of another kind.
 */
export function recountedDiscount(discount: Discount | null, firstDay: string): Discount | undefined {
  if (discount?.from === undefined || discount.duration_in_months === null) return undefined;
  if (discount.from === firstDay && !discount.awaiting_resume) return undefined;
  const { awaiting_resume: _waiting, ...counted } = discount;
  return { ...counted, ...monthsFrom(discount.duration_in_months, firstDay) };
}

/** A repeating discount's months, counted from `firstDay` (its `from` and `end`); end null for others. */
export function monthsFrom(months: number | null, firstDay: string): Pick<Discount, 'end' | 'from'> {
  return months === null
    ? { end: null }
    : { end: discountEnd(firstDay, months).toISOString(), from: firstDay };
}

/**
 * Gives back the redemption a subscription deleted before any invoice counted: the discount
 * billed nothing, and a coupon of few redemptions would otherwise stay used up by it.
 */
export async function giveBackRedemption(tx: Tx, couponId: string): Promise<void> {
  const coupon = await coupons.lockCoupon(tx.db, couponId);
  if (!coupon || coupon.times_redeemed === 0) return;
  const after = await coupons.uncountRedemption(tx.db, couponId);
  const data = toCouponResponse(after);
  tx.emit({
    type: 'coupon.updated',
    resource_type: 'coupon',
    resource_id: couponId,
    data,
    previous: previousValues(toCouponResponse(coupon), data),
  });
}

export type DiscountOutcome =
  | { kind: 'changed'; subscription: SubscriptionRow }
  | { kind: 'missing' }
  | { kind: 'stale'; current: SubscriptionRow }
  | { kind: 'canceled' }
  | { kind: 'no-discount' }
  | RedeemRefusal;

/** Applies a coupon to a subscription from now (its clock's), replacing its discount. */
export function applyDiscount(
  ctx: ServiceContext,
  actor: Actor,
  id: string,
  couponId: string,
  ifMatch?: VersionCondition,
): Promise<DiscountOutcome> {
  return inTenant(ctx, actor, async (tx): Promise<DiscountOutcome> => {
    const before = await lockAfterDueCancellations(tx, id);
    if (!before) return { kind: 'missing' };
    if (!satisfies(ifMatch, before.version)) return { kind: 'stale', current: before };
    if (before.status === 'canceled') return { kind: 'canceled' };
    await onClockOf(tx, before);
    const now = subscriptionNow(before);
    const resumesIn =
      before.status === 'paused' && before.resumes_at
        ? periodContaining(
            billingAnchor(before),
            before.billing_interval,
            before.interval_count,
            before.resumes_at.slice(0, 10),
          ).start
        : null;
    const firstDay = discountFirstDay(
      dayOf(now),
      before.billed_until,
      before.status === 'trialing' ? before.start_date : null,
      resumesIn,
    );
    const redeemed = await redeem(tx, couponId, before.plan_id, now, firstDay, '/coupon_id');
    if ('kind' in redeemed) return redeemed;
    // Paused: its months wait for the resume (services/pauses.ts), and no invoice made meanwhile
    // (a renewal billing the usage before the pause) takes or ends it.
    const waits = before.status === 'paused' && redeemed.from !== undefined;
    const discount: Discount = waits ? { ...redeemed, awaiting_resume: true } : redeemed;
    const after = await subscriptions.updateSubscription(tx.db, id, { discount: JSON.stringify(discount) });
    emitChange(tx, before, after);
    return { kind: 'changed', subscription: after };
  });
}

/** Invoices made from now on are not discounted. */
export function removeDiscount(
  ctx: ServiceContext,
  actor: Actor,
  id: string,
  ifMatch?: VersionCondition,
): Promise<DiscountOutcome> {
  return inTenant(ctx, actor, async (tx): Promise<DiscountOutcome> => {
    const before = await subscriptions.lockSubscription(tx.db, id);
    if (!before) return { kind: 'missing' };
    if (!satisfies(ifMatch, before.version)) return { kind: 'stale', current: before };
    if (before.discount === null) return { kind: 'no-discount' };
    await onClockOf(tx, before);
    const after = await endDiscount(tx, before);
    return { kind: 'changed', subscription: after };
  });
}

/**
 * Removes a locked subscription's discount: by hand, used (a once discount), or run out. A
 * repeating one run out is kept (`ended_discount`, internal): its months invoiced again after a
 * void are still its own (invoices.ts, discountOfPeriod). One removed by hand before its end is
 * not: invoices made from then on are not discounted.
 */
export async function endDiscount(tx: Tx, before: SubscriptionRow, ranOut = false): Promise<SubscriptionRow> {
  const keep = ranOut && before.discount?.from !== undefined;
  const after = await subscriptions.updateSubscription(tx.db, before.id, {
    discount: null,
    ...(keep ? { ended_discount: JSON.stringify(before.discount) } : {}),
  });
  emitChange(tx, before, after);
  return after;
}

/** Gives back a once discount that a draft, voided, used up (as the subscription had it). */
export async function giveBackDiscount(tx: Tx, before: SubscriptionRow, discount: unknown): Promise<void> {
  const after = await subscriptions.updateSubscription(tx.db, before.id, {
    discount: JSON.stringify(discount),
  });
  emitChange(tx, before, after);
}
