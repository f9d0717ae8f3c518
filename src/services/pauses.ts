// Pauses: nothing is invoiced for the time a subscription is paused. Pausing on day D of a period
// [S, E) already invoiced credits its unused days [D, E) (a pending proration credit, by the day);
// renewals during the pause invoice nothing (services/collection.ts); resuming on day R of the
// period [S', E') then in force charges [R, E') and invoices it at once with what is pending, on
// the same schedule. A paused subscription counts zero in MRR (its status, in its versions).
import { parseSignedAmount } from '../billing/money.js';
import { type Period, periodContaining } from '../billing/periods.js';
import { prorationItems } from '../billing/proration.js';
import { billingAnchor, dayOf, lastDayServed, subscriptionNow } from '../billing/subscription-time.js';
import type { InvoiceItemRow, InvoiceRow, PausedCharges, SubscriptionRow } from '../database/schema.js';
import { deletePendingItem, pendingInvoiceItems, prorationItemsIn } from '../queries/invoice-items.js';
import { importedPeriodPrice } from '../queries/events.js';
import { findInvoiceForPeriod } from '../queries/invoices.js';
import * as subscriptions from '../queries/subscriptions.js';
import { type Actor, inTenant, type ServiceContext, type Tx, type VersionCondition } from './context.js';
import { issueAndCollect, matchesAfterRenewals, performDueRenewals, type Settle } from './collection.js';
import { recountedDiscount } from './coupons.js';
import { emitItemDropped, invoiceForPeriod } from './invoices.js';
import {
  chargeFor,
  chargesPauseShortens,
  creditedPrice,
  performProration,
  periodBilled,
  priceLabel,
  restorePausedCharges,
} from './prorations.js';
import { emitChange, lockAfterDueCancellations, onClockOf, seenBefore } from './subscriptions.js';

export type PauseOutcome =
  | { kind: 'changed'; subscription: SubscriptionRow; invoice?: InvoiceRow | undefined }
  | { kind: 'missing' }
  | { kind: 'stale'; current: SubscriptionRow }
  | { kind: 'wrong-status'; status: SubscriptionRow['status']; allowed: 'active' | 'paused' }
  | { kind: 'cancellation-scheduled' }
  /** Its service ended before today (its end_date): nothing is left to pause. */
  | { kind: 'ended'; lastDay: string }
  | { kind: 'invalid'; errors: Array<{ field: string; message: string }> };

const system = (tenantId: string): Actor => ({ tenantId, keyId: 'system' });

/** The period containing `day` on the subscription's schedule. */
const periodOf = (s: SubscriptionRow, day: string) =>
  periodContaining(billingAnchor(s), s.billing_interval, s.interval_count, day);

export async function pauseSubscription(
  ctx: ServiceContext,
  actor: Actor,
  id: string,
  input: { resumes_at?: string | undefined },
  ifMatch?: VersionCondition,
): Promise<PauseOutcome> {
  // The unused days credited are those of a period invoiced: its renewal first, if due.
  const caughtUp = await performDueRenewals(ctx, actor.tenantId, id, {
    ifMatch,
    // Trialing too: a trial over whose renewal has not run yet is active once it has. Not for a
    // pause refused for its resumes_at (422): that one writes nothing either.
    allows: (s) =>
      (s.status === 'active' || s.status === 'trialing') &&
      s.cancel_at === null &&
      (input.resumes_at === undefined || input.resumes_at > dayOf(subscriptionNow(s))),
  });
  return inTenant(ctx, actor, async (tx): Promise<PauseOutcome> => {
    const before = await lockAfterDueCancellations(tx, id);
    if (!before) return { kind: 'missing' };
    if (!matchesAfterRenewals(ifMatch, before.version, caughtUp)) return { kind: 'stale', current: before };
    if (before.status !== 'active') return { kind: 'wrong-status', status: before.status, allowed: 'active' };
    if (before.cancel_at !== null) return { kind: 'cancellation-scheduled' };
    await onClockOf(tx, before);
    const now = subscriptionNow(before);
    const today = dayOf(now);
    const ended = lastDayServed(before);
    if (ended && ended.lastDay < today) return { kind: 'ended', lastDay: ended.lastDay };
    if (input.resumes_at !== undefined && input.resumes_at <= today)
      return {
        kind: 'invalid',
        errors: [{ field: '/resumes_at', message: `must be after today (${today})` }],
      };
    // A repeating discount whose months have not begun waits for the resume to count them: else
    // they ran during the pause, or its usage invoices took them (services/coupons.ts).
    const waiting =
      before.discount?.from !== undefined && before.discount.from > today && !before.discount.awaiting_resume;
    // The unused days of a period already invoiced (and served), credited on the next invoice;
    // pending charges that paid some of them are shortened instead, and kept as they were for a
    // resume in the period to bring back (resume).
    const period = today >= before.start_date ? periodOf(before, today) : undefined;
    const credit =
      period && (await periodBilled(tx, before, period))
        ? await pauseCredit(tx, before, period, today)
        : undefined;
    const pausedCharges = credit?.pausedCharges ?? null;
    const after = await subscriptions.updateSubscription(tx.db, id, {
      status: 'paused',
      paused_at: now,
      resumes_at: input.resumes_at ?? null,
      paused_charges: pausedCharges && JSON.stringify(pausedCharges),
      ...(waiting ? { discount: JSON.stringify({ ...before.discount, awaiting_resume: true }) } : {}),
    });
    emitChange(tx, before, after, 'subscription.paused');
    if (period && credit) {
      await performProration(tx, actor.tenantId, after, {
        mode: 'items',
        items: credit.items,
        invoiceNow: false,
        period,
        day: today,
        shorten: credit.shorten,
      });
    }
    return { kind: 'changed', subscription: after };
  });
}

/**
 * What a pause of `s` on `day` of its billed `period` credits (the unused days, at what was paid
 * for them) and the pending charges it shortens instead, kept for its resume to bring back.
 */
async function pauseCredit(tx: Tx, s: SubscriptionRow, period: Period, day: string) {
  const credited = await creditedPrice(tx, s, period, day);
  const shortened = chargesPauseShortens(credited.shorten, day);
  const items = prorationItems(period, day, credited, undefined, credited.until);
  const pausedCharges: PausedCharges | null =
    shortened.length > 0
      ? {
          period_start: period.start,
          label: await priceLabel(tx, s),
          charges: shortened,
          credits: items.map((item) => item.description),
        }
      : null;
  return { items, shorten: credited.shorten, pausedCharges };
}

/**
 * A period invoice voided while its subscription is paused in that period, the pause made while
 * the invoice stood: the pause's credit was priced by what that invoice paid, and the void made
 * the change items it netted pending again (invoices.ts voidLocked). The pause is made again, on
 * its day, as a pause made now would be: crediting what is left paid and shortening those pending
 * charges, which its resume brings back (retest18 #3). Before, the resume priced the credit
 * without them and billed the paused days. `made` are the items the void made pending again.
 * Left as it is when anything but the pause's credit changed the period since the pause, when
 * the pause shortened charges already, or when another invoice billed items of the period.
 */
export async function pauseAgainAfterVoid(
  tx: Tx,
  tenantId: string,
  s: SubscriptionRow,
  period: Period,
  made: readonly InvoiceItemRow[],
  voided: string,
): Promise<void> {
  if (s.status !== 'paused' || s.paused_at === null || s.paused_charges !== null || made.length === 0) return;
  const day = dayOf(s.paused_at);
  const paused = periodOf(s, day);
  if (paused.start !== period.start || paused.end !== period.end) return;
  // Only a pause priced by the voided invoice: not after a change of the period billed by an
  // invoice of its own (always_invoice), which priced the pause instead and ended the charge
  // the void made pending again (retest21 #1).
  const billed = await prorationItemsIn(tx.db, s.id, period);
  if (billed.some((item) => item.invoice_id !== null && item.invoice_id !== voided)) return;
  const again = new Set(made.map((item) => item.id));
  const pending = (await pendingInvoiceItems(tx.db, s.id)).filter((item) => !again.has(item.id));
  // The pause's credit: pending, of its day to the period's end, and nothing pending made since.
  const credits = pending.filter(
    (item) => item.kind === 'proration_credit' && item.period_start === day && item.period_end === period.end,
  );
  if (credits.length === 0) return;
  const madeAt = credits[0]!.created_at;
  if (pending.some((item) => item.created_at >= madeAt && !credits.includes(item))) return;
  for (const item of credits) {
    const dropped = await deletePendingItem(tx.db, item.id);
    if (dropped) emitItemDropped(tx, dropped);
  }
  const credit = await pauseCredit(tx, s, period, day);
  let after = s;
  if (credit.pausedCharges) {
    // Kept for the resume: a change of the subscription (its version), with its event.
    after = await subscriptions.updateSubscription(tx.db, s.id, {
      paused_charges: JSON.stringify(credit.pausedCharges),
    });
    emitChange(tx, s, after);
  }
  await performProration(tx, tenantId, after, {
    mode: 'items',
    items: credit.items,
    invoiceNow: false,
    period,
    day,
    shorten: credit.shorten,
  });
}

export async function resumeSubscription(
  ctx: ServiceContext,
  actor: Actor,
  id: string,
  ifMatch?: VersionCondition,
): Promise<PauseOutcome> {
  // Renewals that fell during the pause first: they bill the usage of the period before it.
  const caughtUp = await performDueRenewals(ctx, actor.tenantId, id, {
    ifMatch,
    allows: (s) => s.status === 'paused',
  });
  return inTenant(ctx, actor, async (tx): Promise<PauseOutcome> => {
    const before = await subscriptions.lockSubscription(tx.db, id);
    if (!before) return { kind: 'missing' };
    if (!matchesAfterRenewals(ifMatch, before.version, caughtUp)) return { kind: 'stale', current: before };
    if (before.status !== 'paused') return { kind: 'wrong-status', status: before.status, allowed: 'paused' };
    await onClockOf(tx, before);
    return { kind: 'changed', ...(await resume(tx, actor.tenantId, before, subscriptionNow(before))) };
  });
}

/** The worker's resume on `resumes_at` (its clock's day, on a clock). */
export function resumeDue(ctx: ServiceContext, tenantId: string, subscriptionId: string, at: Date) {
  return inTenant(ctx, system(tenantId), async (tx) => {
    const before = await subscriptions.lockSubscription(tx.db, subscriptionId);
    if (!before || before.status !== 'paused' || before.resumes_at === null) return;
    if (new Date(`${before.resumes_at}T00:00:00Z`) > at) return;
    // On a test clock the step happens at its due time on the clock; in real time, now.
    if (before.test_clock_id) tx.occurAt(at);
    else await onClockOf(tx, before);
    await resumeScheduled(tx, tenantId, before, before.test_clock_id ? at : new Date());
  });
}

/**
 * The resume on `resumes_at` of a locked paused subscription, at `at`: the worker's, and the
 * upcoming invoice's preview of it (which hands the invoice a resume makes to its `settle`).
 */
export async function resumeScheduled(
  tx: Tx,
  tenantId: string,
  before: SubscriptionRow,
  at: Date,
  settle: Settle = issueAndCollect,
) {
  // As last seen before its resume day: a resume on a period's first day names the period
  // that ended in `previous`.
  seenBefore(tx, before, new Date(Date.parse(`${before.resumes_at}T00:00:00Z`) - 1));
  return resume(tx, tenantId, before, at, settle);
}

/**
 * A locked paused subscription active again from `now` (its clock's now, or the worker's due
 * time): the rest of the period in force is
 * charged and invoiced now with what is pending (renewals during the pause billed nothing, and
 * the next renewal is that period's end).
 */
async function resume(
  tx: Tx,
  tenantId: string,
  before: SubscriptionRow,
  now: Date,
  settle: Settle = issueAndCollect,
): Promise<{ subscription: SubscriptionRow; invoice: InvoiceRow | undefined }> {
  const today = dayOf(now);
  const day = today > before.start_date ? today : before.start_date;
  const period = periodOf(before, day);
  const renewing = before.billed_until !== null;
  // A repeating discount whose months had not begun when the pause did (applied before it or
  // during it) counts them from the first invoice the resume makes or leaves next that it
  // reduces: this period's (its rest, invoiced now), or the next one when the price of this one
  // was invoiced before the pause (a renewal during the pause that billed usage only does not
  // count), or when it is a fixed amount and the resume comes mid-period (the rest's invoice
  // takes a percentage only: a fixed amount is one per period invoice).
  const invoiced = await findInvoiceForPeriod(tx.db, before.id, period);
  const pricedBefore =
    invoiced !== undefined &&
    invoiced.status !== 'void' &&
    (invoiced.lines as unknown as Array<{ type: string }>).some((line) => line.type === 'subscription');
  const fixedSkipsRest = before.discount?.amount_off != null && day !== period.start;
  const appliedWhilePaused =
    before.discount?.from !== undefined &&
    before.paused_at !== null &&
    new Date(before.discount.start) >= before.paused_at;
  const recounted =
    before.discount?.awaiting_resume || appliedWhilePaused
      ? recountedDiscount(before.discount, pricedBefore || fixedSkipsRest ? period.end : period.start)
      : undefined;
  const after = await subscriptions.updateSubscription(tx.db, before.id, {
    status: 'active',
    paused_at: null,
    resumes_at: null,
    paused_charges: null,
    ...(renewing ? { billed_until: period.end } : {}),
    ...(recounted ? { discount: JSON.stringify(recounted) } : {}),
  });
  emitChange(tx, before, after, 'subscription.resumed');
  if (!renewing) return { subscription: after, invoice: undefined }; // not billed automatically
  // Resumed after its last day served (its end_date passed while paused): no day is left to bill.
  const ended = lastDayServed(before);
  if (ended && ended.lastDay < day) return { subscription: after, invoice: undefined };
  // Resumed the day it was paused, in a period nothing bills (its invoice voided before anything
  // was prorated against it): the pause credited nothing, so the resume charges nothing either.
  // The two count as none, and the period is invoiced again whole (retest15 #2); charging the
  // rest here left the days before it unbilled for good.
  if (
    before.paused_at !== null &&
    dayOf(before.paused_at) === day &&
    !(await periodBilled(tx, before, period))
  )
    return { subscription: after, invoice: undefined };
  // Resumed on a period's first day: that period is invoiced whole, as its renewal would be; but
  // an imported subscription's first period, which the system it came from billed: the pause's
  // credit of it ends instead, below (invariants4 #3: invoiced here, netted by that credit, its
  // days no longer counted as paid there, and a change then credited none of them).
  if (
    day === period.start &&
    !invoiced &&
    (await importedPeriodPrice(tx.db, before.id, period.end)) === undefined
  ) {
    const outcome = await invoiceForPeriod(tx, before.id, day);
    if (outcome.kind !== 'created' && outcome.kind !== 'existing')
      throw new Error(`resume of ${before.id}: unexpected ${outcome.kind}`);
    const invoice = await settle(tx, after, outcome.invoice, now, tenantId);
    return { subscription: after, invoice };
  }
  // The rest of the period, charged and invoiced now; unless its days are still paid: by the
  // pending charges the pause shortened, brought back, or by the pause's credit of this period,
  // still pending, which ends today instead (chargeFor). Nothing is invoiced then.
  const price = { amount: after.plan_cost, label: await priceLabel(tx, after) };
  const restored = await restorePausedCharges(tx, after, before.paused_charges, period, day);
  const { charged, chargedAgain } = await chargeFor(tx, after.id, period, price, [], day);
  if (restored)
    return performProration(
      tx,
      tenantId,
      after,
      {
        mode: 'items',
        items: [],
        invoiceNow: false,
        period,
        day,
        // Only the pause's own credit ends: a change's credit of a price that comes back stays
        // whole, as the charges brought back pay those days (pause13 #1).
        chargedAgain: chargedAgain.filter((item) =>
          before.paused_charges!.credits.includes(item.description),
        ),
      },
      settle,
    );
  const items = prorationItems(period, day, undefined, charged);
  // A fixed discount is one per period invoice: the period's rest is billed with a percentage
  // only. Resumed on its first day, after a renewal during the pause made its invoice (of the
  // usage before: no price), the whole period is billed here: with what that invoice left of a
  // fixed amount, as the renewal would have taken it had the resume come first.
  const lines = (invoiced?.lines ?? []) as unknown as Array<{ type: string; amount: string }>;
  const madeWhilePaused =
    day === period.start && invoiced !== undefined && !lines.some((line) => line.type === 'subscription');
  const taken = madeWhilePaused
    ? lines.reduce((sum, line) => (line.type === 'discount' ? sum - parseSignedAmount(line.amount) : sum), 0n)
    : undefined;
  return performProration(
    tx,
    tenantId,
    after,
    {
      mode: 'items',
      items,
      invoiceNow: true,
      period,
      day,
      discounts: taken === undefined ? 'percentage' : { fixedTaken: taken },
      chargedAgain,
    },
    settle,
  );
}
