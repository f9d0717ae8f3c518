// Mid-period price changes (a PATCH of plan_id, quantity, plan_cost or billing_interval), billed
// by the day as proration_behavior says (see ProrationBehavior in the contract, and
// billing/proration.ts for the arithmetic). Planned before the subscription is written (what the
// change sets besides the price: a new billing anchor), performed after it (the items and the
// invoices, which read the subscription as changed).
import { formatCents, type Micros, parseAmount, parseSignedAmount, sameAmount } from '../billing/money.js';
import { type Period, periodContaining } from '../billing/periods.js';
import {
  addPaid,
  daysBetween,
  type Paid,
  paidForLine,
  paidForPrice,
  prorated,
  type ProrationItem,
  prorationItems,
} from '../billing/proration.js';
import { billingAnchor, dayOf, lastDayServed, subscriptionNow } from '../billing/subscription-time.js';
import type {
  InvoiceItemRow,
  InvoiceRow,
  PausedCharges,
  SubscriptionPatch,
  SubscriptionRow,
} from '../database/schema.js';
import { listCreditNotes } from '../queries/credit-notes.js';
import { importedPeriodPrice } from '../queries/events.js';
import {
  deletePendingItem,
  insertInvoiceItems,
  type NewInvoiceItem,
  pendingInvoiceItems,
  proratedBeforeVoid,
  prorationItemsIn,
  updatePendingItem,
} from '../queries/invoice-items.js';
import {
  findInvoice,
  findInvoiceForPeriod,
  issuedInvoicesMeeting,
  overlappingPeriodInvoice,
} from '../queries/invoices.js';
import { findPlan } from '../queries/plans.js';
import * as subscriptions from '../queries/subscriptions.js';
import { issueAndCollect, type Settle } from './collection.js';
import type { Tx } from './context.js';
import {
  CARRIED_FORWARD,
  type Discounts,
  emitItem,
  emitItemChange,
  emitItemDropped,
  invoiceForPeriod,
  prorationInvoice,
} from './invoices.js';
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
      discounts?: Discounts;
      /** Pending charges of the period shortened to end on `day` (Credited.shorten). */
      shorten?: InvoiceItemRow[];
      /** Pending credits of the price charged again, ended on `day` instead (chargeFor). */
      chargedAgain?: InvoiceItemRow[];
      /**
       * A change (not a resume, which brings back what its pause shortened): the charge a credit
       * paid only up to its `until` dropped comes back with the price (endCreditsChargedAgain).
       */
      chargesBack?: boolean;
    }
  /** A new schedule from `day`: the old period's credit, then the new first period invoiced now. */
  | { mode: 'new-schedule'; items: ProrationItem[]; day: string; shorten?: InvoiceItemRow[] };

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
 * Whether the period's invoice prices its days: one not voided; or one voided after a change or a
 * pause in the period was prorated against it. Their items credit its price from their day, so the
 * period is invoiced again at that price (invoiceForPeriod), and what comes later in it is
 * prorated against that price too: else a day would be billed at two prices (pause14 #1, #3).
 */
export async function pricesPeriod(
  tx: Tx,
  subscriptionId: string,
  invoice: InvoiceRow,
  period: Period,
): Promise<boolean> {
  if (invoice.status !== 'void') return true;
  if (!(await proratedBeforeVoid(tx.db, subscriptionId, period, invoice.id))) return false;
  // Never invoiced again while an invoice of the schedule before a start date moved bills some
  // of its days (invoiceForPeriod refuses it): voided, its price is forgiven for good, and a
  // pause in it credits nothing it did not pay (retest22 #2).
  return (await overlappingPeriodInvoice(tx.db, subscriptionId, period)) === undefined;
}

/**
 * Whether the subscription's period was billed: by its period invoice (pricesPeriod); or by a
 * resume that charged its rest, without one (billed_until is then past it; a trial's or a pause's
 * periods are never prorated, so their billed_until does not mislead) or after it was voided
 * before anything in the period was prorated against it (its proration items: that resume's
 * charge, and what later changes and pauses made of it). Else a second pause credited nothing
 * of the days the resume had invoiced, and a change was not prorated (void15 #1, #2).
 */
export async function periodBilled(tx: Tx, s: SubscriptionRow, period: Period): Promise<boolean> {
  const invoice = await findInvoiceForPeriod(tx.db, s.id, period);
  if (!invoice) return s.billed_until !== null && s.billed_until >= period.end;
  if (await pricesPeriod(tx, s.id, invoice, period)) return true;
  return (await prorationItemsIn(tx.db, s.id, period)).length > 0;
}

/** What a change or a pause credits of the days left of a period, and the charges it shortens. */
export interface Credited {
  /** The price credited (as its items describe it) and what is left paid of it. */
  amount: string;
  label: string;
  paid?: Paid | undefined;
  /**
   * Charges of the period still pending (never paid) that billed the days left: they are
   * shortened to end on the day of the change (or dropped), not credited.
   */
  shorten: InvoiceItemRow[];
  /** Paid up to this day only: the days from it were a pending charge's, shortened away. */
  until?: string | undefined;
}

/**
 * The price whose unused days a change or a pause credits, with what is left paid of it: so no
 * day is credited above what was paid, or credited twice, and the discount where the credit lands
 * never reduces it again.
 *
 * Before any change in the period, its invoice paid the days (billing/proration.ts paidForPrice:
 * less what credit notes took back, and less its share of the invoice's discount). After one,
 * each day of the rest was paid by that invoice's price and by every proration item of the period
 * (a change's credit and charge, a pause's credit, a resume's charge) as its invoice left it: less
 * what credit notes took back, a charge less its share of that invoice's discount, nothing of an
 * invoice voided. A charge still pending was paid by no one: it is shortened instead (`shorten`),
 * so that whatever discount its invoice takes, it takes it of the days the charge's price was in
 * force, and no credit of it can outgrow what will be paid. Items are rounded to the cent, so
 * their sum is within a cent each of the price in force (or of nothing): within that, exactly it.
 */
export async function creditedPrice(
  tx: Tx,
  s: SubscriptionRow,
  period: Period,
  day: string,
): Promise<Credited> {
  return creditedOf(
    tx,
    s.id,
    { amount: s.plan_cost, label: await priceLabel(tx, s) },
    period,
    undefined,
    day,
  );
}

/**
 * creditedPrice of `price` (its amount and label) on subscription `subscriptionId`; with
 * `madeAt`, as a credit made then sees the period: by the items made before it (and the rests of
 * their credits carried forward since), with what became of their invoices and the period's.
 * With `day`, of a change or a pause made that day.
 */
async function creditedOf(
  tx: Tx,
  subscriptionId: string,
  price: { amount: string; label: string },
  period: Period,
  madeAt?: Date,
  day?: string,
): Promise<Credited> {
  const listed = { ...price, shorten: [] };
  const [found, all] = await Promise.all([
    findInvoiceForPeriod(tx.db, subscriptionId, period),
    prorationItemsIn(tx.db, subscriptionId, period),
  ]);
  const items = madeAt
    ? all.filter(
        (item) =>
          item.created_at < madeAt ||
          (item.kind === 'proration_credit' && item.description.endsWith(CARRIED_FORWARD)),
      )
    : all;
  // After a start date moved (subscriptions.ts daysBeforeNewSchedule), the new schedule's period
  // has no invoice: its days up to the old schedule's next period were billed at the price (by
  // the old schedule's invoice, or by the system an import came from), and the days from there
  // by a pending charge, which starts after `day`. That charge is shortened away, and the price
  // credited up to its start only (retest16 #4): before, nothing was credited.
  if (day !== undefined && !found) {
    const ahead = items.filter(
      (item) =>
        item.kind === 'proration_charge' &&
        item.invoice_id === null &&
        item.balance_transaction_id === null &&
        item.period_start > day,
    );
    if (ahead.length > 0 && ahead.length === items.length) {
      const paid = await paidByOldSchedule(tx, subscriptionId, price, period, day);
      return {
        ...listed,
        ...(paid ? { paid } : {}),
        shorten: ahead,
        until: ahead.map((item) => item.period_start).sort()[0],
      };
    }
    // As such a credit is priced again (at a resume, the charge it dropped made again since).
    if (items.length === 0) {
      const paid = await paidByOldSchedule(tx, subscriptionId, price, period, day);
      if (paid) return { ...listed, paid };
    }
  }
  const invoice = found && (await pricesPeriod(tx, subscriptionId, found, period)) ? found : undefined;
  // An imported subscription's first period was paid to the system it came from, at the price it
  // was imported at: as a period invoice here would have (invariants3 #1: after a change with
  // `none`, its days were credited at the new price; #2: an upgrade's credit was priced at what the
  // upgrade's invoice took alone, "31.00 paid of 62.00").
  const imported = found ? undefined : await importedPeriodPrice(tx.db, subscriptionId, period.end);
  const paidForPeriod = invoice
    ? paidForPrice({ lines: linesOf(invoice) }, await creditNotesOf(tx, invoice))
    : imported !== undefined
      ? { numerator: parseAmount(imported), denominator: 1n }
      : undefined;
  if (items.length === 0) {
    if (imported !== undefined && !sameAmount(imported, price.amount))
      return {
        amount: imported,
        label: `${price.label}${importedAt(imported)}`,
        paid: paidForPeriod!,
        shorten: [],
      };
    if (!invoice || !paidForPeriod) return listed;
    // A change made since without proration (`none`) did not bill its price for these days: they
    // were paid at the price the invoice billed, and are credited at that, never at the new one.
    const billed = linesOf(invoice).find((line) => line.type === 'subscription')!;
    if (!sameAmount(billed.amount, price.amount))
      return {
        amount: billed.amount,
        label: `${price.label}${billedAt(billed.amount)}`,
        paid: paidForPeriod,
        shorten: [],
      };
    return { ...listed, paid: paidForPeriod };
  }
  const periodDays = BigInt(daysBetween(period.start, period.end));
  let paid: Paid = paidForPeriod ?? { numerator: 0n, denominator: 1n };
  let slack = 0n; // what the items' rounding may add up to, over the period
  const shorten: InvoiceItemRow[] = [];
  const billedBy = new Map<string, Promise<{ invoice: InvoiceRow; notes: CreditNoteLines[] } | undefined>>();
  for (const item of items) {
    const days = BigInt(daysBetween(item.period_start, item.period_end));
    if (days <= 0n) continue;
    slack += (100n * periodDays + days - 1n) / days;
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
      shorten.push(item);
      continue;
    }
    paid = addPaid(paid, value, { numerator: periodDays, denominator: days });
  }
  // Within the items' rounding of the price in force, that price exactly; of nothing (a pending
  // charge billed the days), nothing.
  const near = (target: Micros) => {
    const apart = paid.numerator - target * paid.denominator;
    const within = slack * paid.denominator;
    return apart <= within && apart >= -within;
  };
  if (near(0n) || paid.numerator < 0n)
    return { ...listed, paid: { numerator: 0n, denominator: 1n }, shorten };
  if (shorten.length === 0 && near(parseAmount(price.amount))) return listed;
  return { ...listed, paid, shorten };
}

/**
 * What the old schedule's invoice holding `day` paid for a day of `price`, as a price for the new
 * schedule's `period` (its days may not be as many: a start moved later made 29-day periods of
 * 31-day ones). A credit of its days made on the new schedule is then of what was paid for each
 * (retest20 #5: 17 of 29 days of 31.00 credited 18.17 for 17.00 paid), after its discount and
 * credit notes, and nothing when it was voided (invariants1 #1: the list price was credited, for
 * periods as long, whatever was paid), also when it billed another price. Undefined when there is
 * no such invoice, or it paid the price whole for as many days.
 */
async function paidByOldSchedule(
  tx: Tx,
  subscriptionId: string,
  price: { amount: string },
  period: Period,
  day: string,
): Promise<Paid | undefined> {
  const next = dayOf(new Date(Date.parse(`${day}T00:00:00Z`) + 86_400_000));
  const old = await overlappingPeriodInvoice(tx.db, subscriptionId, { start: day, end: next });
  if (!old) {
    const voided = await overlappingPeriodInvoice(tx.db, subscriptionId, { start: day, end: next }, 'void');
    return voided ? { numerator: 0n, denominator: 1n } : undefined;
  }
  const lines = linesOf(old);
  // Of another price (a change since made with `none`), the days are still what it paid for
  // them: credited at that, never at the new price, which nothing billed (invariants2 #2).
  if (!lines.some((line) => line.type === 'subscription')) return undefined;
  const paid = paidForPrice({ lines }, await creditNotesOf(tx, old));
  if (!paid) return undefined;
  const oldDays = BigInt(daysBetween(old.period_start, old.period_end));
  const newDays = BigInt(daysBetween(period.start, period.end));
  if (oldDays === newDays && paid.numerator === parseAmount(price.amount) * paid.denominator)
    return undefined;
  return { numerator: paid.numerator * newDays, denominator: paid.denominator * oldDays };
}

/** A pending credit as its description says it was made (prorationItems). */
interface MadeCredit {
  /** The price credited, and its label. */
  price: { amount: string; label: string };
  period: Period;
  day: string;
  /** The day its price came back, when it did (the credit is of the days before it). */
  until: string | undefined;
}
const DAY = String.raw`\d{4}-\d{2}-\d{2}`;
const CREDIT = new RegExp(
  String.raw`^Unused time on (.+) from (${DAY}) to (${DAY}) \(\d+ of (\d+) days\)` +
    String.raw`(?:, at \d+\.\d+ paid of (\d+\.\d+))?(?:, until (${DAY}) \(\d+ of \d+ days\))?$`,
);
const LABEL_PRICE = /(?:at|of) (\d+\.\d+) (?:a|every) [^()]*$|\((\d+\.\d+)\)$/;
/** A price credited at what the period's invoice billed, after a change with `none`. */
const billedAt = (amount: string) => `, billed at ${amount} by the period's invoice`;
/** The same, for an imported subscription's first period, which the system it came from billed. */
const importedAt = (amount: string) => `, billed at ${amount} by the previous system`;
const BILLED_AT = /, billed at (\d+\.\d+) by (?:the period's invoice|the previous system)$/;

/**
 * The price a credit (or a part of one carried forward) credited days of, as its description
 * says: what a period's invoice billed for them when the credit is of that price.
 */
export function creditedPriceOf(item: Pick<InvoiceItemRow, 'description'>): string | undefined {
  const description = item.description.endsWith(CARRIED_FORWARD)
    ? item.description.slice(0, -CARRIED_FORWARD.length)
    : item.description;
  const made = CREDIT.exec(description);
  if (!made) return undefined;
  const [, label, , , , paidOf] = made as unknown as string[];
  return paidOf ?? (BILLED_AT.exec(label!) ?? LABEL_PRICE.exec(label!))?.slice(1).find(Boolean);
}

/** A credit still pending whole (not billed in part, the rest carried) as it was made, if it says. */
function madeCredit(item: InvoiceItemRow): MadeCredit | undefined {
  if (item.kind !== 'proration_credit' || item.description.endsWith(CARRIED_FORWARD)) return undefined;
  const made = CREDIT.exec(item.description);
  if (!made) return undefined;
  const [, label, day, end, periodDays, paidOf, until] = made as unknown as string[];
  const amount = paidOf ?? (BILLED_AT.exec(label!) ?? LABEL_PRICE.exec(label!))?.slice(1).find(Boolean);
  if (!amount) return undefined;
  const start = new Date(Date.parse(`${end}T00:00:00Z`) - Number(periodDays) * 86_400_000);
  return {
    price: { amount, label: label! },
    period: { start: start.toISOString().slice(0, 10), end: end! },
    day: day!,
    until,
  };
}

/**
 * A pending credit priced as it would be made now (creditedOf as of it), up to `until`, with its
 * event: changed, or deleted when nothing is left to credit.
 */
async function priceCreditAgain(
  tx: Tx,
  subscriptionId: string,
  item: InvoiceItemRow,
  made: MadeCredit,
  until: string | undefined,
): Promise<void> {
  const credited =
    until !== undefined && until <= made.day
      ? undefined
      : await creditedOf(tx, subscriptionId, made.price, made.period, item.created_at, made.day);
  const [again] = credited ? prorationItems(made.period, made.day, credited, undefined, until) : [];
  if (again?.amount === item.amount && again.description === item.description) return;
  if (!again) {
    const dropped = await deletePendingItem(tx.db, item.id);
    if (dropped) emitItemDropped(tx, dropped);
    return;
  }
  const changed = await updatePendingItem(tx.db, item.id, {
    amount: again.amount,
    description: again.description,
    period_end: again.period_end,
  });
  if (changed) emitItemChange(tx, item, changed);
}

/**
 * After a credit note or a void took back part of what an invoice of the subscription charged:
 * each credit still pending whole (made by a change or a pause in a period) is priced again at
 * what is left paid of its days, as if the note or the void had come before it (creditedOf, as
 * of the credit), so no day is credited above what was paid for it. Oldest first, each on the
 * ones before it as they are now; an `invoice_item.updated` each, `invoice_item.deleted` for one
 * left with nothing to credit. A credit billed already (in part or whole) stays as it is.
 */
export async function repricePendingCredits(tx: Tx, subscriptionId: string): Promise<void> {
  for (const item of await pendingInvoiceItems(tx.db, subscriptionId)) {
    const made = madeCredit(item);
    if (made) await priceCreditAgain(tx, subscriptionId, item, made, made.until);
  }
}

/**
 * What a change (or a resume) to the price `after` on a day of `period` charges for the days left.
 * Nothing when those days are still paid at that price: a credit of it still pending whole for
 * the rest of the period (a change undone, a pause) ends that day instead (`chargedAgain`,
 * endCreditsChargedAgain); or, with no item left for those days once the pending charges
 * `shortened` end, the period's invoice billed that price (`asBilled`: a credit of nothing paid
 * made no item, a change with `none` none): the change then credits nothing either, the invoice
 * paid those days for that price. So the days keep what paid them, and a change or a pause
 * undone costs and gives nothing, whatever discount the next invoice takes.
 */
export async function chargeFor(
  tx: Tx,
  subscriptionId: string,
  period: Period,
  after: { amount: string; label: string },
  shortened: readonly InvoiceItemRow[],
  day: string,
): Promise<{
  charged: { amount: string; label: string } | undefined;
  chargedAgain: InvoiceItemRow[];
  asBilled: boolean;
}> {
  const chargedAgain = (await pendingInvoiceItems(tx.db, subscriptionId)).filter((item) => {
    const made = madeCredit(item);
    // Ended already (its price came back), or still to end: a credit up to a day after this one
    // (paid only so far: creditedOf's `until`), which ends here instead.
    return (
      made !== undefined &&
      (made.until === undefined || made.until > day) &&
      made.period.start === period.start &&
      made.period.end === period.end &&
      comesBack(made.price, after)
    );
  });
  if (chargedAgain.length > 0) return { charged: undefined, chargedAgain, asBilled: false };
  const [invoice, items] = await Promise.all([
    findInvoiceForPeriod(tx.db, subscriptionId, period),
    prorationItemsIn(tx.db, subscriptionId, period),
  ]);
  // What the period's invoice billed for its price, or for an imported subscription's first
  // period, what the system it came from did.
  const billed = invoice
    ? (await pricesPeriod(tx, subscriptionId, invoice, period))
      ? linesOf(invoice).find((l) => l.type === 'subscription')?.amount
      : undefined
    : await importedPeriodPrice(tx.db, subscriptionId, period.end);
  const ending = new Set(shortened.map((item) => item.id));
  const asBilled =
    billed !== undefined && sameAmount(billed, after.amount) && items.every((i) => ending.has(i.id));
  return { charged: asBilled ? undefined : after, chargedAgain: [], asBilled };
}

/**
 * Whether `after` brings back the price a credit credited: the same price (plan, quantity, amount:
 * its label); for a credit of what the period's invoice billed after a change with `none`, the
 * price it was credited under, or the amount that invoice billed.
 */
function comesBack(credited: { amount: string; label: string }, after: { amount: string; label: string }) {
  if (samePrice(credited.label, after.label)) return true;
  const billed = BILLED_AT.exec(credited.label);
  return (
    billed !== null &&
    (samePrice(credited.label.slice(0, billed.index), after.label) || sameAmount(billed[1]!, after.amount))
  );
}

/** A label's quantity, followed by its amount and interval (priceLabel). */
const LABEL_QUANTITY = / × \d+( at \d+\.\d+ (?:a [a-z]+|every \d+ [a-z]+))$/;

/**
 * Whether two price labels name one price: the same plan at the same amount per period. The
 * quantity counts only through the amount: a flat price's quantity leaves it as it was, as it does
 * for a change (invariants4 #1: changed while paused, the resume charged the rest anew).
 */
function samePrice(a: string, b: string): boolean {
  return a === b || a.replace(LABEL_QUANTITY, '$1') === b.replace(LABEL_QUANTITY, '$1');
}

/**
 * Pending credits whose price came back on `day`: each keeps the days before it (or goes). With
 * `chargesBack`, a credit paid only up to a later day (creditedOf's `until`: the change that made
 * it dropped the pending charge of the days from there) gets that charge back, at its price: else
 * those days went unbilled (retest17 #2).
 */
async function endCreditsChargedAgain(
  tx: Tx,
  subscriptionId: string,
  credits: readonly InvoiceItemRow[],
  day: string,
  /** With chargesBack: the plan the subscription is on (the charge's, as a change's are). */
  chargesBack?: { planId: string | null },
): Promise<void> {
  for (const item of credits) {
    const made = madeCredit(item);
    if (!made) continue;
    await priceCreditAgain(tx, subscriptionId, item, made, day);
    if (!chargesBack || made.until === undefined || made.until <= day) continue;
    const charge = prorationItems(made.period, made.until, undefined, made.price);
    const rows = await insertInvoiceItems(
      tx.db,
      charge.map((c) => ({ subscription_id: subscriptionId, ...c, plan_id: chargesBack.planId })),
    );
    for (const row of rows) emitItem(tx, row);
  }
}

type CreditNoteLines = { lines: Array<{ line_index: number | null; amount: string }> };
type StoredLine = { type: string; amount: string; invoice_item_id?: string };
const linesOf = (invoice: InvoiceRow) => invoice.lines as unknown as StoredLine[];
/** An invoice's credit notes, as paidForLine reads them. */
export async function creditNotesOf(tx: Tx, invoice: Pick<InvoiceRow, 'id'>): Promise<CreditNoteLines[]> {
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
    const credited = await creditedPrice(tx, before, period, day);
    const price = { amount: after.plan_cost, label: await priceLabel(tx, after) };
    const { charged, chargedAgain, asBilled } = await chargeFor(
      tx,
      before.id,
      period,
      price,
      credited.shorten,
      day,
    );
    return {
      plan: {
        mode: 'items',
        items: prorationItems(period, day, asBilled ? undefined : credited, charged, credited.until),
        invoiceNow: behavior === 'always_invoice',
        period,
        day,
        shorten: credited.shorten,
        chargedAgain,
        chargesBack: true,
      },
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
  const credited = behavior === 'none' ? undefined : await creditedPrice(tx, before, period, day);
  const items = credited ? prorationItems(period, day, credited, undefined, credited.until) : [];
  return {
    plan: { mode: 'new-schedule', items, day, shorten: credited?.shorten ?? [] },
    set: { billing_anchor: day, ...(before.billed_until === null ? {} : { billed_until: day }) },
  };
}

/**
 * Pending charges of a period that a change or a pause on `day` ends early: each keeps its days
 * before `day` (its price for them, half up to the cent) and is dropped when none is left
 * (a change undone the day it was made), each with its event.
 */
async function shortenCharges(tx: Tx, charges: readonly InvoiceItemRow[], day: string): Promise<void> {
  for (const charge of charges) {
    const days = daysBetween(charge.period_start, day);
    if (days <= 0) {
      const dropped = await deletePendingItem(tx.db, charge.id);
      if (dropped) emitItemDropped(tx, dropped);
      continue;
    }
    // Its price and period, as its description says them (priceLabel, prorationItems), give the
    // days kept exactly; else the amount in proportion to its days.
    const priced = /(?:at|of) (\d+\.\d+) (?:a|every) .* \((\d+) of (\d+) days\)$/.exec(charge.description);
    const amount = priced
      ? prorated(priced[1]!, days, Number(priced[3]))
      : prorated(charge.amount, days, daysBetween(charge.period_start, charge.period_end));
    const span = /from (\d{4}-\d{2}-\d{2}) to \d{4}-\d{2}-\d{2} \(\d+ of (\d+) days\)/;
    const description = span.test(charge.description)
      ? charge.description.replace(span, `from $1 to ${day} (${days} of $2 days)`)
      : `${charge.description}, until ${day}`;
    const shortened = await updatePendingItem(tx.db, charge.id, {
      amount: formatCents(amount),
      period_end: day,
      description,
    });
    if (shortened) emitItemChange(tx, charge, shortened);
  }
}

/**
 * An ended subscription's pending charges of days after the billing period holding its last day
 * served (charged forward by moves of its start date): shortened to that period's end, or
 * dropped, so that its last invoice bills no day it did not serve (retest20 #7). That period
 * itself is billed whole, as an end_date's is.
 */
export async function endChargesWithService(tx: Tx, s: SubscriptionRow): Promise<void> {
  const served = lastDayServed(s);
  if (!served) return;
  const anchor = billingAnchor(s);
  // Ended before its schedule's first day (a start date moved later than the end): the days from
  // that first day on were never served (invariants5 #5).
  const end =
    served.lastDay < anchor
      ? anchor
      : periodContaining(anchor, s.billing_interval, s.interval_count, served.lastDay).end;
  const beyond = (await pendingInvoiceItems(tx.db, s.id)).filter(
    (item) => item.kind === 'proration_charge' && item.period_end > end,
  );
  await shortenCharges(tx, beyond, end);
}

/** The pending charges a pause shortens on `day`, as they are before it: subscriptions.paused_charges. */
export function chargesPauseShortens(
  shorten: readonly InvoiceItemRow[],
  day: string,
): PausedCharges['charges'] {
  return shorten
    .filter((charge) => charge.period_end > day)
    .map(({ id, amount, description, period_start, period_end, plan_id }) => ({
      id,
      amount,
      description,
      period_start,
      period_end,
      plan_id,
    }));
}

/**
 * A resume on `day`, in the period its pause shortened pending charges of (`paused`, recorded by
 * the pause), on the price it was paused on: each charge back for the days from `day` on, so they
 * stay paid as they were. Resumed the day it was paused, a charge is as it was before the pause
 * (made again if the pause dropped it); later, the rest of its days is a charge of its own, at
 * its price. Returns whether it brought any back (the resume then charges nothing else).
 */
export async function restorePausedCharges(
  tx: Tx,
  after: SubscriptionRow,
  paused: PausedCharges | null,
  period: Period,
  day: string,
): Promise<boolean> {
  if (!paused || paused.period_start !== period.start || paused.charges.length === 0) return false;
  if (!samePrice(paused.label, await priceLabel(tx, after))) return false;
  const pending = new Map((await pendingInvoiceItems(tx.db, after.id)).map((item) => [item.id, item]));
  const made: NewInvoiceItem[] = [];
  for (const charge of paused.charges) {
    if (charge.period_end <= day) continue;
    const shortened = pending.get(charge.id);
    if (shortened && shortened.period_end === day && shortened.period_start === charge.period_start) {
      const restored = await updatePendingItem(tx.db, charge.id, {
        amount: charge.amount,
        description: charge.description,
        period_end: charge.period_end,
      });
      if (restored) emitItemChange(tx, shortened, restored);
      continue;
    }
    const { amount, description, period_start, period_end, plan_id } = charge;
    if (day <= period_start) {
      made.push({
        subscription_id: after.id,
        kind: 'proration_charge',
        amount,
        description,
        period_start,
        period_end,
        plan_id,
      });
      continue;
    }
    // Its days from the resume on, at its price (as shortenCharges reads it).
    const days = daysBetween(day, period_end);
    const priced = /(?:at|of) (\d+\.\d+) (?:a|every) .* \((\d+) of (\d+) days\)$/.exec(description);
    const rest = priced
      ? prorated(priced[1]!, days, Number(priced[3]))
      : prorated(amount, days, daysBetween(period_start, period_end));
    const span = /from \d{4}-\d{2}-\d{2} to (\d{4}-\d{2}-\d{2}) \(\d+ of (\d+) days\)/;
    made.push({
      subscription_id: after.id,
      kind: 'proration_charge',
      plan_id,
      amount: formatCents(rest),
      period_start: day,
      period_end,
      description: span.test(description)
        ? description.replace(span, `from ${day} to $1 (${days} of $2 days)`)
        : `${description}, from ${day}`,
    });
  }
  for (const row of await insertInvoiceItems(tx.db, made)) emitItem(tx, row);
  return true;
}

/**
 * The discount a change's invoice takes: any; but a fixed amount is one per period, so only what
 * the period's invoices (its own and earlier changes') took of it is left. Taken again whole, each
 * change invoiced at once (`always_invoice`) gave the amount again for days it had paid for once:
 * a seat added on the 11th, with 25.00 off, lowered the month's bill.
 */
async function discountsLeftInPeriod(
  tx: Tx,
  subscription: SubscriptionRow,
  period: Period,
): Promise<Discounts> {
  const discount = subscription.discount;
  if (discount?.amount_off == null) return 'any';
  const invoiced = await issuedInvoicesMeeting(tx.db, subscription.id, period.start, period.end);
  let fixedTaken = 0n;
  for (const invoice of invoiced) {
    for (const line of invoice.lines as unknown as Array<{
      type: string;
      amount: string;
      coupon_id?: string;
    }>) {
      if (line.type === 'discount' && line.coupon_id === discount.coupon_id)
        fixedTaken -= parseSignedAmount(line.amount);
    }
  }
  return { fixedTaken };
}

/**
 * Bills a planned change on the subscription as changed (`after`, locked): its items, and the
 * invoice issued now if any (collected like a renewal's, or handed to `settle`: the upcoming
 * invoice's preview). Returns the subscription as it is then.
 */
export async function performProration(
  tx: Tx,
  tenantId: string,
  after: SubscriptionRow,
  plan: ProrationPlan,
  settle: Settle = issueAndCollect,
): Promise<{ subscription: SubscriptionRow; invoice: InvoiceRow | undefined }> {
  if (plan.mode === 'nothing') return { subscription: after, invoice: undefined };
  await shortenCharges(tx, plan.shorten ?? [], plan.day);
  if (plan.mode === 'items')
    await endCreditsChargedAgain(
      tx,
      after.id,
      plan.chargedAgain ?? [],
      plan.day,
      plan.chargesBack ? { planId: after.plan_id } : undefined,
    );
  const rows = await insertInvoiceItems(
    tx.db,
    plan.items.map((item) => ({
      subscription_id: after.id,
      ...item,
      plan_id: item.kind === 'proration_charge' ? after.plan_id : null,
    })),
  );
  for (const row of rows) emitItem(tx, row);
  // The step's time: a worker's step on a clock happens at its due time, not the clock's now
  // (the time an advance goes to), which is what subscriptionNow reads (lifecycle8 #1).
  const now = tx.occurredAt() ?? subscriptionNow(after);
  if (plan.mode === 'items') {
    const net = plan.items.reduce((sum, item) => sum + parseSignedAmount(item.amount), 0n);
    const invoice =
      plan.invoiceNow && net > 0n
        ? await prorationInvoice(
            tx,
            after,
            { start: plan.day, end: plan.period.end },
            plan.discounts ?? (await discountsLeftInPeriod(tx, after, plan.period)),
          )
        : undefined;
    if (!invoice) return { subscription: after, invoice: undefined };
    const issued = await settle(tx, after, invoice, now, tenantId);
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
  const issued = await settle(tx, after, outcome.invoice, now, tenantId);
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
