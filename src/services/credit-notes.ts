// Credit notes against open or uncollectible invoices (billing/credit-notes.ts for the amounts):
// numbered gapless per tenant in their own sequence, final once made; each lowers what is due on
// its invoice, and one that credits it down to zero pays it.
import {
  type CreditRequest,
  creditNoteAmounts,
  type CreditedLine,
  type InvoiceTaxLine,
} from '../billing/credit-notes.js';
import { parseAmount, formatCents } from '../billing/money.js';
import { subscriptionNow } from '../billing/subscription-time.js';
import type { CreditNoteRow, InvoiceRow, InvoiceStatus, PaymentRow } from '../database/schema.js';
import * as creditNotes from '../queries/credit-notes.js';
import * as invoices from '../queries/invoices.js';
import { findPaymentInFlight } from '../queries/payments.js';
import { lockSubscription } from '../queries/subscriptions.js';
import { amountDue, toCreditNoteResponse } from '../responses/invoices.js';
import { markPaid } from './collection.js';
import { type Actor, inTenant, type ServiceContext } from './context.js';
import { onClockOf } from './subscriptions.js';

export type CreditNoteOutcome =
  | { kind: 'created'; creditNote: CreditNoteRow }
  | { kind: 'missing' }
  | { kind: 'needs-admin' }
  | { kind: 'wrong-status'; status: InvoiceStatus }
  | { kind: 'payment-in-flight'; payment: Pick<PaymentRow, 'id' | 'status'> }
  | { kind: 'invalid'; errors: Array<{ field: string; message: string }> };

export function createCreditNote(
  ctx: ServiceContext,
  actor: Actor,
  invoiceId: string,
  request: CreditRequest,
): Promise<CreditNoteOutcome> {
  // Forgiving an amount is an admin's decision, as voiding an invoice is.
  if (actor.role !== undefined && actor.role !== 'admin') return Promise.resolve({ kind: 'needs-admin' });
  return inTenant(ctx, actor, async (tx): Promise<CreditNoteOutcome> => {
    // The lock order of every money decision: the subscription, then the invoice.
    const seen = await invoices.findInvoice(tx.db, invoiceId);
    if (!seen) return { kind: 'missing' };
    const subscription = (await lockSubscription(tx.db, seen.subscription_id))!;
    const invoice = (await invoices.lockInvoice(tx.db, invoiceId))!;
    if (invoice.status !== 'open' && invoice.status !== 'uncollectible')
      return { kind: 'wrong-status', status: invoice.status };
    const payment = await findPaymentInFlight(tx.db, invoiceId);
    if (payment) return { kind: 'payment-in-flight', payment };
    const earlier = await creditNotes.listCreditNotes(tx.db, invoiceId);
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
    );
    if ('errors' in amounts) return { kind: 'invalid', errors: amounts.errors };
    onClockOf(tx, subscription);
    const at = subscriptionNow(subscription);
    const creditNote = await creditNotes.insertCreditNote(tx.db, {
      number: await creditNotes.nextCreditNoteNumber(tx.db),
      invoice_id: invoiceId,
      subscription_id: invoice.subscription_id,
      user_id: invoice.user_id,
      reason: request.reason,
      issued_at: at,
      ...amounts,
    });
    tx.emit({
      type: 'credit_note.created',
      resource_type: 'credit_note',
      resource_id: creditNote.id,
      data: toCreditNoteResponse(creditNote),
    });
    const credited: InvoiceRow = await invoices.updateInvoice(tx.db, invoiceId, {
      amount_credited: formatCents(parseAmount(invoice.amount_credited) + parseAmount(creditNote.total)),
    });
    if (parseAmount(amountDue(credited)) === 0n) await markPaid(tx, subscription, credited, at);
    return { kind: 'created', creditNote };
  });
}

/** An invoice's credit notes, oldest first; undefined when there is no such invoice. */
export function listCreditNotes(
  ctx: ServiceContext,
  actor: Actor,
  invoiceId: string,
): Promise<CreditNoteRow[] | undefined> {
  return inTenant(ctx, actor, async (tx) => {
    const [invoice, notes] = await Promise.all([
      invoices.findInvoice(tx.db, invoiceId),
      creditNotes.listCreditNotes(tx.db, invoiceId),
    ]);
    return invoice && notes;
  });
}
