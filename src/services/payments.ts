// Payments of invoices through the API, test clocks, and the tenant's billing settings.
import { amountDue } from '../responses/invoices.js';
import { anniversary } from '../billing/periods.js';
import type { DunningFinalAction, PaymentRail, PaymentRow, TestClockRow } from '../database/schema.js';
import * as settings from '../queries/billing-settings.js';
import { findDueWork } from '../queries/due-work.js';
import * as invoices from '../queries/invoices.js';
import { enqueueDue } from '../queries/jobs.js';
import * as payments from '../queries/payments.js';
import { findSubscription } from '../queries/subscriptions.js';
import * as clocks from '../queries/test-clocks.js';
import { findGrantOfInvoice } from '../queries/wallets.js';
import { toBillingSettingsResponse, toTestClockResponse } from '../responses/payments.js';
import { startPayment } from './collection.js';
import {
  type Actor,
  ClockAdvancingError,
  inTenant,
  type Page,
  previousValues,
  type ServiceContext,
  satisfies,
  toPage,
  type VersionCondition,
} from './context.js';

export function listPayments(
  ctx: ServiceContext,
  actor: Actor,
  filter: payments.PaymentFilter,
): Promise<Page<PaymentRow>> {
  return inTenant(ctx, actor, async (tx) => toPage(await payments.listPayments(tx.db, filter), filter.limit));
}

/** An invoice's payments; undefined when there is no such invoice. */
export function listInvoicePayments(
  ctx: ServiceContext,
  actor: Actor,
  invoiceId: string,
  filter: payments.PaymentFilter,
): Promise<Page<PaymentRow> | undefined> {
  return inTenant(ctx, actor, async (tx) => {
    if (!(await invoices.findInvoice(tx.db, invoiceId))) return undefined;
    return toPage(await payments.listPayments(tx.db, { ...filter, invoiceId }), filter.limit);
  });
}

export function getPayment(ctx: ServiceContext, actor: Actor, id: string): Promise<PaymentRow | undefined> {
  return inTenant(ctx, actor, (tx) => payments.findPayment(tx.db, id));
}

export type CreatePaymentOutcome =
  | { kind: 'created'; payment: PaymentRow }
  | { kind: 'missing' }
  | { kind: 'wrong-status'; status: string }
  | { kind: 'wrong-amount'; balance: string }
  | { kind: 'in-flight' }
  | { kind: 'lapsed'; expiredAt: Date };

/** A payment of the invoice's whole balance, submitted and settled by the worker. */
export function createPayment(
  ctx: ServiceContext,
  actor: Actor,
  invoiceId: string,
  input: { amount: string; payment_method: string; rail: PaymentRail },
): Promise<CreatePaymentOutcome> {
  return inTenant(ctx, actor, async (tx): Promise<CreatePaymentOutcome> => {
    // Under the invoice's lock: concurrent payments of one invoice are decided one at a time.
    const invoice = await invoices.lockInvoice(tx.db, invoiceId);
    if (!invoice) return { kind: 'missing' };
    if (invoice.status !== 'open' && invoice.status !== 'uncollectible')
      return { kind: 'wrong-status', status: invoice.status };
    const subscription = (await findSubscription(tx.db, invoice.subscription_id))!;
    // Share-locked, and not while it advances (as every change on a clock, onClockOf): the
    // payment would be dated at the clock's new time, ahead of the periods and dunning on the way.
    const clock = subscription.test_clock_id
      ? await clocks.shareLockTestClock(tx.db, subscription.test_clock_id)
      : undefined;
    if (clock?.status === 'advancing') throw new ClockAdvancingError(clock.id, clock.frozen_time);
    if (invoice.kind === 'purchase') {
      // Credits that would expire as they arrive are not sold: the worker voids the purchase.
      const grant = await findGrantOfInvoice(tx.db, invoiceId);
      const now = clock?.frozen_time ?? new Date();
      if (grant && !grant.available_at && grant.expires_at && grant.expires_at <= now)
        return { kind: 'lapsed', expiredAt: grant.expires_at };
    }
    const due = amountDue(invoice);
    if (!sameMoney(input.amount, due)) return { kind: 'wrong-amount', balance: due };
    if (clock) tx.occurAt(clock.frozen_time);
    const payment = await startPayment(
      tx,
      {
        invoice_id: invoiceId,
        subscription_id: invoice.subscription_id,
        amount: due,
        rail: input.rail,
        payment_method: input.payment_method,
        initiated_by: 'api',
        attempt: (await payments.countPayments(tx.db, invoiceId)) + 1,
        submit_after: clock?.frozen_time ?? new Date(),
      },
      { tenantId: actor.tenantId, clockId: subscription.test_clock_id },
    );
    if (!payment) return { kind: 'in-flight' };
    return { kind: 'created', payment };
  });
}

/** Equal amounts as decimals ('17.85' = '17.850'), compared as scaled integers, never floats. */
function sameMoney(a: string, b: string): boolean {
  const cents = (v: string) => {
    const [whole = '0', fraction = ''] = v.split('.');
    if (fraction.replace(/0+$/, '').length > 2) return null;
    return BigInt(whole) * 100n + BigInt((fraction + '00').slice(0, 2));
  };
  const x = cents(a);
  return x !== null && x === cents(b);
}

export function listTestClocks(ctx: ServiceContext, actor: Actor, limit: number, after?: string) {
  return inTenant(ctx, actor, async (tx) => toPage(await clocks.listTestClocks(tx.db, limit, after), limit));
}

export function getTestClock(
  ctx: ServiceContext,
  actor: Actor,
  id: string,
): Promise<TestClockRow | undefined> {
  return inTenant(ctx, actor, (tx) => clocks.findTestClock(tx.db, id));
}

export function createTestClock(
  ctx: ServiceContext,
  actor: Actor,
  input: { name: string; frozen_time: Date },
) {
  return inTenant(ctx, actor, async (tx) => {
    const clock = await clocks.insertTestClock(tx.db, input);
    tx.emit({
      type: 'test_clock.created',
      resource_type: 'test_clock',
      resource_id: clock.id,
      data: toTestClockResponse(clock),
    });
    return clock;
  });
}

export type AdvanceOutcome =
  | { kind: 'advancing'; clock: TestClockRow }
  | { kind: 'missing' }
  | { kind: 'stale'; current: TestClockRow }
  | { kind: 'busy'; current: TestClockRow }
  | { kind: 'not-later'; current: TestClockRow }
  | { kind: 'too-far'; current: TestClockRow; latest: Date }
  | { kind: 'beyond-years'; current: TestClockRow };

/** How far one advance may move a clock: calendar years. */
export const MAX_ADVANCE_YEARS = 5;

/**
 * The years a clock's time stays in, where it starts and where it is advanced to: repeated
 * advances of 5 years would otherwise take it, and its subscriptions' periods, past 9999, which
 * no date in the API can write.
 */
export const CLOCK_YEARS = { first: 2000, last: 2100 } as const;

export const inClockYears = (time: Date): boolean =>
  time.getUTCFullYear() >= CLOCK_YEARS.first && time.getUTCFullYear() <= CLOCK_YEARS.last;

/**
 * The latest time a clock at `from` may be advanced to: the same time of day (UTC), 5 calendar
 * years on; from 29 February, 28 February.
 */
export function latestAdvance(from: Date): Date {
  const iso = from.toISOString();
  return new Date(`${anniversary(iso.slice(0, 10), 'year', MAX_ADVANCE_YEARS, 1)}${iso.slice(10)}`);
}

/** Moves the clock to `to` and enqueues the worker's catch-up (which sets it ready again). */
export function advanceTestClock(
  ctx: ServiceContext,
  actor: Actor,
  id: string,
  to: Date,
  ifMatch?: VersionCondition,
): Promise<AdvanceOutcome> {
  return inTenant(ctx, actor, async (tx): Promise<AdvanceOutcome> => {
    const current = await clocks.lockTestClock(tx.db, id);
    if (!current) return { kind: 'missing' };
    if (!satisfies(ifMatch, current.version)) return { kind: 'stale', current };
    if (current.status === 'advancing') return { kind: 'busy', current };
    if (to <= current.frozen_time) return { kind: 'not-later', current };
    const latest = latestAdvance(current.frozen_time);
    if (to > latest) return { kind: 'too-far', current, latest };
    if (!inClockYears(to)) return { kind: 'beyond-years', current };
    const clock = await clocks.updateTestClock(tx.db, id, {
      frozen_time: to,
      advanced_from: current.frozen_time,
      status: 'advancing',
    });
    tx.emit({
      type: 'test_clock.advancing',
      resource_type: 'test_clock',
      resource_id: id,
      data: toTestClockResponse(clock),
      previous: { frozen_time: current.frozen_time.toISOString(), status: 'ready' },
    });
    await enqueueDue(tx.db, { tenantId: actor.tenantId, clockId: id });
    return { kind: 'advancing', clock };
  });
}

/**
 * The worker finished a clock's catch-up: ready again, unless work is due by the clock's time as
 * it is under the lock. A job that found nothing due at the clock's old time (a late wake-up of
 * its last advance) may wait for this lock while a new advance holds it: that advance is not
 * over, and its own job sets the clock ready.
 */
export function testClockReady(ctx: ServiceContext, tenantId: string, id: string) {
  return inTenant(ctx, { tenantId, keyId: 'system' }, async (tx) => {
    const current = await clocks.lockTestClock(tx.db, id);
    if (!current || current.status === 'ready') return;
    if ((await findDueWork(tx.db, { tenantId, clockId: id }, 1)).length > 0) return;
    const clock = await clocks.updateTestClock(tx.db, id, { status: 'ready' });
    tx.emit({
      type: 'test_clock.advanced',
      resource_type: 'test_clock',
      resource_id: id,
      data: toTestClockResponse(clock),
      previous: { status: 'advancing' },
    });
  });
}

export function getBillingSettings(ctx: ServiceContext, actor: Actor) {
  return inTenant(ctx, actor, (tx) => settings.billingSettings(tx.db));
}

export type PutSettingsOutcome =
  | { kind: 'updated'; settings: Awaited<ReturnType<typeof settings.billingSettings>> }
  | { kind: 'stale'; current: { version: number } }
  | { kind: 'not-ascending' };

export function putBillingSettings(
  ctx: ServiceContext,
  actor: Actor,
  input: { dunning_retry_days: number[]; dunning_final_action: DunningFinalAction },
  ifMatch?: VersionCondition,
): Promise<PutSettingsOutcome> {
  return inTenant(ctx, actor, async (tx): Promise<PutSettingsOutcome> => {
    const days = input.dunning_retry_days;
    if (days.some((d, i) => i > 0 && d <= days[i - 1]!)) return { kind: 'not-ascending' };
    const before = await settings.lockBillingSettings(tx.db);
    if (!satisfies(ifMatch, before.version)) return { kind: 'stale', current: before };
    const unchanged =
      before.dunning_final_action === input.dunning_final_action &&
      before.dunning_retry_days.join(',') === days.join(',');
    if (unchanged) return { kind: 'updated', settings: before };
    const after = await settings.updateBillingSettings(tx.db, input);
    const data = toBillingSettingsResponse(after);
    tx.emit({
      type: 'billing_settings.updated',
      resource_type: 'billing_settings',
      resource_id: actor.tenantId,
      data,
      previous: previousValues(toBillingSettingsResponse(before), data),
    });
    return { kind: 'updated', settings: after };
  });
}
