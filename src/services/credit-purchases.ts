// Paid grants (docs/wallets.md, "Buying credits"): credits bought on a purchase invoice, billed on
// one of the wallet's customer's subscriptions, and available once that invoice is paid
// (services/wallets.ts creditPaidGrant, called by the payment's settlement).
import { formatCents, parseAmount } from '../billing/money.js';
import { formatQuantity, parseTotal } from '../billing/usage-pricing.js';
import type { GrantRow, InvoiceRow } from '../database/schema.js';
import * as invoices from '../queries/invoices.js';
import * as payments from '../queries/payments.js';
import { lockSubscription } from '../queries/subscriptions.js';
import { findTestClock } from '../queries/test-clocks.js';
import * as wallets from '../queries/wallets.js';
import { amountDue } from '../responses/invoices.js';
import { atStep, type CollectionContext, startPayment, system } from './collection.js';
import { type Actor, ClockAdvancingError, inTenant, type ServiceContext } from './context.js';
import { purchaseInvoice, voidLocked } from './invoices.js';
import { subscriptionNow } from '../billing/subscription-time.js';
import { LockedWallet } from './wallets.js';

export type PurchaseOutcome =
  | { kind: 'granted'; grant: GrantRow; invoice: InvoiceRow }
  | { kind: 'missing' }
  | { kind: 'invalid'; errors: Array<{ field: string; message: string }> };

/**
 * Credits for `amount` (× the wallet's rate, rounded down to 6 decimals): a pending paid grant
 * and its purchase invoice, issued at once and collected from the subscription's payment method
 * if it has one. Locks the subscription, then the wallet (the lock order of collection.ts).
 */
export function buyCredits(
  ctx: ServiceContext,
  actor: Actor,
  walletId: string,
  input: {
    amount?: string | undefined;
    subscription_id?: string | undefined;
    credits?: string | undefined;
    priority?: number | undefined;
    expires_at?: string | undefined;
  },
): Promise<PurchaseOutcome> {
  const errors: Array<{ field: string; message: string }> = [];
  if (input.credits !== undefined)
    errors.push({ field: '/credits', message: 'is not for a paid grant: send amount, the price' });
  if (input.amount === undefined) errors.push({ field: '/amount', message: 'is required for a paid grant' });
  else if (parseAmount(input.amount) === 0n)
    errors.push({ field: '/amount', message: 'must be more than 0' });
  if (input.subscription_id === undefined)
    errors.push({
      field: '/subscription_id',
      message: 'is required for a paid grant: the subscription that bills it',
    });
  return inTenant(ctx, actor, async (tx): Promise<PurchaseOutcome> => {
    const seen = await wallets.findWallet(tx.db, walletId);
    if (!seen) return { kind: 'missing' };
    if (errors.length > 0) return { kind: 'invalid', errors };
    const subscription = await lockSubscription(tx.db, input.subscription_id!);
    if (!subscription || subscription.user_id !== seen.user_id) {
      return {
        kind: 'invalid',
        errors: [{ field: '/subscription_id', message: "is not a subscription of the wallet's customer" }],
      };
    }
    // Nothing more is billed on a canceled subscription (a coupon, an item: 409), credits neither.
    if (subscription.status === 'canceled') {
      return {
        kind: 'invalid',
        errors: [
          {
            field: '/subscription_id',
            message: 'is canceled: nothing more is billed on it (name another subscription of the customer)',
          },
        ],
      };
    }
    if (subscription.test_clock_id !== seen.test_clock_id) {
      return {
        kind: 'invalid',
        errors: [
          { field: '/subscription_id', message: "is not in the wallet's time: not on the same test clock" },
        ],
      };
    }
    // As every change to a wallet on a clock: not while it advances (services/wallets.ts).
    if (subscription.test_clock_id) {
      const clock = (await findTestClock(tx.db, subscription.test_clock_id))!;
      if (clock.status === 'advancing') throw new ClockAdvancingError(clock.id, clock.frozen_time);
    }
    const now = subscriptionNow(subscription);
    const locked = (await LockedWallet.open(tx, walletId, actor, now))!;
    const amount = formatCents(parseAmount(input.amount!));
    // amount [cents] × rate [millionths of credits per unit] ÷ 100 = millionths of credits.
    const bought = ((parseAmount(amount) / 100n) * parseTotal(locked.wallet.rate)) / 100n;
    const expiresAt = input.expires_at === undefined ? null : new Date(input.expires_at);
    if (bought === 0n)
      errors.push({ field: '/amount', message: 'buys less than 0.000001 credits at the rate' });
    if (expiresAt && expiresAt <= now)
      errors.push({ field: '/expires_at', message: `must be in the future (now is ${now.toISOString()})` });
    if (await locked.overCap(bought))
      errors.push({
        field: '/amount',
        message: 'would take the wallet to 10^18 credits or more (counting its unpaid purchases)',
      });
    if (errors.length > 0) return { kind: 'invalid', errors };

    const credits = formatQuantity(bought);
    const invoice = await purchaseInvoice(tx, subscription, {
      description: `${credits} credits for the wallet ${locked.wallet.name} (${walletId})`,
      amount,
    });
    const grant = await wallets.insertGrant(tx.db, {
      wallet_id: walletId,
      kind: 'paid',
      credits,
      priority: input.priority ?? 0,
      expires_at: expiresAt,
      purchase: { invoice_id: invoice.id, amount },
      at: locked.madeAt,
    });
    await locked.save(); // what the sweep found due
    if (subscription.payment_method && subscription.payment_rail && subscription.status !== 'unpaid') {
      await startPayment(
        tx,
        {
          invoice_id: invoice.id,
          subscription_id: subscription.id,
          amount: amountDue(invoice),
          rail: subscription.payment_rail,
          payment_method: subscription.payment_method,
          initiated_by: 'purchase',
          attempt: (await payments.countPayments(tx.db, invoice.id)) + 1,
          submit_after: now,
        },
        { tenantId: actor.tenantId, clockId: subscription.test_clock_id },
      );
    }
    return { kind: 'granted', grant, invoice };
  });
}

/**
 * A purchase still unpaid when its grant expires lapses (the worker's `lapse` step, at or after
 * the grant's expires_at): its invoice is voided and the grant canceled, so that no payment takes
 * money for credits that would expire as they arrive. Not while a payment of it is in flight: that
 * payment decides (its credits, if it succeeds, are granted and expire at once).
 */
export function lapseDue(ctx: CollectionContext, tenantId: string, invoiceId: string, at: Date) {
  return inTenant(ctx, system(tenantId), async (tx) => {
    // The lock order of every money decision: the subscription, then the invoice.
    const seen = await invoices.findInvoice(tx.db, invoiceId);
    if (!seen) return;
    const subscription = (await lockSubscription(tx.db, seen.subscription_id))!;
    const invoice = (await invoices.lockInvoice(tx.db, invoiceId))!;
    if (invoice.status !== 'open' && invoice.status !== 'uncollectible') return;
    const grant = await wallets.findGrantOfInvoice(tx.db, invoiceId);
    if (!grant || grant.available_at || grant.canceled_at || !grant.expires_at || grant.expires_at > at)
      return;
    if (await payments.findPaymentInFlight(tx.db, invoiceId)) return;
    atStep(tx, subscription, at);
    await voidLocked(tx, system(tenantId), subscription, invoice, at);
  });
}
