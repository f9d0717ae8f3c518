// Refunds (docs/billing.md, "Refunds"): the money of a credit note on a paid invoice sent back
// through the gateway, on the rail and to the method of the payment that paid the invoice. Made
// `pending` by the credit note; the worker submits it to the gateway (src/services/due-work.ts
// finds the steps), then settles it after the rail's delay, as payments: `succeeded`, or `failed`
// with a reason, and then its amount is credited to the customer's balance instead (an entry of
// type refund_failed): a refund that cannot be made never loses the customer's money.
//
// Each step is one tenant transaction that locks and re-reads the refund and does nothing when
// it was done already; the gateway is called between transactions, idempotent per refund id.
// Lock order: the refund, then the customer's balance (the last lock of every money decision).
import type { RefundRow, SubscriptionRow } from '../database/schema.js';
import { enqueueDue } from '../queries/jobs.js';
import * as refunds from '../queries/refunds.js';
import { findSubscription } from '../queries/subscriptions.js';
import * as invoices from '../queries/invoices.js';
import { toRefundResponse } from '../responses/refunds.js';
import { atStep, type CollectionContext, system, wakeUpAt } from './collection.js';
import {
  type Actor,
  inTenant,
  type Page,
  previousValues,
  type ServiceContext,
  toPage,
  type Tx,
} from './context.js';
import { creditBalance } from './customer-balance.js';

/** A refund's event; for a change, `before` gives what it changed (`previous`). */
function emitRefund(tx: Tx, type: string, refund: RefundRow, before?: RefundRow) {
  const data = toRefundResponse(refund);
  tx.emit({
    type,
    resource_type: 'refund',
    resource_id: refund.id,
    data,
    ...(before ? { previous: previousValues(toRefundResponse(before), data) } : {}),
  });
}

/** A new refund, to be submitted by the worker from `submit_after` on (`refund.created`). */
export async function startRefund(
  tx: Tx,
  values: refunds.NewRefund,
  onClock: { tenantId: string; clockId: string | null },
): Promise<RefundRow> {
  const refund = await refunds.insertRefund(tx.db, values);
  emitRefund(tx, 'refund.created', refund);
  await enqueueDue(
    tx.db,
    onClock.clockId
      ? { tenantId: onClock.tenantId, clockId: onClock.clockId }
      : { tenantId: onClock.tenantId },
  );
  return refund;
}

export function getRefund(ctx: ServiceContext, actor: Actor, id: string): Promise<RefundRow | undefined> {
  return inTenant(ctx, actor, (tx) => refunds.findRefund(tx.db, id));
}

/** An invoice's refunds, newest first; undefined when there is no such invoice. */
export function listInvoiceRefunds(
  ctx: ServiceContext,
  actor: Actor,
  filter: refunds.RefundFilter,
): Promise<Page<RefundRow> | undefined> {
  return inTenant(ctx, actor, async (tx) => {
    const [invoice, rows] = await Promise.all([
      invoices.findInvoice(tx.db, filter.invoiceId),
      refunds.listRefunds(tx.db, filter),
    ]);
    return invoice && toPage(rows, filter.limit);
  });
}

const gatewayRefund = (r: RefundRow, at: Date) => ({
  refundId: r.id,
  paymentId: r.payment_id,
  paymentMethod: r.payment_method,
  rail: r.rail,
  amount: r.amount,
  at,
});

/** A refund is read outside a transaction before the gateway is called. */
function seen(ctx: ServiceContext, tenantId: string, refundId: string) {
  return inTenant(ctx, system(tenantId), (tx) => refunds.findRefund(tx.db, refundId));
}

/** The refund, locked, with its subscription (for its clock); the step's events happen at `at`. */
async function lockForStep(tx: Tx, refundId: string, at: Date) {
  const refund = await refunds.lockRefund(tx.db, refundId);
  if (!refund || refund.status !== 'pending') return undefined;
  const subscription = (await findSubscription(tx.db, refund.subscription_id))!;
  atStep(tx, subscription, at);
  return { refund, subscription };
}

/** Failed: the amount goes to the customer's balance instead, in the same transaction. */
async function failRefund(tx: Tx, refund: RefundRow, reason: string, at: Date) {
  const failed = await refunds.updateRefund(tx.db, refund.id, {
    status: 'failed',
    failure_reason: reason,
    settles_at: null,
    settled_at: at,
  });
  emitRefund(tx, 'refund.failed', failed, refund);
  await creditBalance(tx, {
    user_id: refund.user_id,
    type: 'refund_failed',
    amount: refund.amount,
    invoice_id: refund.invoice_id,
    credit_note_id: refund.credit_note_id,
    refund_id: refund.id,
    created_at: at,
  });
}

/** A pending refund goes to the gateway: accepted (it settles after the rail's delay) or declined. */
export async function submitRefundDue(ctx: CollectionContext, tenantId: string, refundId: string, at: Date) {
  const before = await seen(ctx, tenantId, refundId);
  if (!before || before.status !== 'pending' || before.submitted_at || before.submit_after > at) return;
  const result = await ctx.gateway.refund(gatewayRefund(before, at));
  await inTenant(ctx, system(tenantId), async (tx) => {
    const locked = await lockForStep(tx, refundId, at);
    if (!locked || locked.refund.submitted_at) return;
    const { refund, subscription } = locked;
    if (result.kind === 'declined') return failRefund(tx, refund, result.reason, at);
    // Real time runs the rail's delay scaled (SETTLEMENT_DELAY_SCALE); a test clock, as it is.
    const settlesAt = settlementAt(ctx, subscription, result.settlesAt, at);
    const submitted = await refunds.updateRefund(tx.db, refundId, {
      submitted_at: at,
      settles_at: settlesAt,
      gateway_reference: result.reference,
    });
    emitRefund(tx, 'refund.updated', submitted, refund);
    await wakeUpAt(tx, tenantId, subscription, settlesAt, at);
  });
}

function settlementAt(ctx: CollectionContext, subscription: SubscriptionRow, settlesAt: Date, at: Date) {
  if (subscription.test_clock_id) return settlesAt;
  return new Date(at.getTime() + Math.round((settlesAt.getTime() - at.getTime()) * ctx.settlementDelayScale));
}

/** A submitted refund whose settlement time has come: succeeded, or failed (to the balance). */
export async function settleRefundDue(ctx: CollectionContext, tenantId: string, refundId: string, at: Date) {
  const before = await seen(ctx, tenantId, refundId);
  if (!before || before.status !== 'pending' || !before.settles_at || before.settles_at > at) return;
  const result = await ctx.gateway.settleRefund(gatewayRefund(before, at));
  await inTenant(ctx, system(tenantId), async (tx) => {
    const locked = await lockForStep(tx, refundId, at);
    if (!locked?.refund.settles_at || locked.refund.settles_at > at) return;
    if (result.kind === 'failed') return failRefund(tx, locked.refund, result.reason, at);
    const succeeded = await refunds.updateRefund(tx.db, refundId, { status: 'succeeded', settled_at: at });
    emitRefund(tx, 'refund.succeeded', succeeded, locked.refund);
  });
}
