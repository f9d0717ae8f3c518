import type { Schemas } from '../contract.js';
import { formatCents, parseAmount } from '../billing/money.js';
import type { CreditNoteView, InvoiceItemRow, InvoiceRow } from '../database/schema.js';

/**
 * What a payment must equal: total less credit notes and what the customer's balance paid, while
 * owed (never below zero: credit notes beyond it gave the balance's part back); 0.00 once paid or void.
 */
export function amountDue(
  row: Pick<InvoiceRow, 'status' | 'total' | 'amount_credited' | 'amount_from_balance'>,
): string {
  if (row.status === 'paid' || row.status === 'void') return '0.00';
  const due =
    parseAmount(row.total) - parseAmount(row.amount_credited) - parseAmount(row.amount_from_balance);
  return formatCents(due > 0n ? due : 0n);
}

export function toInvoiceResponse(row: InvoiceRow): Schemas['Invoice'] {
  return {
    id: row.id,
    kind: row.kind,
    subscription_id: row.subscription_id,
    user_id: row.user_id,
    status: row.status,
    number: row.number === null ? null : Number(row.number),
    period_start: row.period_start,
    period_end: row.period_end,
    invoice_date: row.invoice_date,
    region: row.region,
    // Lines stored before usage billing have no type or period: they bill the invoice's period.
    // Lines stored before wallets paid usage have no credits_applied: none were.
    lines: (row.lines as Array<Partial<Schemas['InvoiceLine']>>).map((line) => ({
      type: 'subscription',
      period_start: row.period_start,
      period_end: row.period_end,
      usage: null,
      credits_applied: null,
      ...line,
    })) as Schemas['Invoice']['lines'],
    subtotal: row.subtotal,
    taxes: row.taxes as Schemas['Invoice']['taxes'],
    tax_total: row.tax_total,
    total: row.total,
    finalized_at: row.finalized_at?.toISOString() ?? null,
    paid_at: row.paid_at?.toISOString() ?? null,
    voided_at: row.voided_at?.toISOString() ?? null,
    uncollectible_at: row.uncollectible_at?.toISOString() ?? null,
    next_payment_attempt_at: row.next_collection_at?.toISOString() ?? null,
    amount_credited: row.amount_credited,
    amount_from_balance: row.amount_from_balance,
    amount_due: amountDue(row),
    version: row.version,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
  };
}

/** An invoice a renewal would issue (services/upcoming-invoice.ts): none of what exists only once made. */
export function toUpcomingInvoiceResponse(row: InvoiceRow, issuesAt: Date): Schemas['UpcomingInvoice'] {
  const invoice = toInvoiceResponse(row);
  return {
    subscription_id: invoice.subscription_id,
    user_id: invoice.user_id,
    kind: invoice.kind as Schemas['UpcomingInvoice']['kind'],
    issues_at: issuesAt.toISOString(),
    period_start: invoice.period_start,
    period_end: invoice.period_end,
    invoice_date: invoice.invoice_date,
    region: invoice.region,
    lines: invoice.lines,
    subtotal: invoice.subtotal,
    taxes: invoice.taxes,
    tax_total: invoice.tax_total,
    total: invoice.total,
    amount_from_balance: invoice.amount_from_balance,
    amount_due: invoice.amount_due,
  };
}

export function toInvoiceItemResponse(row: InvoiceItemRow): Schemas['InvoiceItem'] {
  return {
    id: row.id,
    subscription_id: row.subscription_id,
    kind: row.kind,
    description: row.description,
    amount: row.amount,
    period_start: row.period_start,
    period_end: row.period_end,
    invoice_id: row.invoice_id,
    balance_transaction_id: row.balance_transaction_id,
    created_at: row.created_at.toISOString(),
  };
}

export function toCreditNoteResponse(row: CreditNoteView): Schemas['CreditNote'] {
  return {
    id: row.id,
    number: Number(row.number),
    invoice_id: row.invoice_id,
    subscription_id: row.subscription_id,
    user_id: row.user_id,
    reason: row.reason,
    lines: row.lines as Schemas['CreditNote']['lines'],
    subtotal: row.subtotal,
    taxes: row.taxes as Schemas['CreditNote']['taxes'],
    tax_total: row.tax_total,
    total: row.total,
    refund_to: row.refund_to,
    refund_amount: row.refund_amount,
    credit_amount: row.credit_amount,
    refund_id: row.refund_id,
    issued_at: row.issued_at.toISOString(),
    created_at: row.created_at.toISOString(),
  };
}
