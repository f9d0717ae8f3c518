// Mid-period price changes (a PATCH of plan_id, quantity, plan_cost or billing_interval), billed
// by the day as proration_behavior says (see ProrationBehavior in the contract, and
// billing/proration.ts for the arithmetic). Planned before the subscription is written (what the
// change sets besides the price: a new billing anchor), performed after it (the items and the
// invoices, which read the subscription as changed).
import { parseAmount, parseSignedAmount, sameAmount } from '../billing/money.js';
import { type Period, periodContaining } from '../billing/periods.js';
import {
  addPaid,
  daysBetween,
  type Paid,
  paidForLine,
  paidForPrice,
  type ProrationItem,
  prorationItems,
} from '../billing/proration.js';
import { billingAnchor, dayOf, lastDayServed, subscriptionNow } from '../billing/subscription-time.js';
import type { InvoiceRow, SubscriptionPatch, SubscriptionRow } from '../database/schema.js';
import { listCreditNotes } from '../queries/credit-notes.js';
import { insertInvoiceItems, prorationItemsIn } from '../queries/invoice-items.js';
import { findInvoice, findInvoiceForPeriod } from '../queries/invoices.js';
import { findPlan } from '../queries/plans.js';
import * as subscriptions from '../queries/subscriptions.js';
import { issueAndCollect } from './collection.js';
import type { Tx } from './context.js';
import { emitItem, invoiceForPeriod, prorationInvoice } from './invoices.js';
import { emitChange } from './subscriptions.js';

export type ProrationBehavior = 'create_prorations' | 'always_invoice' | 'none';

/** What a change bills besides changing the subscription. */
export type ProrationPlan =
  | { mode: 'nothing' }
  /**
   * Items for the rest of the period: pending, or invoiced now (always_invoice, a resume), with the
   * discounts that invoice takes (invoices.ts insertInvoice; any by default).
   */
  | {
      mode: 'items';
      items: ProrationItem[];
      invoiceNow: boolean;
      period: Period;
      day: string;
      discounts?: 'any' | 'percentage';
    }
  /** A new schedule from `day`: the old period's credit, then the new first period invoiced now. */
  | { mode: 'new-schedule'; items: ProrationItem[]; day: string };

export type ProrationRefusal =
  | { kind: 'interval-change-with-usage' }
  /** A plan change mid-period that would bill the period's usage on other charges. */
  | { kind: 'usage-charges-change'; metrics: string[] };

/** Statuses whose current period counts usage, billed in arrears when it ends. */
const COUNTING_USAGE: ReadonlySet<SubscriptionRow['status']> = new Set([
  'active',
  'past_due',
  'unpaid',
  'paused',
]);

const PRORATED: ReadonlySet<SubscriptionRow['status']> = new Set(['active', 'past_due', 'unpaid']);

/** How a price reads on an item: "Pro (pro) × 3 at 30.00 a month". */
export async function priceLabel(
  tx: Tx,
  s: Pick<SubscriptionRow, 'plan_id' | 'quantity' | 'plan_cost' | 'billing_interval' | 'interval_count'>,
): Promise<string> {
  const every =
    s.interval_count === 1 ? `a ${s.billing_interval}` : `every ${s.interval_count} ${s.billing_interval}s`;
  if (!s.plan_id) return `a custom price of ${s.plan_cost} ${every}`;
  const plan = await findPlan(tx.db, s.plan_id);
  return `${plan?.name ?? 'plan'} (${plan?.code ?? s.plan_id}) × ${s.quantity} at ${s.plan_cost} ${every}`;
}

/**
 * Whether the subscription's period was billed: by its period invoice (not voided), or, without
 * one, by a resume that charged its rest (billed_until is then past it; a trial's or a pause's
 * periods are never prorated, so their billed_until does not mislead).
 */
export async function periodBilled(tx: Tx, s: SubscriptionRow, period: Period): Promise<boolean> {
  const invoice = await findInvoiceForPeriod(tx.db, s.id, period);
  if (invoice) return invoice.status !== 'void';
  return s.billed_until !== null && s.billed_until >= period.end;
}

/**
 * The price whose unused days a change (to plan `planAfter`) or a pause credits, with what is
 * left paid of it: so no day is credited above what was paid, or credited twice, and the discount
 * where the credit lands never reduces it again.
 *
 * Before any change in the period, its invoice paid the days (billing/proration.ts paidForPrice:
 * less what credit notes took back, and less its share of the invoice's discount). After one,
 * each day of the rest was paid by that invoice's price and by every proration item of the period
 * (a change's credit and charge, a pause's credit, a resume's charge) as its invoice left it: less
 * what credit notes took back, a charge less its share of that invoice's discount, nothing of an
 * invoice voided; a charge still pending less the subscription's percentage discount, which will
 * reduce it where it lands. Items are rounded to the cent, so their sum matches the price in force
 * to within a cent each: within that, the price in force (less that percentage) is exact.
 */
export async function creditedPrice(
  tx: Tx,
  s: SubscriptionRow,
  period: Period,
  planAfter: string | null,
): Promise<{ amount: string; label: string; paid?: Paid | undefined }> {
  const listed = { amount: s.plan_cost, label: await priceLabel(tx, s) };
  const [found, items] = await Promise.all([
    findInvoiceForPeriod(tx.db, s.id, period),
    prorationItemsIn(tx.db, s.id, period),
  ]);
  const invoice = found && found.status !== 'void' ? found : undefined;
  const paidForPeriod = invoice
    ? paidForPrice({ lines: linesOf(invoice) }, await creditNotesOf(tx, invoice))
    : undefined;
  if (items.length === 0) {
    if (!invoice || !paidForPeriod) return listed;
    // A change made since without proration (`none`) did not bill its price for these days: they
    // were paid at the price the invoice billed, and are credited at that, never at the new one.
    const billed = linesOf(invoice).find((line) => line.type === 'subscription')!;
    if (!sameAmount(billed.amount, s.plan_cost))
      return {
        amount: billed.amount,
        label: `the price the period's invoice billed (${billed.amount})`,
        paid: paidForPeriod,
      };
    return { ...listed, paid: paidForPeriod };
  }
  const whole = 1_000_000n; // 100%, in ten-thousandths
  const discount = s.discount;
  const keptOfPending =
    discount !== null &&
    discount.percent_off !== null &&
    (discount.plan_ids.length === 0 || (planAfter !== null && discount.plan_ids.includes(planAfter)))
      ? whole - parseAmount(discount.percent_off)
      : whole;
  const periodDays = BigInt(daysBetween(period.start, period.end));
  let paid: Paid = paidForPeriod ?? { numerator: 0n, denominator: 1n };
  let slack = 0n; // what the items' rounding may add up to, over the period
  const billedBy = new Map<string, Promise<{ invoice: InvoiceRow; notes: CreditNoteLines[] } | undefined>>();
  for (const item of items) {
    const days = BigInt(daysBetween(item.period_start, item.period_end));
    if (days <= 0n) continue;
    const amount = parseSignedAmount(item.amount);
    let value: Paid = { numerator: amount, denominator: 1n };
    if (item.invoice_id !== null) {
      const id = item.invoice_id;
      if (!billedBy.has(id))
        billedBy.set(
          id,
          findInvoice(tx.db, id).then(async (row) =>
            row ? { invoice: row, notes: await creditNotesOf(tx, row) } : undefined,
          ),
        );
      const billed = await billedBy.get(id)!;
      if (!billed || billed.invoice.status === 'void') continue; // voided: never paid
      const lines = linesOf(billed.invoice);
      const index = lines.findIndex((line) => line.invoice_item_id === item.id);
      if (index >= 0) value = paidForLine({ lines }, billed.notes, index);
    } else if (amount > 0n && item.balance_transaction_id === null) {
      value = { numerator: amount * keptOfPending, denominator: whole };
    }
    paid = addPaid(paid, value, { numerator: periodDays, denominator: days });
    slack += (100n * periodDays + days - 1n) / days;
  }
  // Within the items' rounding of the price in force (less the percentage of a pending charge):
  // that price, exactly.
  const inForce = parseAmount(s.plan_cost) * keptOfPending;
  const apart = paid.numerator * whole - inForce * paid.denominator;
  const within = slack * whole * paid.denominator;
  if (apart <= within && apart >= -within)
    return keptOfPending === whole ? listed : { ...listed, paid: { numerator: inForce, denominator: whole } };
  return { ...listed, paid: paid.numerator < 0n ? { numerator: 0n, denominator: 1n } : paid };
}

type CreditNoteLines = { lines: Array<{ line_index: number | null; amount: string }> };
type StoredLine = { type: string; amount: string; invoice_item_id?: string };
const linesOf = (invoice: InvoiceRow) => invoice.lines as unknown as StoredLine[];
async function creditNotesOf(tx: Tx, invoice: InvoiceRow): Promise<CreditNoteLines[]> {
  const notes = await listCreditNotes(tx.db, invoice.id);
  return notes.map((note) => ({ lines: note.lines as unknown as CreditNoteLines['lines'] }));
}

/**
 * The usage charges of plan `from` that plan `to` does not have as they are (the same metric,
 * dimension value and price): the metrics whose usage counted so far in the period a change from
 * one to the other would bill on other terms, or not at all. Usage is billed in arrears, on the
 * charges of the plan at the period's end. A charge the new plan adds bills only what was counted
 * (another dimension value of a metric the plan charges), within a line's cap: checked with the
 * move (services/subscriptions.ts).
 */
async function usageChargesDropped(tx: Tx, from: string | null, to: string | null): Promise<string[]> {
  const charges = from ? ((await findPlan(tx.db, from))?.usage_charges ?? []) : [];
  if (charges.length === 0) return [];
  const kept = new Set(
    (to ? ((await findPlan(tx.db, to))?.usage_charges ?? []) : []).map((c) => JSON.stringify(c)),
  );
  const dropped = charges.filter((c) => !kept.has(JSON.stringify(c)));
  return [...new Set(dropped.map((c) => c.metric))];
}

const hasUsageCharges = async (tx: Tx, planId: string | null | undefined) =>
  planId ? ((await findPlan(tx.db, planId))?.usage_charges.length ?? 0) > 0 : false;

/**
 * What the change from `before` to `changes` bills, and what it sets besides (returned in
 * `set`): on a locked subscription, before it is written.
 */
export async function planProration(
  tx: Tx,
  before: SubscriptionRow,
  changes: SubscriptionPatch,
  behavior: ProrationBehavior,
): Promise<{ plan: ProrationPlan; set: SubscriptionPatch } | ProrationRefusal> {
  const nothing = { plan: { mode: 'nothing' } as const, set: {} };
  const after = { ...before, ...changes } as SubscriptionRow;
  const day = dayOf(subscriptionNow(before));
  const ended = lastDayServed(before);
  if (
    after.plan_id !== before.plan_id &&
    COUNTING_USAGE.has(before.status) &&
    after.status !== 'canceled' &&
    day >= before.start_date &&
    !(ended && ended.lastDay < day)
  ) {
    const metrics = await usageChargesDropped(tx, before.plan_id, after.plan_id);
    if (metrics.length > 0) return { kind: 'usage-charges-change', metrics };
  }
  const scheduleChanged =
    after.billing_interval !== before.billing_interval || after.interval_count !== before.interval_count;
  const priceChanged = !sameAmount(after.plan_cost, before.plan_cost);
  if (!scheduleChanged && !priceChanged) return nothing;
  // Not prorated: a trial (free), a cancellation (nothing is billed after it), a new start date
  // (billing is rescheduled instead), a subscription not started or already ended.
  if (
    !PRORATED.has(before.status) ||
    after.status === 'canceled' ||
    after.start_date !== before.start_date ||
    day < before.start_date ||
    (ended && ended.lastDay < day)
  )
    return nothing;
  const period = periodContaining(billingAnchor(before), before.billing_interval, before.interval_count, day);
  const invoiced = await periodBilled(tx, before, period);
  if (!scheduleChanged) {
    if (!invoiced || behavior === 'none') return nothing;
    const items = prorationItems(period, day, await creditedPrice(tx, before, period, after.plan_id), {
      amount: after.plan_cost,
      label: await priceLabel(tx, after),
    });
    return {
      plan: { mode: 'items', items, invoiceNow: behavior === 'always_invoice', period, day },
      set: {},
    };
  }
  if (!invoiced) {
    // Nothing of this period was billed: the new schedule starts with it, priced anew as a whole.
    return { plan: { mode: 'nothing' }, set: { billing_anchor: period.start } };
  }
  // Usage is counted by the periods of the schedule it was recorded in: a new schedule in the
  // middle of one would leave the usage since its start unbilled. Refused rather than lost.
  if ((await hasUsageCharges(tx, before.plan_id)) || (await hasUsageCharges(tx, after.plan_id)))
    return { kind: 'interval-change-with-usage' };
  const items =
    behavior === 'none'
      ? []
      : prorationItems(period, day, await creditedPrice(tx, before, period, after.plan_id), undefined);
  return {
    plan: { mode: 'new-schedule', items, day },
    set: { billing_anchor: day, ...(before.billed_until === null ? {} : { billed_until: day }) },
  };
}

/**
 * Bills a planned change on the subscription as changed (`after`, locked): its items, and the
 * invoice issued now if any (collected like a renewal's). Returns the subscription as it is then.
 */
export async function performProration(
  tx: Tx,
  tenantId: string,
  after: SubscriptionRow,
  plan: ProrationPlan,
): Promise<{ subscription: SubscriptionRow; invoice: InvoiceRow | undefined }> {
  if (plan.mode === 'nothing') return { subscription: after, invoice: undefined };
  const rows = await insertInvoiceItems(
    tx.db,
    plan.items.map((item) => ({ subscription_id: after.id, ...item })),
  );
  for (const row of rows) emitItem(tx, row);
  const now = subscriptionNow(after);
  if (plan.mode === 'items') {
    const net = plan.items.reduce((sum, item) => sum + parseSignedAmount(item.amount), 0n);
    const invoice =
      plan.invoiceNow && net > 0n
        ? await prorationInvoice(tx, after, { start: plan.day, end: plan.period.end }, plan.discounts)
        : undefined;
    if (!invoice) return { subscription: after, invoice: undefined };
    const issued = await issueAndCollect(tx, after, invoice, now, tenantId);
    // The invoice may have used up a once discount: the subscription as it is now.
    return {
      subscription: (await subscriptions.findSubscription(tx.db, after.id)) ?? after,
      invoice: issued,
    };
  }
  // The new schedule's first period, invoiced now with the credit (as its renewal would be).
  const outcome = await invoiceForPeriod(tx, after.id, plan.day);
  if (outcome.kind !== 'created' && outcome.kind !== 'existing')
    throw new Error(`new schedule of ${after.id}: unexpected ${outcome.kind}`);
  const issued = await issueAndCollect(tx, after, outcome.invoice, now, tenantId);
  if (after.billed_until === null)
    return {
      subscription: (await subscriptions.findSubscription(tx.db, after.id)) ?? after,
      invoice: issued,
    };
  const renewed = await subscriptions.updateSubscription(tx.db, after.id, {
    billed_until: outcome.invoice.period_end,
  });
  emitChange(tx, after, renewed, 'subscription.renewed');
  return { subscription: renewed, invoice: issued };
}
