// Invoices: one per subscription and billing period, priced from the subscription (with its
// pending invoice items) and taxed with the rates in force on the invoice date in the customer's
// region; and invoices of a day (purchases, one-off charges) or of a change (prorations). Drafts
// get a number when finalized (gapless per tenant); from then on the database refuses any change
// but the status.
import type { CreditedLine, InvoiceTaxLine } from '../billing/credit-notes.js';
import { type Charge, invoiceAmounts } from '../billing/invoices.js';
import {
  formatCents,
  formatSignedCents,
  parseAmount,
  parseSignedAmount,
  percentOf,
  roundToCents,
} from '../billing/money.js';
import { discountFor, discountLabel, usageShares } from '../billing/discounts.js';
import { periodContaining } from '../billing/periods.js';
import { applyItems, type AppliedItems, paidForLine } from '../billing/proration.js';
import {
  billingAnchor,
  dayOf,
  endlessTrial,
  lastDayServed,
  subscriptionNow,
} from '../billing/subscription-time.js';
import type { BreakdownLine } from '../billing/pricing.js';
import type {
  InvoiceItemRow,
  InvoiceRow,
  InvoiceStatus,
  PaymentRow,
  SubscriptionRow,
  UserRow,
} from '../database/schema.js';
import { canceledWhileTrialing, pausedSpans } from '../queries/events.js';
import * as invoices from '../queries/invoices.js';
import { findPaymentInFlight } from '../queries/payments.js';
import { findPlan } from '../queries/plans.js';
import { findSubscription, lockSubscription } from '../queries/subscriptions.js';
import { ratesInForce } from '../queries/tax-rates.js';
import { findUser } from '../queries/users.js';
import { amountDue, toInvoiceItemResponse, toInvoiceResponse } from '../responses/invoices.js';
import {
  billInvoiceItems,
  deletePendingItem,
  hasProrationsIn,
  type InvoiceItemFilter,
  insertInvoiceItems,
  listInvoiceItems as queryInvoiceItems,
  pendingInvoiceItems,
  prorationItemsBilledBy,
  reducePendingItem,
  settleInvoiceItems,
  unbillInvoiceItems,
  updatePendingItem,
} from '../queries/invoice-items.js';
import { endingCreditOfInvoice } from '../queries/customer-balance.js';
import { endDiscount, giveBackDiscount } from './coupons.js';
import { creditBalance, takeFromBalance } from './customer-balance.js';
import { endChargesWithService, pricesPeriod, repricePendingCredits } from './prorations.js';
import { leftForEndingCredit, listCreditNotes } from '../queries/credit-notes.js';
import { onClockOf } from './subscriptions.js';
import { pauseAgainAfterVoid } from './pauses.js';
import { billsUsageBefore, closeUsageBefore } from './usage.js';
import { endDunningIfSettled } from './collection.js';
import { cancelPaidGrant, payUsageFromWallets, refundUsageCredits } from './wallets.js';

export { lastDayServed };
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

export function listInvoices(
  ctx: ServiceContext,
  actor: Actor,
  filter: invoices.InvoiceFilter,
): Promise<Page<InvoiceRow>> {
  return inTenant(ctx, actor, async (tx) => toPage(await invoices.listInvoices(tx.db, filter), filter.limit));
}

/** A subscription's invoice items, newest first; undefined when there is no such subscription. */
export function listInvoiceItems(
  ctx: ServiceContext,
  actor: Actor,
  filter: InvoiceItemFilter,
): Promise<Page<InvoiceItemRow> | undefined> {
  return inTenant(ctx, actor, async (tx) => {
    const [subscription, rows] = await Promise.all([
      findSubscription(tx.db, filter.subscriptionId),
      queryInvoiceItems(tx.db, filter),
    ]);
    return subscription && toPage(rows, filter.limit);
  });
}

export function getInvoice(ctx: ServiceContext, actor: Actor, id: string): Promise<InvoiceRow | undefined> {
  return inTenant(ctx, actor, (tx) => invoices.findInvoice(tx.db, id));
}

export type CreateInvoiceOutcome =
  /** `customer`: the invoice's user, as read by the transaction that created it. */
  | { kind: 'created'; invoice: InvoiceRow; customer?: UserRow | undefined }
  | { kind: 'existing'; invoice: InvoiceRow }
  | { kind: 'no-subscription' }
  | { kind: 'before-start'; startDate: string }
  /** Before a trial's end, or before a new schedule began (billed on the old one). */
  | { kind: 'before-anchor'; anchor: string; why: 'trial' | 'schedule' }
  | { kind: 'after-end'; lastDay: string; why: 'end_date' | 'canceled' | 'cancel_at' }
  /**
   * A period not started yet: the worker's renewal invoices it when it starts ('renewal'), or it
   * bills the usage of the period before it, which has not ended ('usage').
   */
  | { kind: 'ahead'; periodStart: string; why: 'renewal' | 'usage' }
  /** Invoiced by hand, a period the subscription was paused in (or resumed in): never billed whole. */
  | { kind: 'paused'; period: { start: string; end: string }; why: 'paused' | 'prorated' }
  /** A renewal's period whose invoice was voided (options.voided 'leave'): left unbilled. */
  | { kind: 'voided'; invoice: InvoiceRow }
  /** Invoiced by hand, a period some of whose days another period's invoice bills. */
  | { kind: 'overlaps'; period: { start: string; end: string }; invoice: InvoiceRow };

/**
 * The invoice of the subscription's billing period containing `date` (default today, on the
 * subscription's test clock if it has one): created as a draft the first time, the same invoice
 * every time after (also for concurrent requests).
 */
export function createInvoice(
  ctx: ServiceContext,
  actor: Actor,
  subscriptionId: string,
  date?: string,
): Promise<CreateInvoiceOutcome> {
  return inTenant(ctx, actor, (tx) =>
    invoiceForPeriod(tx, subscriptionId, date, undefined, { ahead: 'refuse' }),
  );
}

export interface PeriodInvoiceOptions {
  /**
   * The subscription as it served the period before (its plan and schedule), when a change made
   * at this period's start (a scheduled change) changed them: that period's usage is billed on
   * the terms it was recorded under. Default: the subscription as it is.
   */
  served?: SubscriptionRow | undefined;
  /**
   * 'refuse' (the API): a period not started is not invoiced ahead of its start when the worker
   * renews the subscription (its renewal would issue that draft as it was made, whatever changed
   * in between: a new price, items, a discount), nor when it would bill the usage of a period not
   * ended (closing that usage early would refuse the rest of it).
   */
  ahead?: 'refuse' | undefined;
  /**
   * 'leave' (renewals): a period whose invoice was voided stays unbilled, as one the renewal
   * issued and was then voided does: a period invoiced by hand before the worker's first look
   * and voided was billed again by the renewal (retest16 #2). Invoicing it again is asked for.
   */
  voided?: 'leave' | undefined;
}

/**
 * Used by the API and by renewals: the draft invoice of a subscription's period. It bills the
 * plan's price for the period (in advance) and the usage of the period before it (in arrears),
 * which closes that period's usage: the subscription is locked for update, so usage being
 * recorded commits before (and is billed) or is refused after. `locked`: the subscription as
 * the caller locked it in this transaction (and changed it since, if at all): not read again.
 */
export async function invoiceForPeriod(
  tx: Tx,
  subscriptionId: string,
  date?: string,
  locked?: SubscriptionRow,
  options: PeriodInvoiceOptions = {},
): Promise<CreateInvoiceOutcome> {
  const subscription = locked ?? (await lockSubscription(tx.db, subscriptionId));
  if (!subscription) return { kind: 'no-subscription' };
  await onClockOf(tx, subscription);
  const today = dayOf(subscriptionNow(subscription));
  date ??= today;
  if (date < subscription.start_date) return { kind: 'before-start', startDate: subscription.start_date };
  if (subscription.billing_anchor !== null && date < subscription.billing_anchor) {
    const trial = subscription.trial_end !== null && subscription.trial_end === subscription.billing_anchor;
    return { kind: 'before-anchor', anchor: subscription.billing_anchor, why: trial ? 'trial' : 'schedule' };
  }
  const ended = lastDayServed(subscription);
  if (ended && date > ended.lastDay) return { kind: 'after-end', ...ended };
  const period = periodContaining(
    billingAnchor(subscription),
    subscription.billing_interval,
    subscription.interval_count,
    date,
  );
  // A voided invoice does not hold its period: it is invoiced again (the price and the pending
  // items; usage the voided invoice billed is not billed again: voiding forgave it).
  // The period's invoice and the plan, in one write and one round trip.
  const [existing, plan] = await Promise.all([
    invoices.findInvoiceForPeriod(tx.db, subscriptionId, period),
    subscription.plan_id ? findPlan(tx.db, subscription.plan_id) : undefined,
  ]);
  if (existing && existing.status !== 'void') return { kind: 'existing', invoice: existing };
  if (existing && options.voided === 'leave') return { kind: 'voided', invoice: existing };
  // By hand, a period whose price was never invoiced (a renewal during a pause bills usage only):
  // nothing is invoiced for time paused, and the period a resume fell in had its rest invoiced by
  // the resume. A period whose price was invoiced, then voided, is made again with the pause's
  // credit pending, when the void came after a change or a pause prorated against that invoice
  // (pricesPeriod: later pauses were priced by it too, their credits net the price); not when it
  // came first: no pause credited anything, and the whole price again would bill the days paused,
  // and those the resume invoiced (pause13 #2, pause14 #4).
  const pricedBefore =
    existing !== undefined &&
    (existing.lines as unknown as Array<{ type: string }>).some((line) => line.type === 'subscription');
  const priced = existing !== undefined && (await pricesPeriod(tx, subscriptionId, existing, period));
  // By hand, a period of a schedule its start_date moved to, whose days an invoice of the schedule
  // before bills in part: invoiced, they would be billed twice (retest20 #2). Its renewal bills
  // from billed_until on, the move charged or credited the days between.
  if (options.ahead === 'refuse') {
    const overlapping = await invoices.overlappingPeriodInvoice(tx.db, subscriptionId, period);
    if (overlapping) return { kind: 'overlaps', period, invoice: overlapping };
  }
  if (options.ahead === 'refuse' && !(pricedBefore && priced)) {
    const from = new Date(`${period.start}T00:00:00Z`);
    const to = new Date(`${period.end}T00:00:00Z`);
    // A day paused (a pause and its resume on the same day leave nothing, void15 #4), or a
    // resume's charge of the rest (a pause that credited nothing, in a period voided first).
    const paused = (await pausedSpans(tx.db, subscriptionId)).some(
      (span) => span.from < to && (span.to === null || (span.to > from && dayOf(span.to) > dayOf(span.from))),
    );
    if (paused) return { kind: 'paused', period, why: 'paused' };
    if (await hasProrationsIn(tx.db, subscriptionId, period))
      return { kind: 'paused', period, why: 'prorated' };
  }
  const served = options.served ?? subscription;
  if (options.ahead === 'refuse' && period.start > today) {
    if (subscription.billed_until !== null)
      return { kind: 'ahead', periodStart: period.start, why: 'renewal' };
    if ((plan?.usage_charges.length ?? 0) > 0 && billsUsageBefore(served, period.start))
      return { kind: 'ahead', periodStart: period.start, why: 'usage' };
  }

  const snapshot = subscription.price_breakdown as {
    breakdown?: BreakdownLine[];
    plan_version?: number;
  } | null;
  const priceLine: InvoiceCharge = {
    type: 'subscription',
    description: plan
      ? `${plan.name} (${plan.code}, price version ${snapshot?.plan_version ?? '?'}), ${period.start} to ${period.end}`
      : `Subscription, ${period.start} to ${period.end}`,
    amount: subscription.plan_cost,
    quantity: subscription.quantity,
    breakdown: snapshot?.breakdown ?? [],
    period_start: period.start,
    period_end: period.end,
    usage: null,
    credits_applied: null,
  };
  // Changes prorated against the voided invoice (their items, pending or billed) credited its price
  // and charged the new one from the day of each change: the period is billed at that price again,
  // so that no day is billed at both prices (at today's, the days since a change were twice).
  const voidedPrice =
    existing?.status === 'void' && priced
      ? (existing.lines as unknown as InvoiceCharge[]).find((l) => l.type === 'subscription')
      : undefined;
  const forgiven =
    existing?.status === 'void' && (existing.lines as unknown as Charge[]).some((l) => l.type === 'usage');
  const usageLines = forgiven
    ? []
    : await closeUsageBefore(
        tx,
        served,
        period.start,
        served.plan_id === subscription.plan_id ? plan?.usage_charges : undefined,
      );
  return insertInvoice(tx, subscription, period, [voidedPrice ?? priceLine, ...usageLines]);
}

/**
 * A subscription whose service ended: the invoice of the period after its last one (whose start
 * is `billedUntil`), with only the usage of the last period, when its plan charges usage. None
 * when there is nothing to bill or the invoice exists already.
 */
export async function closingUsageInvoice(
  tx: Tx,
  subscription: SubscriptionRow,
  billedUntil: string,
  served: SubscriptionRow = subscription,
) {
  if (subscription.usage_invoiced_until !== null && subscription.usage_invoiced_until >= billedUntil) return;
  // A trial's usage is free: one that ended while it trialed (canceled, or at its end_date) bills
  // none, not even a charge's minimum (a trial without an end was charged it, trials1 #2).
  if (endlessTrial(subscription)) return;
  if (subscription.status === 'canceled' && (await canceledWhileTrialing(tx.db, subscription.id))) return;
  const period = periodContaining(
    billingAnchor(subscription),
    subscription.billing_interval,
    subscription.interval_count,
    billedUntil,
  );
  const existing = await invoices.findInvoiceForPeriod(tx.db, subscription.id, period);
  if (existing) return;
  const usageLines = await closeUsageBefore(tx, served, billedUntil);
  // Nothing to bill (no usage, or none above a cent): the period is closed all the same, without
  // an invoice of 0.00 (a paused subscription on a usage plan got one every month).
  if (usageLines.every((line) => parseAmount(line.amount) === 0n)) return;
  return insertInvoice(tx, subscription, period, usageLines);
}

type InvoiceCharge = Parameters<typeof invoiceAmounts>[0][number];

/** The end of the description of a credit's rest, carried forward to the next invoice. */
export const CARRIED_FORWARD = ', carried forward';

/**
 * Items applied to an invoice become final with it; a credit billed in part keeps the part billed
 * and leaves the rest pending as an item of its own.
 */
async function billItems(tx: Tx, applied: AppliedItems<InvoiceItemRow>, invoiceId: string): Promise<void> {
  const { carried } = applied;
  if (carried && carried.amount !== carried.item.amount) {
    const part = applied.billed.find(({ item }) => item.id === carried.item.id);
    if (part) await reducePendingItem(tx.db, carried.item.id, part.amount);
    const [rest] = await insertInvoiceItems(tx.db, [
      {
        subscription_id: carried.item.subscription_id,
        kind: carried.item.kind,
        // Once: a credit carried over many invoices keeps one suffix, not one per invoice.
        description: carried.item.description.endsWith(CARRIED_FORWARD)
          ? carried.item.description
          : `${carried.item.description}${CARRIED_FORWARD}`,
        amount: carried.amount,
        period_start: carried.item.period_start,
        period_end: carried.item.period_end,
      },
    ]);
    emitItem(tx, rest!);
  }
  const billed = await billInvoiceItems(
    tx.db,
    applied.billed.map(({ item }) => item.id),
    invoiceId,
  );
  const before = new Map(applied.billed.map(({ item }) => [item.id, item]));
  for (const after of billed) emitItemChange(tx, before.get(after.id)!, after);
}

/**
 * The items still pending on a subscription whose service ended, so that none is lost: billed on
 * a last invoice of its own (kind `proration`, for the day `at`: charges in full, credits up to
 * zero), returned as a draft for the caller to issue and collect; and a credit left after it
 * moved to the customer's balance with the tax it bore (withTaxTheyBore). On a subscription
 * locked for update.
 */
export async function closeEndedItems(
  tx: Tx,
  subscription: SubscriptionRow,
  at: Date,
): Promise<InvoiceRow | undefined> {
  await endChargesWithService(tx, subscription);
  const pending = await pendingInvoiceItems(tx.db, subscription.id);
  if (pending.length === 0) return undefined;
  const day = dayOf(at);
  let invoice: InvoiceRow | undefined;
  if (pending.some((item) => !item.amount.startsWith('-'))) {
    const next = dayOf(new Date(new Date(`${day}T00:00:00Z`).getTime() + 86_400_000));
    const outcome = await insertInvoice(
      tx,
      subscription,
      { start: day, end: next },
      [],
      'proration',
      'percentage',
    );
    if (outcome.kind === 'created' || outcome.kind === 'existing') invoice = outcome.invoice;
  }
  const left = await limitEndingCredits(
    tx,
    subscription.id,
    await pendingInvoiceItems(tx.db, subscription.id),
  );
  const credit = -left.reduce((sum, item) => sum + parseSignedAmount(item.amount), 0n);
  if (left.length > 0 && credit > 0n) {
    const taxed = await withTaxTheyBore(tx, subscription.id, left);
    const total = formatCents(taxed.total);
    const entry = await creditBalance(tx, {
      user_id: subscription.user_id,
      type: 'subscription_ended',
      amount: total,
      taxes: taxed.taxes,
      invoice_shares: taxed.invoiceShares,
      created_at: at,
    });
    const settled = await settleInvoiceItems(
      tx.db,
      left.map((item) => item.id),
      entry.id,
    );
    const before = new Map(left.map((item) => [item.id, item]));
    for (const after of settled) emitItemChange(tx, before.get(after.id)!, after);
    await payOwedFromBalance(tx, subscription, total, at);
  }
  return invoice;
}

/**
 * A backstop for the credits an end gives back: each is priced at what was paid for its days, but a
 * credit note may since have given back the money that paid them through another invoice
 * (invariants2 #1: a downgrade's credit paid the new plan's days, a note on the first invoice gave
 * that credit back, then the end credited those days again: 137.27 of 118.99 paid). Never more
 * goes to the balance than leftForEndingCredit: the newest credits are lowered first, and one
 * lowered to nothing is dropped, each with its event.
 */
async function limitEndingCredits(
  tx: Tx,
  subscriptionId: string,
  pending: InvoiceItemRow[],
): Promise<InvoiceItemRow[]> {
  const credit = -pending.reduce((sum, item) => sum + parseSignedAmount(item.amount), 0n);
  if (credit <= 0n) return pending;
  const most = parseSignedAmount(await leftForEndingCredit(tx.db, subscriptionId));
  let excess = credit - (most > 0n ? most : 0n);
  if (excess <= 0n) return pending;
  const kept = [...pending];
  for (let i = kept.length - 1; i >= 0 && excess > 0n; i--) {
    const item = kept[i]!;
    const amount = parseSignedAmount(item.amount);
    if (amount >= 0n) continue;
    const lowered = amount + (excess < -amount ? excess : -amount);
    excess -= lowered - amount;
    if (lowered === 0n) {
      const dropped = await deletePendingItem(tx.db, item.id);
      if (dropped) emitItemDropped(tx, dropped);
      kept.splice(i, 1);
    } else {
      const changed = await updatePendingItem(tx.db, item.id, {
        amount: formatSignedCents(lowered),
        description: item.description,
        period_end: item.period_end,
      });
      if (changed) {
        emitItemChange(tx, item, changed);
        kept[i] = changed;
      }
    }
  }
  return kept;
}

/** The lines whose days an invoice billed: its price, its changes' charges and credits. */
const BILLS_DAYS = new Set<Charge['type']>(['subscription', 'proration']);
const DAY_MS = 86_400_000;
/** A cent in the units of parseAmount. */
const CENT = parseAmount('0.01');
const daysFrom = (from: string, to: string) =>
  (Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / DAY_MS;

/**
 * What an invoice's lines charged, net, for the days from `from` to `to`: each line in proportion
 * to its own days, a charge at what is left paid of it (less its share of the invoice's discount
 * and of what credit notes took back: paidForLine, as the credits of changes count it).
 */
function chargedForDays(
  lines: readonly Charge[],
  notes: ReadonlyArray<{ lines: ReadonlyArray<{ line_index: number | null; amount: string }> }>,
  from: string,
  to: string,
): bigint {
  let charged = 0n;
  lines.forEach((line, index) => {
    if (!BILLS_DAYS.has(line.type)) return;
    const overlap = daysFrom(
      line.period_start > from ? line.period_start : from,
      line.period_end < to ? line.period_end : to,
    );
    const days = daysFrom(line.period_start, line.period_end);
    if (overlap <= 0 || days <= 0) return;
    const paid = paidForLine({ lines }, notes, index);
    charged += (paid.numerator * BigInt(overlap)) / (paid.denominator * BigInt(days));
  });
  return charged;
}

/** An ending credit's tax of one rate, of the days one invoice billed: the tax report nets it while that invoice stands. */
type EndingCreditTaxLine = InvoiceTaxLine & { invoice_id: string };

/**
 * Credits left pending, with the tax of the days they give back: the tax the invoices that charged
 * those days charged for them, not the rates of today, which a change of the customer's region or
 * of a rate may have moved since, so a customer never gets back tax it did not pay. A credit is
 * what the issued invoices charged for its days (the period's invoice its price, a change's the
 * difference to the next), the latest first: what the last invoice netted of it against a charge
 * for the same days is the earliest. Each share takes the rates of its invoice (its tax snapshot);
 * days no issued invoice charged bear none. Each invoice's shares are taxed together, half up to
 * the cent per rate, as an invoice taxes its lines. The tax lines name their invoice: the tax
 * report nets them while it stands.
 */
async function withTaxTheyBore(
  tx: Tx,
  subscriptionId: string,
  credits: ReadonlyArray<{ amount: string; period_start: string; period_end: string }>,
): Promise<{
  total: bigint;
  taxes: EndingCreditTaxLine[];
  invoiceShares: Array<{ invoice_id: string; amount: string; before_tax: string }>;
}> {
  const from = credits.reduce(
    (min, c) => (c.period_start < min ? c.period_start : min),
    credits[0]!.period_start,
  );
  const to = credits.reduce((max, c) => (c.period_end > max ? c.period_end : max), credits[0]!.period_end);
  const billedBy = await invoices.issuedInvoicesMeeting(tx.db, subscriptionId, from, to);
  const notesOf = new Map(
    await Promise.all(
      billedBy.map(async (invoice) => [invoice.id, await listCreditNotes(tx.db, invoice.id)] as const),
    ),
  );
  const shares = new Map<string, bigint>(); // invoice id → the credits' part it charged
  let total = 0n;
  for (const credit of credits) {
    const amount = -parseSignedAmount(credit.amount);
    total += amount;
    // Latest first: what is left of a credit (the last invoice may have netted part of it against
    // a charge for the same days, a price back to the one the period's invoice billed) is what the
    // latest invoices charged beyond the earlier ones.
    let left = amount;
    for (const invoice of [...billedBy].reverse()) {
      if (left === 0n) break;
      const charged = chargedForDays(
        invoice.lines as unknown as Charge[],
        notesOf.get(invoice.id)!.map((note) => ({ lines: note.lines as unknown as CreditedLine[] })),
        credit.period_start,
        credit.period_end,
      );
      if (charged <= 0n) continue;
      const inCents = ((charged + CENT / 2n) / CENT) * CENT;
      const share = left < inCents ? left : inCents;
      left -= share;
      shares.set(invoice.id, (shares.get(invoice.id) ?? 0n) + share);
    }
  }
  const taxes: EndingCreditTaxLine[] = [];
  const invoiceShares: Array<{ invoice_id: string; amount: string; before_tax: string }> = [];
  for (const invoice of billedBy) {
    const share = shares.get(invoice.id);
    if (share === undefined || share <= 0n) continue;
    let withTax = share;
    const notes = notesOf.get(invoice.id)!;
    const subtotalLeft =
      parseAmount(invoice.subtotal) - notes.reduce((total, note) => total + parseAmount(note.subtotal), 0n);
    for (const line of invoice.taxes as unknown as InvoiceTaxLine[]) {
      // Of the invoice's own subtotal left (less its notes), never more of a rate than it charged
      // less what its notes reversed: each rounds half up on its own (a 0.50 note reversed 0.10 of
      // 19%, then 24.50 of the days 4.66: 4.76 of 4.75 charged, invariants1 #2). A share beyond
      // it (days an earlier invoice's credit paid part of) bears the rate on the rest too.
      const reversed = notes
        .flatMap((note) => note.taxes as unknown as InvoiceTaxLine[])
        .filter((taxed) => taxed.tax_rate_id === line.tax_rate_id)
        .reduce((total, taxed) => total + parseAmount(taxed.amount), 0n);
      const taxLeft = parseAmount(line.amount) - reversed;
      const own = share < subtotalLeft ? share : subtotalLeft > 0n ? subtotalLeft : 0n;
      const ownTax = percentOf(own, line.percentage);
      const tax =
        (ownTax < taxLeft ? ownTax : taxLeft > 0n ? taxLeft : 0n) + percentOf(share - own, line.percentage);
      withTax += tax;
      taxes.push({
        ...line,
        invoice_id: invoice.id,
        taxable_amount: formatCents(share),
        amount: formatCents(tax),
      });
    }
    total += withTax - share;
    invoiceShares.push({
      invoice_id: invoice.id,
      amount: formatCents(withTax),
      before_tax: formatCents(share),
    });
  }
  return { total, taxes, invoiceShares };
}

/**
 * The invoices a subscription that ended still owes (open or uncollectible, oldest first; none
 * with a payment in flight), paid from the customer's balance, up to the `credit` its end just
 * left there: that credit is first what the subscription owes. A period credited for days never
 * paid for (a downgrade while its invoice failed) would otherwise be money to spend on other
 * invoices while the subscription's own stayed unpaid. Also when a payment in flight at its end
 * fails later (services/collection.ts), up to that invoice's amount due. On a subscription locked
 * for update.
 */
export async function payOwedFromBalance(
  tx: Tx,
  subscription: SubscriptionRow,
  credit: string,
  at: Date,
): Promise<void> {
  let left = parseAmount(credit);
  let paidAny = false;
  for (const seen of await invoices.owedInvoicesOf(tx.db, subscription.id)) {
    if (left <= 0n) break;
    const current = (await invoices.lockInvoice(tx.db, seen.id))!;
    if (current.status !== 'open' && current.status !== 'uncollectible') continue;
    if (await findPaymentInFlight(tx.db, current.id)) continue;
    const due = amountDue(current);
    const upTo = parseAmount(due) < left ? due : formatCents(left);
    const taken = await takeFromBalance(
      tx,
      { id: current.id, user_id: current.user_id, total: upTo, amount_credited: '0.00' },
      at,
    );
    if (taken === '0.00') break;
    left -= parseAmount(taken);
    paidAny = true;
    const paid = taken === due;
    const after = await invoices.updateInvoice(tx.db, current.id, {
      amount_from_balance: formatCents(parseAmount(current.amount_from_balance) + parseAmount(taken)),
      ...(paid ? { status: 'paid', paid_at: at, next_collection_at: null } : {}),
    });
    const data = toInvoiceResponse(after);
    tx.emit({
      type: paid ? 'invoice.paid' : 'invoice.updated',
      resource_type: 'invoice',
      resource_id: after.id,
      data,
      previous: previousValues(toInvoiceResponse(current), data),
    });
  }
  if (paidAny) await endDunningIfSettled(tx, subscription, at);
}

/**
 * `invoice_item.updated`: an item billed (its `invoice_id`; an amount cut to the part billed, the
 * rest carried forward as an item of its own), settled by the customer's balance, a pending
 * charge shortened by a later change in its period (its `amount`, `period_end`, `description`),
 * or a pending credit priced again (services/prorations.ts priceCreditAgain).
 */
export function emitItemChange(tx: Tx, before: InvoiceItemRow, after: InvoiceItemRow): void {
  const data = toInvoiceItemResponse(after);
  tx.emit({
    type: 'invoice_item.updated',
    resource_type: 'invoice_item',
    resource_id: after.id,
    data,
    previous: previousValues(toInvoiceItemResponse(before), data),
  });
}

/** `invoice_item.deleted`: a pending item undone the day it was made, or a credit of nothing paid. */
export function emitItemDropped(tx: Tx, item: InvoiceItemRow): void {
  tx.emit({
    type: 'invoice_item.deleted',
    resource_type: 'invoice_item',
    resource_id: item.id,
    data: toInvoiceItemResponse(item),
  });
}

/** `invoice_item.created`, for an item pending from now on. */
export function emitItem(tx: Tx, item: InvoiceItemRow): void {
  tx.emit({
    type: 'invoice_item.created',
    resource_type: 'invoice_item',
    resource_id: item.id,
    data: toInvoiceItemResponse(item),
  });
}

/**
 * Which discount an invoice takes: any (period invoices, a change's), a percentage only (a
 * resume's, the last invoice of an ended subscription's items: a fixed amount is one per period
 * invoice), or any but a fixed amount less what the period's invoice took of it already (a resume
 * on a period's first day, whose invoice a renewal made while paused).
 */
export type Discounts = 'any' | 'percentage' | { fixedTaken: bigint };

/**
 * The items of a change made with proration_behavior always_invoice (or of a resume), and any
 * others pending, on an invoice of their own for [day, end of the period), issued at once; none
 * when they add up to a credit or to nothing (they wait for the next invoice then). When they
 * charge something, the invoice is made even if the discount takes it to 0.00: its charges take
 * the discount in force today, which the next invoice may no longer have (a coupon ended), and
 * a credit beyond what the discount leaves is carried forward.
 */
export async function prorationInvoice(
  tx: Tx,
  subscription: SubscriptionRow,
  period: { start: string; end: string },
  discounts: Discounts = 'any',
): Promise<InvoiceRow | undefined> {
  const pending = await pendingInvoiceItems(tx.db, subscription.id);
  const net = pending.reduce((sum, item) => sum + parseSignedAmount(item.amount), 0n);
  if (net <= 0n) return undefined;
  const outcome = await insertInvoice(tx, subscription, period, [], 'proration', discounts);
  return outcome.kind === 'created' ? outcome.invoice : undefined;
}

/**
 * A draft invoice of the day on the subscription's account, dated today on its time (its test
 * clock's, if any), with the lines given and taxed as its period invoices are. Purchase and
 * one-off invoices. On a subscription locked for update.
 */
async function invoiceOfTheDay(
  tx: Tx,
  subscription: SubscriptionRow,
  kind: 'purchase' | 'one_off',
  lines: ReadonlyArray<{ type: 'credits' | 'one_off'; description: string; amount: string }>,
): Promise<InvoiceRow> {
  await onClockOf(tx, subscription);
  const day = dayOf(subscriptionNow(subscription));
  const next = dayOf(new Date(new Date(`${day}T00:00:00Z`).getTime() + 86_400_000));
  const user = await findUser(tx.db, subscription.user_id);
  const region = user?.region ?? null;
  const rates = region ? await ratesInForce(tx.db, region, day) : [];
  const amounts = invoiceAmounts(
    lines.map((line) => ({
      ...line,
      quantity: 1,
      breakdown: [],
      period_start: day,
      period_end: next,
      usage: null,
      credits_applied: null,
    })),
    rates.map((r) => ({ id: r.id, code: r.code, name: r.name, percentage: r.percentage, region: r.region })),
  );
  const draft = (await invoices.insertInvoice(tx.db, {
    kind,
    subscription_id: subscription.id,
    user_id: subscription.user_id,
    period_start: day,
    period_end: next,
    invoice_date: day,
    region,
    ...amounts,
  }))!;
  tx.emit({
    type: 'invoice.created',
    resource_type: 'invoice',
    resource_id: draft.id,
    data: toInvoiceResponse(draft),
  });
  return draft;
}

/**
 * A purchase invoice (a paid grant's) on the subscription, with one `credits` line, issued at
 * once. On a subscription locked for update.
 */
export async function purchaseInvoice(
  tx: Tx,
  subscription: SubscriptionRow,
  line: { description: string; amount: string },
): Promise<InvoiceRow> {
  const draft = await invoiceOfTheDay(tx, subscription, 'purchase', [{ type: 'credits', ...line }]);
  return issue(tx, draft, subscriptionNow(subscription));
}

export type OneOffOutcome<T> =
  | { kind: 'created'; value: T }
  | { kind: 'no-subscription' }
  | { kind: 'canceled' }
  /** Its service ended (end_date) before today: no invoice will bill a pending item. */
  | { kind: 'ended'; lastDay: string }
  | { kind: 'needs-admin' };

/** Amounts set by hand are an admin's (or the system's), as custom prices are. */
const mayChargeByHand = (actor: Actor) => actor.role === undefined || actor.role === 'admin';

/** A one-off invoice with custom lines, as a draft, dated today on the subscription's time. */
export function createOneOffInvoice(
  ctx: ServiceContext,
  actor: Actor,
  subscriptionId: string,
  lines: ReadonlyArray<{ description: string; amount: string }>,
): Promise<OneOffOutcome<InvoiceRow>> {
  if (!mayChargeByHand(actor)) return Promise.resolve({ kind: 'needs-admin' });
  return inTenant(ctx, actor, async (tx): Promise<OneOffOutcome<InvoiceRow>> => {
    const subscription = await lockSubscription(tx.db, subscriptionId);
    if (!subscription) return { kind: 'no-subscription' };
    if (subscription.status === 'canceled') return { kind: 'canceled' };
    const draft = await invoiceOfTheDay(
      tx,
      subscription,
      'one_off',
      lines.map((line) => ({ type: 'one_off' as const, ...line })),
    );
    return { kind: 'created', value: draft };
  });
}

/** A one-off charge waiting for the subscription's next invoice, dated today on its time. */
export function createOneOffItem(
  ctx: ServiceContext,
  actor: Actor,
  subscriptionId: string,
  charge: { description: string; amount: string },
): Promise<OneOffOutcome<InvoiceItemRow>> {
  if (!mayChargeByHand(actor)) return Promise.resolve({ kind: 'needs-admin' });
  return inTenant(ctx, actor, async (tx): Promise<OneOffOutcome<InvoiceItemRow>> => {
    const subscription = await lockSubscription(tx.db, subscriptionId);
    if (!subscription) return { kind: 'no-subscription' };
    if (subscription.status === 'canceled') return { kind: 'canceled' };
    await onClockOf(tx, subscription);
    const day = dayOf(subscriptionNow(subscription));
    const ended = lastDayServed(subscription);
    if (ended && ended.lastDay < day) return { kind: 'ended', lastDay: ended.lastDay };
    const [item] = await insertInvoiceItems(tx.db, [
      {
        subscription_id: subscriptionId,
        kind: 'one_off',
        description: charge.description,
        amount: formatCents(parseAmount(charge.amount)),
        period_start: day,
        period_end: dayOf(new Date(Date.parse(`${day}T00:00:00Z`) + 86_400_000)),
      },
    ]);
    emitItem(tx, item!);
    return { kind: 'created', value: item! };
  });
}

/**
 * A subscription's new draft invoice for `period`: the lines given, then every pending invoice
 * item (billing/proration.ts, applyItems: credits up to the invoice's zero, the rest carried).
 * On a subscription locked for update, so no other invoice takes the same items.
 */
async function insertInvoice(
  tx: Tx,
  subscription: SubscriptionRow,
  period: { start: string; end: string },
  lines: InvoiceCharge[],
  kind: 'period' | 'proration' = 'period',
  /**
   * Which discount reduces it: any on period invoices and a change's (the Discount schema); only
   * a percentage on a resume's and on the last invoice of an ended subscription's items (it takes
   * its share of the charges, as it would have where they landed; a fixed amount is one per
   * period invoice: a pause and resume each day would take it each day).
   */
  discounts: Discounts = 'any',
): Promise<CreateInvoiceOutcome> {
  // Two independent reads, in one write and one round trip.
  const [user, pending] = await Promise.all([
    findUser(tx.db, subscription.user_id),
    pendingInvoiceItems(tx.db, subscription.id),
  ]);
  const region = user?.region ?? null;
  // The invoice date is the first day of the period, billed in advance: its rates apply, forever.
  const rates = region ? await ratesInForce(tx.db, region, period.start) : [];
  // The discount reduces what the invoice charges (its price, usage and pending charges), never
  // a credit: a credit is of what was paid (services/prorations.ts creditedPrice), after whatever
  // discount that invoice had, so a discount here would take its share of it a second time (or
  // one it never had: another plan's coupon). Credits then apply up to zero, after the discount.
  const discounted = discountOfPeriod(subscription, period, kind);
  const charged = chargedForDiscount(discounted, lines, pending);
  const discount =
    discounts !== 'percentage' || discounted.discount?.percent_off != null
      ? await discountLine(
          tx,
          discounted,
          period,
          charged,
          typeof discounts === 'object' ? discounts.fixedTaken : 0n,
          kind === 'period',
        )
      : undefined;
  // Usage then paid from the customer's prepaid credits, as far as the discount leaves it (its
  // share of it, in proportion to what the discount reduced): only the rest is billed (and taxed),
  // and credits never pay what a coupon forgave. At the renewal's time on a test clock (not the
  // time the clock was advanced to): what the credits pay must not depend on how far the clock
  // went in one step.
  const discountedAmount =
    discount && forDiscountedPlan(discounted) ? -parseSignedAmount(discount.amount) : 0n;
  const shares = usageShares(lines, discountedAmount, charged);
  const payment = await payUsageFromWallets(
    tx,
    subscription,
    lines,
    tx.occurredAt() ?? subscriptionNow(subscription),
    (line, index) => roundToCents(parseAmount(line.amount)) - (shares.get(index) ?? 0n),
  );
  // Each usage line keeps its share of the discount: what its charge was after the discount
  // (the usage margin report's revenue), which the lines alone no longer tell.
  const linesWithShares = payment.lines.map((line, index) => {
    const share = shares.get(index) ?? 0n;
    return share > 0n ? { ...line, discount_share: formatCents(share) } : line;
  });
  const linesTotal = linesWithShares.reduce((sum, line) => sum + parseSignedAmount(line.amount), 0n);
  const applied = applyItems(linesTotal + (discount ? parseSignedAmount(discount.amount) : 0n), pending);
  const itemLines = applied.billed.map(({ item, amount }): InvoiceCharge => ({
    type: item.kind === 'one_off' ? 'one_off' : 'proration',
    description: item.description,
    amount,
    quantity: 1,
    breakdown: [],
    period_start: item.period_start,
    period_end: item.period_end,
    usage: null,
    credits_applied: null,
    invoice_item_id: item.id,
  }));
  const charges = [...linesWithShares, ...itemLines];
  // A once discount is used up by the first invoice it reduces: kept on it, to be given back if
  // it is a draft voided.
  const usesUp = discount !== undefined && subscription.discount?.duration === 'once';
  const amounts = invoiceAmounts(
    discount ? [...charges, discount] : charges,
    rates.map((r) => ({ id: r.id, code: r.code, name: r.name, percentage: r.percentage, region: r.region })),
  );
  const created = await invoices.insertInvoice(tx.db, {
    kind,
    subscription_id: subscription.id,
    user_id: subscription.user_id,
    period_start: period.start,
    period_end: period.end,
    invoice_date: period.start,
    region,
    ...amounts,
    ...(usesUp ? { discount_used: JSON.stringify(subscription.discount) } : {}),
  });
  // Made by a concurrent request between our look and our insert: that one is the invoice.
  if (!created)
    return {
      kind: 'existing',
      invoice: (await invoices.findInvoiceForPeriod(tx.db, subscription.id, period))!,
    };
  await payment.finish(created.id);
  await billItems(tx, applied, created.id);
  if (usesUp) await endDiscount(tx, subscription);
  tx.emit({
    type: 'invoice.created',
    resource_type: 'invoice',
    resource_id: created.id,
    data: toInvoiceResponse(created),
  });
  return { kind: 'created', invoice: created, customer: user };
}

/**
 * The subscription as its discount stands for a `kind` invoice of `period`: with the repeating
 * discount that ran out (`ended_discount`) when the period is one of its months, invoiced again
 * after a void; as it is otherwise.
 */
function discountOfPeriod(
  subscription: SubscriptionRow,
  period: { start: string },
  kind: 'period' | 'proration',
): SubscriptionRow {
  const ended = subscription.ended_discount;
  if (kind !== 'period' || ended?.from === undefined || ended.end === null) return subscription;
  const inMonths = period.start >= ended.from && new Date(`${period.start}T00:00:00Z`) < new Date(ended.end);
  return inMonths ? { ...subscription, discount: ended } : subscription;
}

/** Whether the subscription's discount reduces its own plan's price and usage (chargedForDiscount). */
const forDiscountedPlan = (subscription: SubscriptionRow) => {
  const planIds = subscription.discount?.plan_ids ?? [];
  return planIds.length === 0 || (subscription.plan_id !== null && planIds.includes(subscription.plan_id));
};

/**
 * What an invoice of `lines` (its price and usage) and the `pending` items charges for the
 * subscription's discount (micros). A coupon for some plans reduces the charges for those: the
 * price and usage of the plan the subscription is on, a change's charge of the plan it charged for
 * (its item's), whatever plan it lands on; one-off charges go with the subscription's plan.
 */
function chargedForDiscount(
  subscription: SubscriptionRow,
  lines: ReadonlyArray<{ amount: string }>,
  pending: readonly InvoiceItemRow[],
): bigint {
  const planIds = subscription.discount?.plan_ids ?? [];
  const forPlan = (planId: string | null) =>
    planIds.length === 0 || (planId !== null && planIds.includes(planId));
  const positive = (amount: string) => {
    const value = parseSignedAmount(amount);
    return value > 0n ? value : 0n;
  };
  const ofItems = pending.reduce((sum, item) => {
    const plan =
      item.kind === 'proration_charge' && item.plan_id !== null ? item.plan_id : subscription.plan_id;
    return forPlan(plan) ? sum + positive(item.amount) : sum;
  }, 0n);
  return forPlan(subscription.plan_id)
    ? lines.reduce((sum, line) => sum + positive(line.amount), ofItems)
    : ofItems;
}

/**
 * The subscription's discount on an invoice that charges `charged` (micros, of its plans when it
 * is for some) for `period`, as its last line; none when it has none, or it reduces nothing. A discount run out (the period starts
 * at or after its end) is removed now. On a subscription locked for update.
 */
async function discountLine(
  tx: Tx,
  subscription: SubscriptionRow,
  period: { start: string; end: string },
  charged: bigint,
  /** What invoices of the period took of a fixed amount already (it is one per period). */
  fixedTaken = 0n,
  /** A period's own invoice (not a change's): a repeating discount reduces its months' only. */
  periodInvoice = false,
): Promise<InvoiceCharge | undefined> {
  const { discount } = subscription;
  if (discount === null) return undefined;
  // A `once` discount reduces a period's invoice from the period it was given in on: one that
  // ended before (billed by hand for a backdated subscription) neither takes nor uses it up, as
  // a repeating one's months (import1 #1).
  if (
    periodInvoice &&
    discount.duration === 'once' &&
    Date.parse(`${period.end}T00:00:00Z`) <= Date.parse(discount.start)
  )
    return undefined;
  const subtotal = charged;
  // `charged` counts the charges of the coupon's plans only (insertInvoice): checked already.
  const verdict = discountFor(
    { ...discount, plan_ids: [] },
    subscription.plan_id,
    period.start,
    subscriptionNow(subscription),
    subtotal,
    periodInvoice,
  );
  if (verdict.kind === 'ended') await endDiscount(tx, subscription, true);
  if (verdict.kind !== 'applies') return undefined;
  const left = discount.amount_off === null ? verdict.amount : parseAmount(discount.amount_off) - fixedTaken;
  const amount = left < verdict.amount ? left : verdict.amount;
  if (amount <= 0n) return undefined;
  return {
    type: 'discount',
    description: discountLabel(discount),
    amount: `-${formatCents(amount)}`,
    quantity: 1,
    breakdown: [],
    period_start: period.start,
    period_end: period.end,
    usage: null,
    credits_applied: null,
    coupon_id: discount.coupon_id,
  };
}

export type InvoiceChangeOutcome =
  | { kind: 'changed'; invoice: InvoiceRow }
  | { kind: 'missing' }
  | { kind: 'stale'; current: InvoiceRow }
  | { kind: 'wrong-status'; current: InvoiceRow; allowedFrom: readonly InvoiceStatus[] }
  | { kind: 'payment-in-flight'; current: InvoiceRow; payment: Pick<PaymentRow, 'id' | 'status'> }
  | { kind: 'credited'; current: InvoiceRow };

/**
 * draft → open, with the tenant's next invoice number (gapless: taken under a row lock); paid at
 * once when nothing is left due (see issue()).
 */
export function finalizeInvoice(
  ctx: ServiceContext,
  actor: Actor,
  id: string,
  ifMatch?: VersionCondition,
): Promise<InvoiceChangeOutcome> {
  return inTenant(ctx, actor, async (tx): Promise<InvoiceChangeOutcome> => {
    const current = await invoices.lockInvoice(tx.db, id);
    if (!current) return { kind: 'missing' };
    if (!satisfies(ifMatch, current.version)) return { kind: 'stale', current };
    if (current.status !== 'draft') return { kind: 'wrong-status', current, allowedFrom: ['draft'] };
    return { kind: 'changed', invoice: await issue(tx, current, await invoiceNow(tx, current)) };
  });
}

/** Now for an invoice: its subscription's test clock's time (which its events then carry), or now. */
async function invoiceNow(tx: Tx, invoice: InvoiceRow): Promise<Date> {
  const subscription = await findSubscription(tx.db, invoice.subscription_id);
  if (!subscription) return new Date();
  await onClockOf(tx, subscription);
  return subscriptionNow(subscription);
}

/**
 * draft → open, in the caller's transaction (the API, and renewals), given the draft as read under
 * its lock (or just made; `customer`: its user as this transaction read it). The customer's balance pays what it can of the amount due, after tax
 * (not of a purchase of credits: that invoice is its grant's, paid by its own payment). An
 * invoice left with nothing due (a zero total, or paid in full by the balance) is paid at once,
 * with `invoice.paid` after `invoice.finalized`, whoever issues it: a renewal, a change, the API's
 * finalize (no payment could pay it: a payment is never of 0.00).
 */
export async function issue(
  tx: Tx,
  draft: InvoiceRow,
  at: Date = new Date(),
  customer?: UserRow,
): Promise<InvoiceRow> {
  const id = draft.id;
  const taxed = await withRatesInForce(tx, draft);
  const fromBalance = taxed.kind === 'purchase' ? '0.00' : await takeFromBalance(tx, taxed, at, customer);
  const invoice = await invoices.openWithNextNumber(tx.db, id, {
    finalized_at: at,
    ...(fromBalance !== '0.00' ? { amount_from_balance: fromBalance } : {}),
  });
  tx.emit({
    type: 'invoice.finalized',
    resource_type: 'invoice',
    resource_id: id,
    data: toInvoiceResponse(invoice),
    // Also what the customer's balance paid (amount_from_balance, amount_due).
    previous: previousValues(toInvoiceResponse(draft), toInvoiceResponse(invoice)),
  });
  if (parseAmount(amountDue(invoice)) > 0n) return invoice;
  const paid = await invoices.updateInvoice(tx.db, id, { status: 'paid', paid_at: at });
  tx.emit({
    type: 'invoice.paid',
    resource_type: 'invoice',
    resource_id: id,
    data: toInvoiceResponse(paid),
    previous: { status: 'open', paid_at: null },
  });
  return paid;
}

/**
 * A draft as it is issued: taxed with the rates in force on its date as they are now. A rate
 * superseded, added or ended for that date since the draft was made (a draft by hand, finalized
 * later) is not the one the invoice carries "forever" (monthend1 #1). Unchanged, the draft as is.
 */
export async function withRatesInForce(tx: Tx, draft: InvoiceRow): Promise<InvoiceRow> {
  const rates = draft.region ? await ratesInForce(tx.db, draft.region, draft.invoice_date) : [];
  const key = (list: ReadonlyArray<{ id: string; percentage: string }>) =>
    list
      .map((r) => `${r.id} ${r.percentage}`)
      .sort()
      .join();
  const had = (draft.taxes as unknown as InvoiceTaxLine[]).map((t) => ({
    id: t.tax_rate_id,
    percentage: t.percentage,
  }));
  if (key(rates) === key(had)) return draft;
  const amounts = invoiceAmounts(
    draft.lines as unknown as Charge[],
    rates.map((r) => ({ id: r.id, code: r.code, name: r.name, percentage: r.percentage, region: r.region })),
  );
  return invoices.retaxDraft(tx.db, draft.id, {
    taxes: JSON.stringify(amounts.taxes),
    tax_total: amounts.tax_total,
    total: amounts.total,
  });
}

/**
 * A draft, open or uncollectible invoice is voided: it stays, with its number, and is owed no
 * more. Not while a payment of it is pending or processing: that money may be moving (payments
 * are created under the same invoice lock, so none can start in between).
 */
export function voidInvoice(
  ctx: ServiceContext,
  actor: Actor,
  id: string,
  ifMatch?: VersionCondition,
): Promise<InvoiceChangeOutcome> {
  return inTenant(ctx, actor, async (tx): Promise<InvoiceChangeOutcome> => {
    // The lock order of every money decision: the subscription, then the invoice.
    const seen = await invoices.findInvoice(tx.db, id);
    if (!seen) return { kind: 'missing' };
    const subscription = (await lockSubscription(tx.db, seen.subscription_id))!;
    const current = (await invoices.lockInvoice(tx.db, id))!;
    if (!satisfies(ifMatch, current.version)) return { kind: 'stale', current };
    const allowedFrom: InvoiceStatus[] = ['draft', 'open', 'uncollectible'];
    if (!allowedFrom.includes(current.status) && !paidByCreditsAlone(current))
      return { kind: 'wrong-status', current, allowedFrom };
    // Credit notes are final and stay in the tax report: voiding their invoice would leave them
    // there alone, reversing tax that no invoice charges any more.
    if (parseAmount(current.amount_credited) > 0n) return { kind: 'credited', current };
    const payment = await findPaymentInFlight(tx.db, id);
    if (payment) return { kind: 'payment-in-flight', current, payment };
    await onClockOf(tx, subscription);
    const invoice = await voidLocked(tx, actor, subscription, current, subscriptionNow(subscription));
    // What a change's invoice charged was never paid: a later credit of those days is priced
    // again. (A period's invoice voided is invoiced again at its price: the credit nets that.)
    if (current.kind === 'proration') await repricePendingCredits(tx, subscription.id);
    return { kind: 'changed', invoice };
  });
}

/**
 * A paid invoice that nothing but prepaid credits paid (its usage): nothing was collected, so a
 * void refunds no money, and it is the way to give those credits back.
 */
function paidByCreditsAlone(invoice: InvoiceRow): boolean {
  const lines = invoice.lines as unknown as Charge[];
  return (
    invoice.status === 'paid' &&
    parseAmount(invoice.total) === 0n &&
    parseAmount(invoice.amount_from_balance) === 0n &&
    // No credit or discount line: nothing but wallet credits made it 0.00.
    lines.every((line) => parseSignedAmount(line.amount) >= 0n) &&
    lines.some((line) => line.credits_applied && parseAmount(line.credits_applied.amount) > 0n)
  );
}

/**
 * Voids an open or uncollectible invoice with no payment in flight, locked after its
 * subscription: what the customer's balance paid of it goes back to the balance, credits that
 * paid its usage go back to their wallets, a purchase's grant is canceled.
 */
export async function voidLocked(
  tx: Tx,
  actor: Actor,
  subscription: SubscriptionRow,
  current: InvoiceRow,
  voidedAt: Date,
): Promise<InvoiceRow> {
  const id = current.id;
  const invoice = await invoices.updateInvoice(tx.db, id, {
    status: 'void',
    voided_at: voidedAt,
    next_collection_at: null,
  });
  // What the customer's balance paid of it is owed back: nothing is owed any more. But not the
  // share of a credit its subscription's end left for the very days it billed (a period's or a
  // change's invoice): those days are forgiven now, and a credit for days never paid is no money
  // to spend elsewhere. The share of days another invoice billed stays the customer's.
  const fromBalance = parseAmount(current.amount_from_balance);
  if (fromBalance > 0n) {
    const forItsDays =
      current.kind === 'period' || current.kind === 'proration'
        ? parseAmount((await endingCreditOfInvoice(tx.db, subscription.id, current)).credit)
        : 0n;
    const owed = fromBalance - (forItsDays < fromBalance ? forItsDays : fromBalance);
    if (owed > 0n)
      await creditBalance(tx, {
        user_id: current.user_id,
        type: 'invoice_voided',
        amount: formatCents(owed),
        invoice_id: id,
        created_at: voidedAt,
      });
  }
  await refundUsageCredits(tx, actor, { id, lines: current.lines as unknown as Charge[] }, voidedAt);
  if (current.kind === 'purchase') await cancelPaidGrant(tx, id, voidedAt);
  // A draft billed no one: the once discount it used up is the subscription's again (unless it
  // has another discount by now), for the invoice made again.
  if (current.status === 'draft' && subscription.discount === null) {
    const used = await invoices.discountUsedBy(tx.db, id);
    if (used !== null) await giveBackDiscount(tx, subscription, used);
  }
  // So are the items it took: pending again, for the invoice made again (retest6 #4). An issued
  // invoice voided forgave its items with it, but for a period invoice's items of its own period
  // (a change's credit and charge, a pause's credit, netted by an invoice made late or made
  // again): the voided invoice still prices the period (services/prorations.ts pricesPeriod), so
  // they are pending again too, made again as billed items are final. Else the period invoiced
  // again billed its price without them, and a change before that was prorated as if its days
  // were paid at the old price (retest13 #1, retest16 #3).
  if (current.status === 'draft')
    for (const item of await unbillInvoiceItems(tx.db, id))
      emitItemChange(tx, { ...item, invoice_id: id }, item);
  else if (current.kind === 'period') {
    const netted = await prorationItemsBilledBy(tx.db, id, {
      start: current.period_start,
      end: current.period_end,
    });
    const again = await insertInvoiceItems(
      tx.db,
      netted.map(({ subscription_id, kind, description, amount, period_start, period_end, plan_id }) => ({
        subscription_id,
        kind,
        description,
        amount,
        period_start,
        period_end,
        plan_id,
      })),
    );
    for (const item of again) emitItem(tx, item);
    await pauseAgainAfterVoid(
      tx,
      actor.tenantId,
      subscription,
      { start: current.period_start, end: current.period_end },
      again,
      id,
    );
  }
  tx.emit({
    type: 'invoice.voided',
    resource_type: 'invoice',
    resource_id: id,
    data: toInvoiceResponse(invoice),
    previous: previousValues(toInvoiceResponse(current), toInvoiceResponse(invoice)),
  });
  // Forgiven, it fails no more: dunning ends with the subscription's last failing invoice.
  await endDunningIfSettled(tx, subscription, voidedAt);
  return invoice;
}

/** Each tax code's totals per month of invoice date ('YYYY-MM' from and to, inclusive). */
export function taxReport(
  ctx: ServiceContext,
  actor: Actor,
  from: string,
  to: string,
): Promise<invoices.TaxReportRow[]> {
  const [y, m] = to.split('-').map(Number) as [number, number];
  const end =
    m === 12
      ? `${String(y + 1).padStart(4, '0')}-01-01`
      : `${to.slice(0, 4)}-${String(m + 1).padStart(2, '0')}-01`;
  return inTenant(ctx, actor, (tx) => invoices.taxReport(tx.db, `${from}-01`, end));
}
