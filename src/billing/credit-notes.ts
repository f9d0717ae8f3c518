// A credit note's amounts against an invoice: pure and exact. Credited lines (or the invoice as a
// whole) add up to the subtotal credited, never more than is left to credit of each line and of
// the invoice. Each of the invoice's taxes is reversed in proportion, tax × credited / the
// invoice's subtotal, rounded half up to the cent, but never more than is left of it; the credit
// note that completes the subtotal takes exactly what is left of each tax. So the credit notes of
// an invoice never exceed it, line by line, tax by tax, in total.
import { formatCents, parseAmount } from './money.js';

export interface InvoiceTaxLine {
  tax_rate_id: string;
  code: string;
  name: string;
  percentage: string;
  region: string;
  taxable_amount: string;
  amount: string;
}

export interface CreditedLine {
  line_index: number | null;
  description: string;
  amount: string;
}

export interface CreditNoteAmounts {
  lines: CreditedLine[];
  subtotal: string;
  taxes: InvoiceTaxLine[];
  tax_total: string;
  total: string;
}

export type CreditRequest =
  | { amount: string; reason: string }
  | { lines: ReadonlyArray<{ line_index: number; amount: string }>; reason: string };

type FieldError = { field: string; message: string };

const sum = (amounts: readonly string[]) => amounts.reduce((s, a) => s + parseAmount(a), 0n);

export function creditNoteAmounts(
  invoice: {
    subtotal: string;
    taxes: readonly InvoiceTaxLine[];
    lines: ReadonlyArray<{ description: string; amount: string }>;
  },
  earlier: ReadonlyArray<{
    subtotal: string;
    lines: readonly CreditedLine[];
    taxes: readonly InvoiceTaxLine[];
  }>,
  request: CreditRequest,
  /**
   * What credits of a line's days gave back already, elsewhere (a later invoice, the customer's
   * balance): no longer left to credit of the line, nor of the invoice.
   */
  creditedElsewhere?: { line_index: number; amount: string },
): CreditNoteAmounts | { errors: FieldError[] } {
  const errors: FieldError[] = [];
  const elsewhere = creditedElsewhere ? parseAmount(creditedElsewhere.amount) : 0n;
  const why = `; ${formatCents(elsewhere)} of its days went back already, credited on a later invoice or to the customer's balance`;
  let lines: CreditedLine[];
  if ('amount' in request) {
    lines = [
      {
        line_index: null,
        description: `Credit: ${request.reason}`,
        amount: formatCents(parseAmount(request.amount)),
      },
    ];
    if (parseAmount(request.amount) === 0n)
      errors.push({ field: '/amount', message: 'must be more than zero' });
  } else {
    // What earlier credit notes took of each line, and what the lines of this request accepted so
    // far take (a line refused takes nothing).
    const taken = new Map<number, bigint>();
    for (const note of earlier)
      for (const line of note.lines)
        if (line.line_index !== null)
          taken.set(line.line_index, (taken.get(line.line_index) ?? 0n) + parseAmount(line.amount));
    const takenHere = new Map<number, bigint>();
    // The invoice's own limit, when it is the lower one, is the one a refused line names: else a
    // client that sends the line's amount is refused again (retest24 #3).
    const invoiceLeft = parseAmount(invoice.subtotal) - sum(earlier.map((note) => note.subtotal)) - elsewhere;
    let acceptedHere = 0n;
    lines = [];
    request.lines.forEach(({ line_index, amount }, i) => {
      const line = invoice.lines[line_index];
      const wanted = parseAmount(amount);
      if (!line) {
        errors.push({
          field: `/lines/${i}/line_index`,
          message: `no such line (the invoice has ${invoice.lines.length})`,
        });
        return;
      }
      if (line.amount.startsWith('-') || parseAmount(line.amount) === 0n) {
        errors.push({
          field: `/lines/${i}/line_index`,
          message: line.amount.startsWith('-')
            ? `is a credit or a discount (${line.amount}), not a charge: only a line with a positive amount can be credited`
            : 'charges nothing (0.00): only a line with a positive amount can be credited',
        });
        return;
      }
      // Never below zero: earlier credit notes and the lines accepted before this one fit.
      const given = creditedElsewhere?.line_index === line_index ? elsewhere : 0n;
      const unbounded = parseAmount(line.amount) - (taken.get(line_index) ?? 0n) - given;
      const before = unbounded > 0n ? unbounded : 0n;
      const here = takenHere.get(line_index) ?? 0n;
      const invoiceRoom = invoiceLeft - acceptedHere > 0n ? invoiceLeft - acceptedHere : 0n;
      if (wanted === 0n) errors.push({ field: `/lines/${i}/amount`, message: 'must be more than zero' });
      else if (wanted > before - here && invoiceRoom < before - here)
        errors.push({
          field: `/lines/${i}/amount`,
          message: `more than is left to credit of the invoice (${formatCents(invoiceRoom)} before tax${acceptedHere > 0n ? `, after the lines before it` : ''}${elsewhere > 0n ? why : ''})`,
        });
      else if (wanted > before - here)
        errors.push({
          field: `/lines/${i}/amount`,
          message:
            (here === 0n
              ? `more than is left to credit of the line (${formatCents(before)}`
              : `more than is left to credit of the line (${formatCents(before)} before this request, of which the lines before it take ${formatCents(here)}`) +
            `${given > 0n ? why : ''})`,
        });
      else {
        takenHere.set(line_index, here + wanted);
        acceptedHere += wanted;
      }
      lines.push({ line_index, description: line.description, amount: formatCents(wanted) });
    });
  }
  if (errors.length > 0) return { errors };

  const invoiceSubtotal = parseAmount(invoice.subtotal);
  const unlimited = invoiceSubtotal - sum(earlier.map((note) => note.subtotal));
  const left = unlimited - elsewhere > 0n ? unlimited - elsewhere : 0n;
  const credited = sum(lines.map((line) => line.amount));
  if (credited > left) {
    const field = 'amount' in request ? '/amount' : '/lines';
    return {
      errors: [
        {
          field,
          message: `more than is left to credit of the invoice (${formatCents(left)} before tax${elsewhere > 0n ? why : ''})`,
        },
      ],
    };
  }
  // The note that credits what is left of the invoice takes what is left of each tax: less, when
  // credits of its days went back elsewhere, their share of it (tax × that / subtotal, half up),
  // which went back with them (credit1 F2: notes up to the limit reversed that share again, or
  // never the rest of theirs).
  const completes = credited === left;
  // In cents: tax × amount / subtotal, half up.
  const shareOf = (tax: bigint, amount: bigint) => {
    const [t, c, s] = [tax / 100n, amount / 100n, invoiceSubtotal / 100n];
    return ((2n * t * c + s) / (2n * s)) * 100n;
  };
  const taxes = invoice.taxes.map((tax) => {
    const reversed = sum(
      earlier.flatMap((note) =>
        note.taxes.filter((t) => t.tax_rate_id === tax.tax_rate_id).map((t) => t.amount),
      ),
    );
    const whole = parseAmount(tax.amount);
    const restBefore = whole - reversed - (elsewhere > 0n ? shareOf(whole, elsewhere) : 0n);
    const rest = restBefore > 0n ? restBefore : 0n;
    const share = shareOf(whole, credited);
    const amount = completes ? rest : share < rest ? share : rest;
    return { ...tax, taxable_amount: formatCents(credited), amount: formatCents(amount) };
  });
  const taxTotal = sum(taxes.map((t) => t.amount));
  return {
    lines,
    subtotal: formatCents(credited),
    taxes,
    tax_total: formatCents(taxTotal),
    total: formatCents(credited + taxTotal),
  };
}

/** Where the money of a credit note goes beyond what is still due on its invoice. */
export type RefundTo = 'payment' | 'balance';

export interface CreditNoteMoney {
  /** What lowers the invoice's amount due (what was still owed). */
  off_due: string;
  /** Where the rest goes: null when there is no rest. */
  refund_to: RefundTo | null;
  /** Refunded through the gateway, on the rail of the payment that paid the invoice. */
  refund_amount: string;
  /** Credited to the customer's balance. */
  credit_amount: string;
}

/**
 * The money of a credit note of `total` (tax included): first what is still due on the invoice
 * is lowered; the rest was paid already (by a payment, or by the customer's balance) and goes
 * back where the request says. A paid invoice must say (`refund_to`); a refund is never more than
 * the invoice's payment paid less its earlier refunds (`refundable`). An unpaid invoice has no
 * payment to refund: what its credit notes take beyond what is due (what the balance paid of it)
 * goes back to the balance.
 */
export function creditNoteMoney(
  total: string,
  invoice: { paid: boolean; amountDue: string; refundable: string },
  refundTo: RefundTo | undefined,
  amountField: string,
): CreditNoteMoney | { errors: FieldError[] } {
  const due = parseAmount(invoice.amountDue);
  const credited = parseAmount(total);
  const offDue = credited < due ? credited : due;
  const rest = credited - offDue;
  if (refundTo === 'payment' && !invoice.paid)
    return {
      errors: [
        {
          field: '/refund_to',
          message: 'the invoice is not paid: nothing to refund (a credit note lowers what is due)',
        },
      ],
    };
  if (invoice.paid && refundTo === undefined)
    return {
      errors: [
        {
          field: '/refund_to',
          message: 'required for a paid invoice: payment (a refund) or balance (the customer balance)',
        },
      ],
    };
  if (refundTo === 'payment' && rest > parseAmount(invoice.refundable))
    return {
      errors: [
        {
          field: amountField,
          message: `refunds ${formatCents(rest)} with tax, more than can be refunded (${formatCents(parseAmount(invoice.refundable))}: what the payment paid less earlier refunds); credit the rest to the balance`,
        },
      ],
    };
  const to = rest === 0n ? null : (refundTo ?? 'balance');
  return {
    off_due: formatCents(offDue),
    refund_to: to,
    refund_amount: formatCents(to === 'payment' ? rest : 0n),
    credit_amount: formatCents(to === 'balance' ? rest : 0n),
  };
}
