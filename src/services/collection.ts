// The billing steps the worker performs (src/services/due-work.ts finds them): renewals,
// payment submission and settlement, dunning retries, scheduled cancellations. Each step is one
// tenant transaction that re-reads and locks what it changes and does nothing when the step was
// done already, so running a step twice (a retried job, two workers) has its effect once.
//
// Lock order, everywhere (here, services/payments.ts, services/invoices.ts): a subscription, then
// its invoice, then the invoice's payment. A transaction that needs a later one never waits for
// an earlier one while holding it, so steps and requests on one invoice queue instead of
// deadlocking. (Inserting a payment can wait on the payments index for a transaction that changes
// the invoice's payment: that one holds the invoice lock too, so it is never waited for the
// other way round.) inTenant retries the rare deadlock that remains possible anyway.
import { periodContaining } from '../billing/periods.js';
import { billingAnchor, lastDayServed, subscriptionNow } from '../billing/subscription-time.js';
import type { PaymentGateway } from '../billing/gateway.js';
import type { InvoiceRow, PaymentRow, SubscriptionRow, UserRow } from '../database/schema.js';
import { billingSettings } from '../queries/billing-settings.js';
import * as invoices from '../queries/invoices.js';
import { enqueueDue } from '../queries/jobs.js';
import * as payments from '../queries/payments.js';
import { findPlan } from '../queries/plans.js';
import * as subscriptions from '../queries/subscriptions.js';
import { findTestClock } from '../queries/test-clocks.js';
import { toInvoiceResponse } from '../responses/invoices.js';
import { toPaymentResponse } from '../responses/payments.js';
import { amountDue } from '../responses/invoices.js';
import {
  type Actor,
  inTenant,
  previousValues,
  satisfies,
  type ServiceContext,
  type Tx,
  type VersionCondition,
} from './context.js';
import {
  closeEndedItems,
  closingUsageInvoice,
  invoiceForPeriod,
  issue,
  payOwedFromBalance,
} from './invoices.js';
import {
  emitChange,
  emitScheduledChangeDropped,
  emitShowing,
  eventData,
  seenBefore,
} from './subscriptions.js';
import { applyScheduledChange } from './scheduled-changes.js';
import { creditPaidGrant } from './wallets.js';

export interface CollectionContext extends ServiceContext {
  readonly gateway: PaymentGateway;
  /** Real-time settlement delays are multiplied by this (1 in production; small for demos). */
  readonly settlementDelayScale: number;
}

export const system = (tenantId: string): Actor => ({ tenantId, keyId: 'system' });
const DAY = 86_400_000;
/** Submissions that time out are tried again after 1, 2, 4 minutes, then fail. */
const SUBMIT_TRIES = 3;

function emitPayment(tx: Tx, type: string, payment: PaymentRow, previous?: Record<string, unknown>) {
  tx.emit({
    type,
    resource_type: 'payment',
    resource_id: payment.id,
    data: toPaymentResponse(payment),
    ...(previous ? { previous } : {}),
  });
}

/**
 * In real time, a job for when a step falls due later, rounded up to the second so that the
 * payments settling together share one. Nothing for a step due now (the running job's loop
 * does it next) or on a test clock (its job performs everything up to the clock's time).
 */
export async function wakeUpAt(
  tx: Tx,
  tenantId: string,
  subscription: Pick<SubscriptionRow, 'test_clock_id'>,
  due: Date,
  now: Date,
): Promise<void> {
  if (subscription.test_clock_id || due <= now) return;
  await enqueueDue(tx.db, { tenantId }, new Date(Math.ceil(due.getTime() / 1000) * 1000));
}

/**
 * A step for a subscription on a test clock happens at its own due time on the clock (`at`): its
 * events say so. In real time they occur now.
 */
export function atStep(tx: Tx, subscription: SubscriptionRow, at: Date): void {
  if (subscription.test_clock_id) tx.occurAt(at);
}

/** A new payment of an invoice, to be submitted by the worker from `at` on. */
export async function startPayment(
  tx: Tx,
  values: payments.NewPayment,
  onClock: { tenantId: string; clockId: string | null },
): Promise<PaymentRow | undefined> {
  const payment = await payments.insertPayment(tx.db, values);
  if (!payment) return undefined;
  emitPayment(tx, 'payment.created', payment);
  await enqueueDue(
    tx.db,
    onClock.clockId
      ? { tenantId: onClock.tenantId, clockId: onClock.clockId }
      : { tenantId: onClock.tenantId },
  );
  return payment;
}

/**
 * A trial whose end has come (billed_until reached trial_end): the subscription becomes active,
 * and the renewal then invoices its first period. On a locked subscription.
 */
async function endTrial(tx: Tx, before: SubscriptionRow): Promise<SubscriptionRow> {
  if (before.status !== 'trialing' || before.trial_end === null || before.billed_until! < before.trial_end)
    return before;
  const after = await subscriptions.updateSubscription(tx.db, before.id, { status: 'active' });
  emitChange(tx, before, after);
  return after;
}

/** `subscription.trial_will_end`, 3 days before a trial's end (once per end: a moved end again). */
export function announceTrialEnd(ctx: ServiceContext, tenantId: string, subscriptionId: string, at: Date) {
  return inTenant(ctx, system(tenantId), async (tx) => {
    const before = await subscriptions.lockSubscription(tx.db, subscriptionId);
    if (!before || before.status !== 'trialing' || !before.trial_end || before.trial_notified_at) return;
    // Its service ends before the trial does (end_date): no paid period to announce.
    if (before.end_date !== null && before.end_date < before.trial_end) return;
    // Its trial has ended by now (its end_date moved past it late): nothing is left to announce.
    if (at >= new Date(`${before.trial_end}T00:00:00Z`)) return;
    atStep(tx, before, at);
    const after = await subscriptions.updateSubscription(tx.db, subscriptionId, { trial_notified_at: at });
    emitShowing(tx, {
      type: 'subscription.trial_will_end',
      resource_type: 'subscription',
      resource_id: subscriptionId,
      data: eventData(tx, after),
    });
  });
}

/**
 * A canceled subscription's invoice items still pending: billed on a last invoice, issued and
 * collected, and a credit left moved to the customer's balance (services/invoices.ts).
 */
export function closeDue(ctx: CollectionContext, tenantId: string, subscriptionId: string, at: Date) {
  return inTenant(ctx, system(tenantId), async (tx) => {
    const before = await subscriptions.lockSubscription(tx.db, subscriptionId);
    if (!before || before.status !== 'canceled') return;
    atStep(tx, before, at);
    const last = await closeEndedItems(tx, before, at);
    if (last) await issueAndCollect(tx, before, last, at, tenantId);
  });
}

/** A subscription's cancellation scheduled for `at` or earlier. */
export function cancelDue(ctx: ServiceContext, tenantId: string, subscriptionId: string, at: Date) {
  return inTenant(ctx, system(tenantId), async (tx) => {
    const before = await subscriptions.lockSubscription(tx.db, subscriptionId);
    if (!before || before.status === 'canceled' || !before.cancel_at || before.cancel_at > at) return;
    atStep(tx, before, at);
    const after = await subscriptions.updateSubscription(tx.db, subscriptionId, {
      status: 'canceled',
      canceled_at: before.cancel_at,
      scheduled_change: null,
    });
    await stopRetries(tx, subscriptionId);
    // As last seen before it ended: still in the period it was canceled at the end of.
    seenBefore(tx, before, new Date(before.cancel_at.getTime() - 1));
    emitChange(tx, before, after, 'subscription.canceled');
    emitScheduledChangeDropped(tx, before, after);
  });
}

/**
 * Whether an ended subscription served days from `billedUntil` on, on a plan that charges usage:
 * the period starting then is its last, its usage still to bill when it ends.
 */
async function servedUnbilled(tx: Tx, s: SubscriptionRow, billedUntil: string): Promise<boolean> {
  const served = lastDayServed(s);
  if (!served || served.lastDay < billedUntil || s.plan_id === null) return false;
  if (s.trial_end !== null && billedUntil < s.trial_end) return false; // a trial's usage is free
  return ((await findPlan(tx.db, s.plan_id))?.usage_charges.length ?? 0) > 0;
}

const ends = (s: SubscriptionRow) =>
  (s.end_date !== null && s.billed_until! > s.end_date) ||
  (s.cancel_at !== null && new Date(`${s.billed_until}T00:00:00Z`) >= s.cancel_at);

/** What a renewal step did: whether it renewed, and the version it found (none: no such subscription). */
export interface Renewal {
  renewed: boolean;
  version?: number;
}

/** The versions a catch-up moved a subscription between. */
export interface CaughtUp {
  from: number;
  to: number;
}

/**
 * The period starting on billed_until has begun: invoice it (the same invoice on a rerun), issue
 * it, collect it from the payment method if there is one, and move billed_until to the next
 * period. Periods that begin while trialing or paused are free: billed_until moves on without an
 * invoice (but the usage of the period before a pause).
 * Every run that finds the renewal due moves billed_until forward or ends billing, so the worker
 * never finds the same renewal again (performDueWork fails a step that made no progress).
 * `when`: the worker's time, or 'if-due' for performDueRenewals; `only`: renew only a
 * subscription it accepts.
 */
export function renewDue(
  ctx: ServiceContext,
  tenantId: string,
  subscriptionId: string,
  when: Date | 'if-due',
  only?: (subscription: SubscriptionRow) => boolean,
): Promise<Renewal> {
  return inTenant(ctx, system(tenantId), async (tx): Promise<Renewal> => {
    const locked = await subscriptions.lockSubscription(tx.db, subscriptionId);
    if (!locked) return { renewed: false };
    const unchanged = { renewed: false, version: locked.version };
    if (!locked.billed_until || (only && !only(locked))) return unchanged;
    const due = new Date(`${locked.billed_until}T00:00:00Z`);
    // 'if-due': if the renewal is due on the subscription's clock (or in real time), at the time
    // the worker would perform it: its due time on a clock, now in real time.
    const now = when === 'if-due' ? subscriptionNow(locked) : when;
    if (due > now) return unchanged;
    const at =
      when === 'if-due' && locked.test_clock_id ? await stepTimeOnClock(tx, locked.test_clock_id, due) : now;
    await renewLocked(tx, tenantId, locked, at, issueAndCollect);
    return { renewed: true, version: locked.version };
  });
}

/**
 * When a step due at `due` happens on a test clock, as the worker's steps do (queries/due-work.ts):
 * at its due time, but not before the time the clock's advance started (while the clock is ready,
 * its time): due earlier, it was not due on the clock until its subscription was created or
 * changed then.
 */
async function stepTimeOnClock(tx: Tx, clockId: string, due: Date): Promise<Date> {
  const clock = await findTestClock(tx.db, clockId);
  const floor = clock?.status === 'ready' ? clock.frozen_time : clock?.advanced_from;
  return floor && floor > due ? floor : due;
}

/** What a renewal does with an invoice it made: issues and collects it, or (a preview) less. */
export type Settle = typeof issueAndCollect;

/**
 * The renewal of the period starting on billed_until, at `at`, on a locked subscription whose
 * renewal is due (billed_until set): see renewDue.
 */
export async function renewLocked(
  tx: Tx,
  tenantId: string,
  locked: SubscriptionRow,
  at: Date,
  settle: Settle,
): Promise<void> {
  const subscriptionId = locked.id;
  const billedUntil = locked.billed_until;
  if (billedUntil === null) throw new Error(`renewal of ${subscriptionId}: not renewed automatically`);
  atStep(tx, locked, at);
  // A trial ending and a change scheduled for this period's start come first: the period is
  // billed as they leave it.
  const stopping = locked.status === 'canceled' || ends(locked);
  // The step's first event names the period that ended in `previous`: the subscription as seen at
  // that period's last instant, or, created or changed after it (backdated), as its event then
  // showed it (on a clock, at the step's time; see stepTimeOnClock).
  const lastInstant = Date.parse(`${billedUntil}T00:00:00Z`) - 1;
  // The first period of its schedule (a trial ended by PATCH at this very instant, lifecycle9 #1):
  // no period of it ended, and its last event showed it as of the step's time.
  const firstOfSchedule = billedUntil === billingAnchor(locked) && locked.status !== 'trialing';
  seenBefore(
    tx,
    locked,
    new Date(
      locked.test_clock_id
        ? at.getTime() > lastInstant + 1 || firstOfSchedule
          ? at.getTime()
          : lastInstant
        : Math.max(lastInstant, locked.updated_at.getTime()),
    ),
  );
  // The terms the period before was served on: its usage is billed on them, not on a change
  // scheduled for this period's start (another plan, or another schedule of periods).
  const served = stopping ? locked : await endTrial(tx, locked);
  const before = stopping ? locked : await applyScheduledChange(tx, tenantId, served);
  // billedUntil is as locked: a scheduled change leaves it as it is.
  const stopBilling = async (): Promise<void> => {
    if (await servedUnbilled(tx, before, billedUntil)) {
      // Ended within the period starting on billedUntil, before its renewal ran: that period is
      // its last, and its usage is billed when it ends (the next step comes back then).
      const last = periodContaining(
        billingAnchor(before),
        before.billing_interval,
        before.interval_count,
        billedUntil,
      );
      const after = await subscriptions.updateSubscription(tx.db, subscriptionId, {
        billed_until: last.end,
      });
      emitChange(tx, before, after);
      return;
    }
    // Nothing more to bill: the subscription ends before this period. Its last period's usage
    // is billed now, on an invoice of its own (issued and collected like a renewal's).
    const closing = await closingUsageInvoice(tx, before, billedUntil);
    if (closing?.kind === 'created') await settle(tx, before, closing.invoice, at, tenantId);
    const last = await closeEndedItems(tx, before, at);
    if (last) await settle(tx, before, last, at, tenantId);
    // A change scheduled for a period that never comes is dropped, as a cancellation drops it.
    const after = await subscriptions.updateSubscription(tx.db, subscriptionId, {
      billed_until: null,
      ...(before.scheduled_change ? { scheduled_change: null } : {}),
    });
    emitChange(tx, before, after);
    emitScheduledChangeDropped(tx, before, after);
  };
  if (before.status === 'canceled' || ends(before)) return stopBilling();
  if (billedUntil < billingAnchor(before)) {
    // The start date moved past the next renewal (written before updates kept billed_until on
    // the schedule): billing resumes with the first period.
    const after = await subscriptions.updateSubscription(tx.db, subscriptionId, {
      billed_until: billingAnchor(before),
    });
    emitChange(tx, before, after);
    return;
  }
  const period = periodContaining(
    billingAnchor(before),
    before.billing_interval,
    before.interval_count,
    billedUntil,
  );
  // The subscription moves on before its invoice is issued: issuing takes the tenant's next
  // invoice number, whose counter row stays locked until COMMIT, and every round trip after it
  // keeps the tenant's other renewals waiting (renewals ran one at a time on that lock).
  const renewed = () => subscriptions.updateSubscription(tx.db, subscriptionId, { billed_until: period.end });
  let after: SubscriptionRow;
  if (before.status === 'paused') {
    // Nothing is invoiced for time paused; the usage of the period before (recorded before the
    // pause) is billed in arrears as always, on an invoice of its own.
    const closing = await closingUsageInvoice(tx, before, billedUntil, served);
    after = await renewed();
    if (closing?.kind === 'created') await settle(tx, before, closing.invoice, at, tenantId);
  } else if (before.status !== 'trialing') {
    const outcome = await invoiceForPeriod(tx, subscriptionId, billedUntil, before, {
      served,
      voided: 'leave',
    });
    if (outcome.kind === 'after-end') return stopBilling();
    if (outcome.kind === 'voided') {
      after = await renewed();
      emitChange(tx, before, after, 'subscription.renewed');
      return;
    }
    if (outcome.kind !== 'created' && outcome.kind !== 'existing')
      throw new Error(`renewal of ${subscriptionId}: unexpected ${outcome.kind}`);
    after = await renewed();
    await settle(
      tx,
      before,
      outcome.invoice,
      at,
      tenantId,
      outcome.kind === 'created' ? { customer: outcome.customer } : undefined,
    );
  } else after = await renewed();
  emitChange(tx, before, after, 'subscription.renewed');
}

/** Renewals one catch-up performs at most: each moves billed_until on by a period. */
const MOST_RENEWALS_AT_ONCE = 100;

/**
 * Performs the subscription's renewals that are due and not performed yet, one transaction each,
 * as the worker would (within seconds of their day; on a clock, when it is advanced). Pausing,
 * resuming and canceling now run them first: what those credit and bill depends on what was
 * invoiced, and must not depend on whether the worker came first (a subscription paused or
 * canceled before its period's renewal ran was never billed for the days it served). Returns the
 * versions the subscription went from and to, when it renewed any: a request whose If-Match
 * names the version before still applies (see matchesAfterRenewals).
 */
export async function performDueRenewals(
  ctx: ServiceContext,
  tenantId: string,
  subscriptionId: string,
  request: { ifMatch: VersionCondition; allows: (subscription: SubscriptionRow) => boolean },
): Promise<CaughtUp | undefined> {
  // Only for a request that will apply: one refused (412, 409) writes nothing.
  const applies = (s: SubscriptionRow) => satisfies(request.ifMatch, s.version) && request.allows(s);
  let from: number | undefined;
  for (let i = 0; i < MOST_RENEWALS_AT_ONCE; i++) {
    const renewal = await renewDue(
      ctx,
      tenantId,
      subscriptionId,
      'if-due',
      from === undefined ? applies : undefined,
    );
    if (renewal.version === undefined) return undefined;
    if (!renewal.renewed) return from === undefined ? undefined : { from, to: renewal.version };
    from ??= renewal.version;
  }
  return undefined; // still renewing: the worker carries on, and If-Match applies as it is
}

/**
 * If-Match on a subscription that performDueRenewals renewed: the version the client read still
 * matches when those renewals are the only changes since.
 */
export const matchesAfterRenewals = (
  condition: VersionCondition,
  version: number,
  caughtUp: CaughtUp | undefined,
): boolean =>
  satisfies(condition, version) ||
  (caughtUp !== undefined && version === caughtUp.to && satisfies(condition, caughtUp.from));

/**
 * A renewal's (or a closing usage, or a change's) invoice: issued if still a draft, paid at once
 * when it is zero, else collected from the subscription's payment method if it has one. Returns
 * the invoice as it is then. `created`: the draft was created by this transaction (no other can
 * see it, so it is not locked and read again), with its customer as read then.
 */
export async function issueAndCollect(
  tx: Tx,
  before: SubscriptionRow,
  draft: InvoiceRow,
  at: Date,
  tenantId: string,
  created?: { customer?: UserRow | undefined },
): Promise<InvoiceRow> {
  const subscriptionId = before.id;
  let invoice = draft;
  if (invoice.status === 'draft') {
    invoice = created
      ? await issue(tx, invoice, at, created.customer)
      : await issue(tx, (await invoices.lockInvoice(tx.db, invoice.id))!, at);
  }
  if (invoice.status === 'open' && /^0+(\.0+)?$/.test(amountDue(invoice))) {
    invoice = await invoices.updateInvoice(tx.db, invoice.id, { status: 'paid', paid_at: at });
    tx.emit({
      type: 'invoice.paid',
      resource_type: 'invoice',
      resource_id: invoice.id,
      data: toInvoiceResponse(invoice),
      previous: { status: 'open', paid_at: null },
    });
  } else if (
    invoice.status === 'open' &&
    before.status !== 'unpaid' &&
    before.payment_method &&
    before.payment_rail
  ) {
    await startPayment(
      tx,
      {
        invoice_id: invoice.id,
        subscription_id: subscriptionId,
        amount: amountDue(invoice),
        rail: before.payment_rail,
        payment_method: before.payment_method,
        initiated_by: 'renewal',
        // A draft this transaction made has no payments: no round trip (the invoice number's
        // counter is locked from issue() on, so each one here keeps the tenant's renewals waiting).
        attempt: created ? 1 : (await payments.countPayments(tx.db, invoice.id)) + 1,
        submit_after: at,
      },
      { tenantId, clockId: before.test_clock_id },
    );
  }
  return invoice;
}

const gatewayPayment = (p: PaymentRow, at: Date) => ({
  paymentId: p.id,
  paymentMethod: p.payment_method,
  rail: p.rail,
  amount: p.amount,
  at,
});

/** An invoice that a payment may still pay: open, or uncollectible (dunning gave up). */
const payable = (invoice: InvoiceRow) => invoice.status === 'open' || invoice.status === 'uncollectible';

/** The payment, its invoice and its subscription, locked in the lock order (see the top). */
async function lockForPayment(tx: Tx, paymentId: string) {
  const seen = await payments.findPayment(tx.db, paymentId);
  if (!seen) return undefined;
  const subscription = (await subscriptions.lockSubscription(tx.db, seen.subscription_id))!;
  const invoice = (await invoices.lockInvoice(tx.db, seen.invoice_id))!;
  const payment = (await payments.lockPayment(tx.db, paymentId))!;
  return { subscription, invoice, payment };
}

/**
 * A payment whose invoice stopped being payable before the money moved (voided, or paid by
 * other means): it fails with `invoice_not_payable`, and the gateway is never asked to collect.
 */
async function failNotPayable(
  tx: Tx,
  tenantId: string,
  locked: { subscription: SubscriptionRow; invoice: InvoiceRow; payment: PaymentRow },
  at: Date,
) {
  const { payment, invoice, subscription } = locked;
  const failed = await payments.updatePayment(tx.db, payment.id, {
    status: 'failed',
    failure_reason: 'invoice_not_payable',
    settles_at: null,
    settled_at: at,
  });
  await paymentFailed(tx, tenantId, failed, payment, subscription, invoice, at);
}

/** A pending payment goes to the gateway: accepted (processing), declined, or timed out. */
export async function submitDue(ctx: CollectionContext, tenantId: string, paymentId: string, at: Date) {
  const seen = await inTenant(ctx, system(tenantId), async (tx) => {
    const payment = await payments.findPayment(tx.db, paymentId);
    const invoice = payment && (await invoices.findInvoice(tx.db, payment.invoice_id));
    return payment && invoice && { payment, invoice };
  });
  if (!seen || seen.payment.status !== 'pending' || seen.payment.submit_after > at) return;
  // Outside the transaction: a gateway call may be slow, and it is idempotent per payment id.
  // An invoice that is not payable any more is never submitted (checked again under the locks).
  const result = payable(seen.invoice)
    ? await ctx.gateway.submit(gatewayPayment(seen.payment, at))
    : undefined;
  await inTenant(ctx, system(tenantId), async (tx) => {
    const locked = await lockForPayment(tx, paymentId);
    if (!locked) return;
    const { subscription, invoice, payment: before } = locked;
    if (before.status !== 'pending' || before.submit_after > at) return;
    atStep(tx, subscription, at);
    if (!result || !payable(invoice)) return failNotPayable(tx, tenantId, locked, at);
    if (result.kind === 'timeout') {
      const tries = before.submit_attempts + 1;
      if (tries < SUBMIT_TRIES) {
        const retryAt = new Date(at.getTime() + 60_000 * 2 ** (tries - 1));
        await payments.updatePayment(tx.db, paymentId, { submit_attempts: tries, submit_after: retryAt });
        await wakeUpAt(tx, tenantId, subscription, retryAt, at);
        return;
      }
      const failed = await payments.updatePayment(tx.db, paymentId, {
        submit_attempts: tries,
        status: 'failed',
        failure_reason: 'gateway_timeout',
        settled_at: at,
      });
      await paymentFailed(tx, tenantId, failed, before, subscription, invoice, at);
      return;
    }
    if (result.kind === 'declined') {
      const failed = await payments.updatePayment(tx.db, paymentId, {
        status: 'failed',
        failure_reason: result.reason,
        submitted_at: at,
        settled_at: at,
        gateway_reference: result.reference,
      });
      await paymentFailed(tx, tenantId, failed, before, subscription, invoice, at);
      return;
    }
    // Real time runs the rail's delay scaled (SETTLEMENT_DELAY_SCALE); a test clock, as it is.
    const delay = result.settlesAt.getTime() - at.getTime();
    const settlesAt = subscription.test_clock_id
      ? result.settlesAt
      : new Date(at.getTime() + Math.round(delay * ctx.settlementDelayScale));
    const processing = await payments.updatePayment(tx.db, paymentId, {
      status: 'processing',
      submitted_at: at,
      settles_at: settlesAt,
      gateway_reference: result.reference,
    });
    emitPayment(
      tx,
      'payment.processing',
      processing,
      previousValues(toPaymentResponse(before), toPaymentResponse(processing)),
    );
    await wakeUpAt(tx, tenantId, subscription, settlesAt, at);
  });
}

/**
 * A processing payment whose settlement time has come: succeeded (the invoice is paid) or failed.
 * Its invoice must still be payable: a payment never succeeds against a void or already paid
 * invoice (it fails with `invoice_not_payable`, and the gateway does not collect).
 */
export async function settleDue(ctx: CollectionContext, tenantId: string, paymentId: string, at: Date) {
  const seen = await inTenant(ctx, system(tenantId), async (tx) => {
    const payment = await payments.findPayment(tx.db, paymentId);
    const invoice = payment && (await invoices.findInvoice(tx.db, payment.invoice_id));
    return payment && invoice && { payment, invoice };
  });
  const payment = seen?.payment;
  if (!payment || payment.status !== 'processing' || !payment.settles_at || payment.settles_at > at) return;
  const result = payable(seen.invoice) ? await ctx.gateway.settle(gatewayPayment(payment, at)) : undefined;
  await inTenant(ctx, system(tenantId), async (tx) => {
    const locked = await lockForPayment(tx, paymentId);
    if (!locked || locked.payment.status !== 'processing') return;
    const { subscription, invoice } = locked;
    atStep(tx, subscription, at);
    if (!result || !payable(invoice)) return failNotPayable(tx, tenantId, locked, at);
    if (result.kind === 'failed') {
      const failed = await payments.updatePayment(tx.db, paymentId, {
        status: 'failed',
        failure_reason: result.reason,
        settled_at: at,
      });
      await paymentFailed(tx, tenantId, failed, locked.payment, subscription, invoice, at);
      return;
    }
    const succeeded = await payments.updatePayment(tx.db, paymentId, { status: 'succeeded', settled_at: at });
    emitPayment(
      tx,
      'payment.succeeded',
      succeeded,
      previousValues(toPaymentResponse(locked.payment), toPaymentResponse(succeeded)),
    );
    await markPaid(tx, subscription, invoice, at);
  });
}

/**
 * An open or uncollectible invoice paid (by a payment, or credited down to zero): its purchase's
 * credits become available, and dunning ends when nothing of the subscription is left failing
 * (another period's invoice may still be in its retries). On the locked subscription and invoice.
 */
export async function markPaid(tx: Tx, subscription: SubscriptionRow, invoice: InvoiceRow, at: Date) {
  const paid = await invoices.updateInvoice(tx.db, invoice.id, {
    status: 'paid',
    paid_at: at,
    next_collection_at: null,
  });
  tx.emit({
    type: 'invoice.paid',
    resource_type: 'invoice',
    resource_id: invoice.id,
    data: toInvoiceResponse(paid),
    previous: previousValues(toInvoiceResponse(invoice), toInvoiceResponse(paid)),
  });
  if (invoice.kind === 'purchase') await creditPaidGrant(tx, invoice.id, at);
  await endDunningIfSettled(tx, subscription, at);
  return paid;
}

/**
 * A past_due or unpaid subscription is active again once none of its invoices is still failing:
 * each was paid, credited down to zero or voided. For past_due, failing means still in dunning:
 * an invoice its retries left uncollectible, or left open when they stopped, was left so before
 * the subscription was made active by hand (dunning's end makes it canceled or unpaid, never
 * past_due), and does not hold it past_due for good. On the locked subscription. An unpaid one
 * is collected again: the invoices it was issued while unpaid are collected at `at` (the time of
 * the change; the transaction's time by default), see resumeCollection.
 */
export async function endDunningIfSettled(tx: Tx, subscription: SubscriptionRow, at?: Date) {
  if (subscription.status !== 'past_due' && subscription.status !== 'unpaid') return;
  if (await invoices.hasFailingInvoice(tx.db, subscription.id, subscription.status === 'past_due')) return;
  const after = await subscriptions.updateSubscription(tx.db, subscription.id, { status: 'active' });
  emitChange(tx, subscription, after, 'subscription.recovered');
  if (subscription.status === 'unpaid') await resumeCollection(tx, subscription.id, at ?? tx.occurredAt());
}

/**
 * A failed payment. A failed collection of a renewal invoice starts or continues dunning: the
 * subscription is past_due and a retry is scheduled (dunning_retry_days after the first failure);
 * after the last one the invoice is uncollectible and the subscription canceled, or unpaid: still
 * invoiced, never collected automatically (dunning_final_action). A payment made through the API
 * is no part of dunning: it uses none of the retries, and a retry that came due while it was in
 * flight (and waited for it) follows its failure at once.
 */
async function paymentFailed(
  tx: Tx,
  tenantId: string,
  payment: PaymentRow,
  before: PaymentRow,
  sub: SubscriptionRow,
  invoice: InvoiceRow,
  at: Date,
) {
  emitPayment(
    tx,
    'payment.failed',
    payment,
    previousValues(toPaymentResponse(before), toPaymentResponse(payment)),
  );
  // The invoice as the failure leaves it (its next retry scheduled): an invoice's last event is
  // the invoice as it is. Before it becomes uncollectible, when this was the last retry.
  const failed = (after: InvoiceRow) => emitInvoiceChange(tx, 'invoice.payment_failed', invoice, after);
  // A failure that changes nothing else is still a change of the invoice, with a version of its
  // own: two of its events never share one (lifecycle8 #2).
  const failedAsIs = async () => failed(await invoices.updateInvoice(tx.db, invoice.id, {}));
  // A payment of a purchase is the caller's to retry: no dunning.
  if (invoice.kind === 'purchase' || invoice.status !== 'open') return failedAsIs();
  if (payment.initiated_by === 'api') {
    // The caller's to retry. A dunning retry whose day passed while it was in flight waited for
    // it (the worker does not take a retry while a payment of its invoice is in flight): now.
    if (invoice.next_collection_at && invoice.next_collection_at < at)
      return failed(await invoices.updateInvoice(tx.db, invoice.id, { next_collection_at: at }));
    return failedAsIs();
  }
  if (sub.status === 'canceled' || sub.status === 'unpaid') {
    // A last retry is a last retry, whichever of two invoices' last retries failing together
    // the worker took first (the first one's final action ended collection): uncollectible.
    const { dunning_retry_days: retries } = await billingSettings(tx.db);
    if (payment.initiated_by === 'dunning' && invoice.dunning_retries >= retries.length)
      return continueDunning(tx, tenantId, sub, invoice, invoice.dunning_retries, at, undefined, failed);
    // Collected automatically no more (an attempt in flight when it ended): owed, never retried.
    const after = await invoices.updateInvoice(tx.db, invoice.id, {
      collection_failed_at: invoice.collection_failed_at ?? at,
      next_collection_at: null,
    });
    failed(after);
    // Its end's credit paid what the subscription owed then, not this invoice (a payment in
    // flight): the customer's balance pays it now, as far as it goes.
    if (sub.status === 'canceled') await payOwedFromBalance(tx, sub, amountDue(after), at);
    return;
  }
  const madeAt = payment.initiated_by === 'dunning' ? payment.submit_after : undefined;
  await continueDunning(tx, tenantId, sub, invoice, invoice.dunning_retries, at, madeAt, failed);
}

/**
 * A subscription that ended (canceled, unpaid): none of its invoices is retried any more, each
 * an invoice.updated. Under its lock.
 */
export async function stopRetries(tx: Tx, subscriptionId: string): Promise<void> {
  for (const { before, after } of await invoices.stopRetries(tx.db, subscriptionId))
    emitInvoiceChange(tx, 'invoice.updated', before, after);
}

/**
 * An unpaid subscription active again: the invoices it was issued while unpaid are due for
 * collection at `at` (invoices.resumeCollection), each an invoice.updated. Under its lock.
 */
export async function resumeCollection(tx: Tx, subscriptionId: string, at: Date | undefined): Promise<void> {
  for (const after of await invoices.resumeCollection(tx.db, subscriptionId, at)) {
    // It had no collection scheduled (what resumeCollection looks for), one version before.
    const before = { ...after, next_collection_at: null, version: after.version - 1 };
    emitInvoiceChange(tx, 'invoice.updated', before, after);
  }
}

/** An event of an invoice's change, with the invoice after it and the fields it changed. */
function emitInvoiceChange(tx: Tx, type: string, before: InvoiceRow, after: InvoiceRow): void {
  const data = toInvoiceResponse(after);
  tx.emit({
    type,
    resource_type: 'invoice',
    resource_id: after.id,
    data,
    previous: previousValues(toInvoiceResponse(before), data),
  });
}

/**
 * After a failed automatic attempt of an open invoice (at `at`), or a retry that passed without a
 * payment method: the next retry, when `used` of the schedule's retries are used (each run, or
 * passed on its day without a method), dunning_retry_days[used] after the first failure and never
 * before `at` (on a slow rail a retry's day can pass while the attempt before it is in flight: it
 * then follows the failure at once). A retry made (`madeAt`) after the days of the retries after
 * it had passed (it waited for a payment made through the API) stands for those too, and for one
 * due the moment it failed at once: each retry has a time of its own. With none left, the invoice
 * is uncollectible and the final action runs. On the locked subscription and invoice.
 */
async function continueDunning(
  tx: Tx,
  tenantId: string,
  sub: SubscriptionRow,
  invoice: InvoiceRow,
  usedBefore: number,
  at: Date,
  madeAt: Date | undefined,
  announce: (after: InvoiceRow) => void,
) {
  const settings = await billingSettings(tx.db);
  const first = invoice.collection_failed_at ?? at;
  const dayOf = (retry: number) => first.getTime() + settings.dunning_retry_days[retry]! * DAY;
  let used = usedBefore;
  const made = madeAt?.getTime();
  const passed = (day: number) =>
    made !== undefined && (day < made || (day === made && at.getTime() === made));
  while (used < settings.dunning_retry_days.length && passed(dayOf(used))) used++;
  if (used < settings.dunning_retry_days.length) {
    const next = new Date(Math.max(dayOf(used), at.getTime()));
    announce(
      await invoices.updateInvoice(tx.db, invoice.id, {
        collection_failed_at: first,
        next_collection_at: next,
        dunning_retries: used,
      }),
    );
    if (sub.status === 'active') {
      const after = await subscriptions.updateSubscription(tx.db, sub.id, { status: 'past_due' });
      emitChange(tx, sub, after, 'subscription.past_due');
    }
    await wakeUpAt(tx, tenantId, sub, next, at);
    return;
  }
  // The last failure is written (a version of its own, as every failure has) before the invoice
  // becomes uncollectible: its event is never a second one of the version the retry wrote.
  const failed = await invoices.updateInvoice(tx.db, invoice.id, {
    collection_failed_at: first,
    next_collection_at: null,
    dunning_retries: used,
  });
  announce(failed);
  const uncollectible = await invoices.updateInvoice(tx.db, invoice.id, {
    status: 'uncollectible',
    uncollectible_at: at,
  });
  tx.emit({
    type: 'invoice.uncollectible',
    resource_type: 'invoice',
    resource_id: invoice.id,
    data: toInvoiceResponse(uncollectible),
    previous: previousValues(toInvoiceResponse(failed), toInvoiceResponse(uncollectible)),
  });
  if (sub.status === 'canceled' || sub.status === 'unpaid') return;
  // A paused subscription (its earlier invoice can fail for good) is canceled, ending the pause,
  // or stays paused with `mark_unpaid`: nothing is invoiced while paused, none of its invoices is
  // retried any more, and the resume charges the days after it as any resume does.
  const unpaused = { paused_at: null, resumes_at: null };
  if (sub.status === 'paused' && settings.dunning_final_action !== 'cancel') {
    await stopRetries(tx, sub.id);
    return;
  }
  if (settings.dunning_final_action === 'cancel') {
    const after = await subscriptions.updateSubscription(tx.db, sub.id, {
      status: 'canceled',
      canceled_at: at,
      cancel_at: null,
      cancel_reason: 'dunning: every collection attempt failed',
      scheduled_change: null,
      ...unpaused,
    });
    await stopRetries(tx, sub.id);
    emitChange(tx, sub, after);
    emitScheduledChangeDropped(tx, sub, after);
  } else {
    const after = await subscriptions.updateSubscription(tx.db, sub.id, { status: 'unpaid' });
    // Never collected automatically from now on: its other invoices' retries end too.
    await stopRetries(tx, sub.id);
    emitChange(tx, sub, after, 'subscription.unpaid');
  }
}

/**
 * A dunning retry whose time has come: a new payment of the open invoice, with the payment method
 * the subscription has now. While a payment of the invoice is in flight (made through the API)
 * the retry waits for it, scheduled as it is (the worker does not find it meanwhile); a retry
 * that finds no payment method is used without a payment, and dunning goes on with the next one
 * (or ends, after the last), so a method added later is used by the retries left.
 */
export function retryDue(ctx: CollectionContext, tenantId: string, invoiceId: string, at: Date) {
  return inTenant(ctx, system(tenantId), async (tx) => {
    const seen = await invoices.findInvoice(tx.db, invoiceId);
    if (!seen?.next_collection_at || seen.next_collection_at > at) return;
    // The lock order: the subscription, then its invoice.
    const sub = (await subscriptions.lockSubscription(tx.db, seen.subscription_id))!;
    const invoice = (await invoices.lockInvoice(tx.db, invoiceId))!;
    if (!invoice.next_collection_at || invoice.next_collection_at > at) return;
    if (invoice.status !== 'open' || sub.status === 'canceled' || sub.status === 'unpaid') {
      await invoices.updateInvoice(tx.db, invoiceId, { next_collection_at: null });
      return;
    }
    if (await payments.findPaymentInFlight(tx.db, invoiceId)) return; // paymentFailed goes on
    atStep(tx, sub, at);
    // No failure yet: the first collection of an invoice issued while the subscription was unpaid
    // (resumeCollection), made as a renewal makes it; its failure starts dunning.
    const first = invoice.collection_failed_at === null;
    const used = first ? 0 : invoice.dunning_retries + 1;
    if (!sub.payment_method || !sub.payment_rail) {
      if (first) await invoices.updateInvoice(tx.db, invoiceId, { next_collection_at: null });
      else
        await continueDunning(tx, tenantId, sub, invoice, used, at, at, (after) =>
          emitInvoiceChange(tx, 'invoice.updated', invoice, after),
        );
      return;
    }
    const payment = await startPayment(
      tx,
      {
        invoice_id: invoiceId,
        subscription_id: sub.id,
        amount: amountDue(invoice),
        rail: sub.payment_rail,
        payment_method: sub.payment_method,
        initiated_by: first ? 'renewal' : 'dunning',
        attempt: (await payments.countPayments(tx.db, invoiceId)) + 1,
        submit_after: at,
      },
      { tenantId, clockId: sub.test_clock_id },
    );
    // None only with a payment in flight, which the invoice's lock rules out (found just above).
    if (!payment) return;
    const after = await invoices.updateInvoice(tx.db, invoiceId, {
      next_collection_at: null,
      dunning_retries: used,
    });
    // Its retry is under way: none is scheduled until it fails (then the next one is).
    emitInvoiceChange(tx, 'invoice.updated', invoice, after);
  });
}
