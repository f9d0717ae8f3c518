// Credit notes against issued invoices (billing/credit-notes.ts for the amounts and where the
// money goes): numbered gapless per tenant in their own sequence, final once made. Each first
// lowers what is still due on its invoice (one that credits it down to zero pays it); the rest
// was paid already and goes back: refunded through the gateway on the rail of the invoice's
// payment (services/refunds.ts), or credited to the customer's balance (services/customer-balance.ts).
import type { Charge } from '../billing/invoices.js';
import {
  type CreditRequest,
  creditNoteAmounts,
  creditNoteMoney,
  type CreditedLine,
  type InvoiceTaxLine,
  type RefundTo,
} from '../billing/credit-notes.js';
import { formatCents, parseAmount, parseSignedAmount } from '../billing/money.js';
import { subscriptionNow } from '../billing/subscription-time.js';
import type { CreditNoteView, InvoiceRow, InvoiceStatus, PaymentRow } from '../database/schema.js';
import * as creditNotes from '../queries/credit-notes.js';
import { endingCreditOfInvoice } from '../queries/customer-balance.js';
import { creditsGivenIn } from '../queries/invoice-items.js';
import * as invoices from '../queries/invoices.js';
import { findPaymentInFlight, findSucceededPayment } from '../queries/payments.js';
import { refundedOfInvoice } from '../queries/refunds.js';
import { lockSubscription } from '../queries/subscriptions.js';
import { amountDue, toCreditNoteResponse, toInvoiceResponse } from '../responses/invoices.js';
import { markPaid } from './collection.js';
import { type Actor, inTenant, previousValues, type ServiceContext, type Tx } from './context.js';
import { creditBalance } from './customer-balance.js';
import { CARRIED_FORWARD } from './invoices.js';
import { creditedPriceOf, repricePendingCredits } from './prorations.js';
import { startRefund } from './refunds.js';
import { refundUsageCredits } from './wallets.js';
import { onClockOf } from './subscriptions.js';

export type CreditNoteOutcome =
  | { kind: 'created'; creditNote: CreditNoteView }
  | { kind: 'missing' }
  | { kind: 'needs-admin' }
  | { kind: 'wrong-status'; status: InvoiceStatus }
  | { kind: 'purchase' }
  | { kind: 'payment-in-flight'; payment: Pick<PaymentRow, 'id' | 'status'> }
  | { kind: 'invalid'; errors: Array<{ field: string; message: string }> };

export function createCreditNote(
  ctx: ServiceContext,
  actor: Actor,
  invoiceId: string,
  request: CreditRequest & { refund_to?: RefundTo | undefined },
): Promise<CreditNoteOutcome> {
  // Forgiving an amount is an admin's decision, as voiding an invoice is.
  if (actor.role !== undefined && actor.role !== 'admin') return Promise.resolve({ kind: 'needs-admin' });
  return inTenant(ctx, actor, async (tx): Promise<CreditNoteOutcome> => {
    // The lock order of every money decision: the subscription, then the invoice.
    const seen = await invoices.findInvoice(tx.db, invoiceId);
    if (!seen) return { kind: 'missing' };
    const subscription = (await lockSubscription(tx.db, seen.subscription_id))!;
    const invoice = (await invoices.lockInvoice(tx.db, invoiceId))!;
    if (invoice.status === 'draft' || invoice.status === 'void')
      return { kind: 'wrong-status', status: invoice.status };
    // Its credits are the wallet's once paid (and the grant's whole, whatever was paid): money
    // given back would leave them there. Voided unpaid, its grant is canceled instead.
    if (invoice.kind === 'purchase') return { kind: 'purchase' };
    const payment = await findPaymentInFlight(tx.db, invoiceId);
    if (payment) return { kind: 'payment-in-flight', payment };
    const earlier = await creditNotes.listCreditNotes(tx.db, invoiceId);
    // Only money already paid goes back: an unpaid invoice's note lowers what is due first.
    const elsewhere = invoice.status === 'paid' ? await creditedElsewhere(tx, invoice) : undefined;
    // A backstop for the limits of each invoice, which follow each credit to the invoice that paid
    // its days: however a chain of changes, pauses and voids moved them, never more goes back than
    // the subscription's invoices were paid (retest24 #1: an upgrade's invoice credited to its
    // limit, then the period's invoice whole, gave back 63.00 of 51.00). Named when it is the
    // lower of the two limits, so that the 422 names the most that can be credited.
    if (invoice.status === 'paid') {
      const left = parseSignedAmount(await creditNotes.leftToGiveBack(tx.db, invoice.subscription_id));
      const invoiceLeft =
        parseAmount(invoice.subtotal) -
        earlier.reduce((total, note) => total + parseAmount(note.subtotal), 0n) -
        (elsewhere ? parseAmount(elsewhere.amount) : 0n);
      const asked =
        'amount' in request
          ? parseAmount(request.amount)
          : request.lines.reduce((total, line) => total + parseAmount(line.amount), 0n);
      if (left < invoiceLeft && asked > left)
        return {
          kind: 'invalid',
          errors: [
            {
              field: 'amount' in request ? '/amount' : '/lines',
              message: `more than is left to credit of the invoice (${formatCents(left > 0n ? left : 0n)} before tax; the most that is left to give back of its subscription's invoices: what those paid billed, less their credit notes and the credits its end gave back to the customer's balance)`,
            },
          ],
        };
    }
    const amounts = creditNoteAmounts(
      {
        subtotal: invoice.subtotal,
        taxes: invoice.taxes as unknown as InvoiceTaxLine[],
        lines: invoice.lines as unknown as Array<{ description: string; amount: string }>,
      },
      earlier.map((note) => ({
        subtotal: note.subtotal,
        lines: note.lines as unknown as CreditedLine[],
        taxes: note.taxes as unknown as InvoiceTaxLine[],
      })),
      request,
      elsewhere,
    );
    if ('errors' in amounts) return { kind: 'invalid', errors: amounts.errors };
    // A refund goes back to the invoice's one successful payment, at most what it paid less its
    // earlier refunds (read under the invoice's lock: refunds are made under it).
    const paidBy = invoice.status === 'paid' ? await findSucceededPayment(tx.db, invoiceId) : undefined;
    const refundable = paidBy
      ? parseAmount(paidBy.amount) - parseAmount(await refundedOfInvoice(tx.db, invoiceId))
      : 0n;
    const money = creditNoteMoney(
      amounts.total,
      { paid: invoice.status === 'paid', amountDue: amountDue(invoice), refundable: formatCents(refundable) },
      request.refund_to,
      'amount' in request ? '/amount' : '/lines',
    );
    if ('errors' in money) return { kind: 'invalid', errors: money.errors };
    // Beyond what is due, an unpaid invoice's note gives back to the balance what it took of it;
    // not the share of the credit its subscription's end left for its own days (as a void:
    // invoices.ts, voidLocked).
    if (invoice.status !== 'paid' && parseAmount(money.credit_amount) > 0n) {
      const own =
        invoice.kind === 'period' || invoice.kind === 'proration'
          ? parseAmount((await endingCreditOfInvoice(tx.db, invoice.subscription_id, invoice)).credit)
          : 0n;
      const given = earlier.reduce((sum, note) => sum + parseAmount(note.credit_amount), 0n);
      const returnable = parseAmount(invoice.amount_from_balance) - own - given;
      if (returnable < parseAmount(money.credit_amount)) {
        money.credit_amount = formatCents(returnable > 0n ? returnable : 0n);
        if (money.credit_amount === '0.00') money.refund_to = null; // nothing goes back
      }
    }
    await onClockOf(tx, subscription);
    const at = subscriptionNow(subscription);
    const row = await creditNotes.insertCreditNote(tx.db, {
      number: await creditNotes.nextCreditNoteNumber(tx.db),
      invoice_id: invoiceId,
      subscription_id: invoice.subscription_id,
      user_id: invoice.user_id,
      reason: request.reason,
      issued_at: at,
      ...amounts,
      refund_to: money.refund_to,
      refund_amount: money.refund_amount,
      credit_amount: money.credit_amount,
    });
    const refund =
      paidBy && money.refund_to === 'payment'
        ? await startRefund(
            tx,
            {
              credit_note_id: row.id,
              invoice_id: invoiceId,
              payment_id: paidBy.id,
              subscription_id: invoice.subscription_id,
              user_id: invoice.user_id,
              amount: money.refund_amount,
              rail: paidBy.rail,
              payment_method: paidBy.payment_method,
              submit_after: at,
            },
            { tenantId: actor.tenantId, clockId: subscription.test_clock_id },
          )
        : undefined;
    // What the invoice charged is paid less: a later credit of those days is priced again.
    await repricePendingCredits(tx, invoice.subscription_id);
    const creditNote: CreditNoteView = { ...row, refund_id: refund?.id ?? null };
    tx.emit({
      type: 'credit_note.created',
      resource_type: 'credit_note',
      resource_id: creditNote.id,
      data: toCreditNoteResponse(creditNote),
    });
    if (money.refund_to === 'balance')
      await creditBalance(tx, {
        user_id: invoice.user_id,
        type: 'credit_note',
        amount: money.credit_amount,
        invoice_id: invoiceId,
        credit_note_id: creditNote.id,
        created_at: at,
      });
    // Credited whole (all that is left to credit of it), the invoice gives back the prepaid
    // credits that paid its usage, as a void would: nothing of it is owed any more.
    const creditable =
      parseAmount(invoice.subtotal) -
      earlier.reduce((sum, note) => sum + parseAmount(note.subtotal), 0n) -
      (elsewhere ? parseAmount(elsewhere.amount) : 0n);
    if (parseAmount(amounts.subtotal) >= creditable)
      await refundUsageCredits(tx, actor, { id: invoiceId, lines: invoice.lines as unknown as Charge[] }, at);
    const credited: InvoiceRow = await invoices.updateInvoice(tx.db, invoiceId, {
      amount_credited: formatCents(parseAmount(invoice.amount_credited) + parseAmount(creditNote.total)),
    });
    // The invoice changed (amount_credited, amount_due, version): its event, as every change of a
    // resource has, so that its last event is the invoice as it is (invoice.paid follows when
    // credited down to zero).
    const data = toInvoiceResponse(credited);
    tx.emit({
      type: 'invoice.updated',
      resource_type: 'invoice',
      resource_id: invoiceId,
      data,
      previous: previousValues(toInvoiceResponse(invoice), data),
    });
    if (invoice.status !== 'paid' && parseAmount(amountDue(credited)) === 0n)
      await markPaid(tx, subscription, credited, at);
    return { kind: 'created', creditNote };
  });
}

/**
 * What credits of a period invoice's days, of the price it billed, gave back already: a change or
 * a pause credited them, and a later invoice billed that credit (or part of it, the rest carried
 * forward to the next) or the customer's balance settled it. A credit note of the invoice
 * refunding the same days would pay them back twice. (A credit still pending is priced again
 * after the note instead: prorations.ts repricePendingCredits.)
 */
async function creditedElsewhere(
  tx: Tx,
  invoice: InvoiceRow,
): Promise<{ line_index: number; amount: string } | undefined> {
  if (invoice.kind === 'proration') return endingShareOf(tx, invoice);
  if (invoice.kind !== 'period') return undefined;
  const own = await ownDaysGivenBack(tx, invoice, 0);
  if (!own) return undefined;
  // Credits of other periods that this invoice billed (less their charges) paid part of its days:
  // what its subtotal holds less than its price. The days given back are first those.
  const beyond = own.given - otherPeriodsCredit(invoice);
  return beyond > 0n ? { line_index: own.index, amount: formatCents(beyond) } : undefined;
}

/** Chains of period invoices each billing the credit of the one before, followed at most this far. */
const MOST_INVOICES_FOLLOWED = 24;

type BillingInvoice = Pick<
  InvoiceRow,
  'id' | 'subscription_id' | 'kind' | 'lines' | 'period_start' | 'period_end' | 'subtotal'
>;

/**
 * What credits of a period invoice's own days, at the price it billed, gave back (G): its price
 * line's index, and that sum.
 */
async function ownDaysGivenBack(
  tx: Tx,
  invoice: BillingInvoice,
  depth: number,
): Promise<{ index: number; given: bigint } | undefined> {
  const lines = invoice.lines as unknown as Array<{ type: string; amount: string }>;
  const index = lines.findIndex((line) => line.type === 'subscription');
  if (index < 0) return undefined;
  const price = parseAmount(lines[index]!.amount);
  const credits = await creditsGivenIn(
    tx.db,
    invoice.subscription_id,
    { start: invoice.period_start, end: invoice.period_end },
    invoice.id,
    CARRIED_FORWARD,
  );
  let given = 0n;
  for (const credit of credits) {
    const credited = creditedPriceOf(credit);
    if (credited !== undefined && parseAmount(credited) === price)
      given += await givenBack(tx, credit, depth);
  }
  return { index, given };
}

/** The lines of other periods' days a period invoice billed: their credits net of their charges (C). */
function otherPeriodLines(invoice: BillingInvoice) {
  return (
    invoice.lines as unknown as Array<{
      type: string;
      amount: string;
      period_start: string;
      period_end: string;
    }>
  ).filter(
    (line) =>
      line.type === 'proration' &&
      (line.period_start < invoice.period_start || line.period_end > invoice.period_end),
  );
}

function otherPeriodsCredit(invoice: BillingInvoice): bigint {
  const net = otherPeriodLines(invoice).reduce((total, line) => total + parseSignedAmount(line.amount), 0n);
  return net < 0n ? -net : 0n;
}

/**
 * What a credit of a period's days gave back: all of it, but for a credit billed by an invoice that
 * credit notes took back in part or whole (the change's invoice credited too). That invoice then
 * stands for what is left of it only, its credit as much as its charges, so its share of the
 * credit taken back is the period's invoice's again to credit (rounded up to the cent: never more
 * than was paid goes back). Else crediting both invoices whole gave back less than was paid.
 *
 * The invoice X that billed it stands for its limit L = S - E: its subtotal less what its own
 * limit counts of its days given back (E: creditedElsewhere). Its days given back (G) beyond that
 * were paid by the credits it billed: that much of them (G - E; for a period invoice, min(G, C),
 * C the credits of other periods it billed net of their charges) went back whatever X's notes,
 * and X's notes take back the rest only, in the share of L they credit. Taking it in the share of
 * S gave back the days of min(G, C) twice (retest23 #1: 56.74 of 52.00). An X that cannot be
 * credited (L = 0: a downgrade's last invoice, whose charge the credit paid whole) leaves the rest
 * the period invoice's to credit: else what paid the new price could never go back (dunning2 #1).
 */
async function givenBack(
  tx: Tx,
  credit: { amount: string; billed: BillingInvoice | null; billed_credited: string },
  depth: number,
): Promise<bigint> {
  const whole = -parseSignedAmount(credit.amount);
  const x = credit.billed;
  if (x === null) return whole;
  const subtotal = parseSignedAmount(x.subtotal);
  const taken = parseAmount(credit.billed_credited);
  if ((taken <= 0n && subtotal > 0n) || depth >= MOST_INVOICES_FOLLOWED) return whole;
  let floor = 0n;
  let limit = subtotal;
  if (x.kind === 'period') {
    const c = otherPeriodsCredit(x);
    const g = (await ownDaysGivenBack(tx, x, depth + 1))?.given ?? 0n;
    limit = subtotal - (g > c ? g - c : 0n);
    // This credit's share of what went back, by its part of the other periods' credits X billed.
    const credits = otherPeriodLines(x).reduce((total, line) => {
      const amount = parseSignedAmount(line.amount);
      return amount < 0n ? total - amount : total;
    }, 0n);
    if (credits > 0n) floor = ((g < c ? g : c) * (whole < credits ? whole : credits)) / credits;
  } else if (x.kind === 'proration') {
    const ending = await endingCreditOfInvoice(tx.db, x.subscription_id, x);
    limit = subtotal - parseAmount(ending.before_tax);
  }
  if (limit < 0n) return whole;
  const credited = taken < limit ? taken : limit;
  const kept = limit === 0n ? floor : whole - ((whole - floor) * credited) / limit;
  const cent = 100n; // ten-thousandths
  return ((kept + cent - 1n) / cent) * cent;
}

/**
 * What a change's or a resume's invoice charged of the days its subscription's end gave back
 * (before tax; the ending credit's share of it, as its entry recorded it): gone back already, so
 * not left to credit. Counted against its largest charge, the one that billed those days.
 */
async function endingShareOf(
  tx: Tx,
  invoice: InvoiceRow,
): Promise<{ line_index: number; amount: string } | undefined> {
  const { before_tax } = await endingCreditOfInvoice(tx.db, invoice.subscription_id, invoice);
  if (parseAmount(before_tax) <= 0n) return undefined;
  const lines = invoice.lines as unknown as Array<{ amount: string }>;
  let largest = -1;
  lines.forEach((line, index) => {
    const amount = parseSignedAmount(line.amount);
    if (amount > 0n && (largest < 0 || amount > parseSignedAmount(lines[largest]!.amount))) largest = index;
  });
  return largest < 0 ? undefined : { line_index: largest, amount: before_tax };
}

/** An invoice's credit notes, oldest first; undefined when there is no such invoice. */
export function listCreditNotes(
  ctx: ServiceContext,
  actor: Actor,
  invoiceId: string,
): Promise<CreditNoteView[] | undefined> {
  return inTenant(ctx, actor, async (tx) => {
    const [invoice, notes] = await Promise.all([
      invoices.findInvoice(tx.db, invoiceId),
      creditNotes.listCreditNotes(tx.db, invoiceId),
    ]);
    return invoice && notes;
  });
}
