// An invoice's amounts: pure and exact. One line per charge, rounded to the cent (half up); the
// subtotal is their sum; each tax rate in force is applied to the subtotal and rounded to the cent
// (half up); the total is the subtotal plus the taxes.
import { formatCents, formatSignedCents, parseAmount, parseSignedAmount, percentOf } from './money.js';
import type { BreakdownLine } from './pricing.js';
import type { UsageBreakdownLine } from './usage-pricing.js';

export interface Charge {
  /**
   * A subscription's price for the invoice's period, a usage charge for the one before, or the
   * credits a purchase invoice sells.
   */
  type: 'subscription' | 'usage' | 'credits' | 'proration' | 'one_off' | 'discount';
  description: string;
  /** The charge's amount for the period, exact ("49.99", "12.3456"); negative for a credit. */
  amount: string;
  /** For proration lines: the invoice item billed. */
  invoice_item_id?: string;
  /** For a discount line: the coupon of the discount. */
  coupon_id?: string;
  quantity: number;
  breakdown: BreakdownLine[];
  /** The period the line bills: [period_start, period_end). */
  period_start: string;
  period_end: string;
  /** For usage lines: what was counted and how it was priced (the line's quantity is 1). */
  usage: {
    metric: string;
    billable_metric_id: string;
    dimension_value: string | null;
    quantity: string;
    billable_quantity: string;
    breakdown: UsageBreakdownLine[];
  } | null;
  /** For usage lines the invoice's discount reduced: its share of the discount (whole cents). */
  discount_share?: string;
  /** For usage lines paid from prepaid credits: what they paid (the line's amount is the rest). */
  credits_applied?: {
    amount: string;
    wallets: Array<{ wallet_id: string; credits: string; amount: string }>;
  } | null;
}

export interface Rate {
  id: string;
  code: string;
  name: string;
  /** Percent, up to four decimals: "8.8750". */
  percentage: string;
  region: string;
}

export interface InvoiceAmounts {
  lines: Array<Charge & { amount: string }>;
  subtotal: string;
  taxes: Array<{
    tax_rate_id: string;
    code: string;
    name: string;
    percentage: string;
    region: string;
    taxable_amount: string;
    amount: string;
  }>;
  tax_total: string;
  total: string;
}

export function invoiceAmounts(charges: readonly Charge[], rates: readonly Rate[]): InvoiceAmounts {
  const lines = charges.map((charge) => ({
    ...charge,
    amount: formatSignedCents(parseSignedAmount(charge.amount)),
  }));
  const subtotal = lines.reduce((sum, l) => sum + parseSignedAmount(l.amount), 0n);
  if (subtotal < 0n) throw new RangeError('an invoice cannot be negative: credits are applied up to zero');
  const taxes = rates.map((rate) => ({
    tax_rate_id: rate.id,
    code: rate.code,
    name: rate.name,
    percentage: rate.percentage,
    region: rate.region,
    taxable_amount: formatCents(subtotal),
    amount: formatCents(percentOf(subtotal, rate.percentage)),
  }));
  const taxTotal = taxes.reduce((sum, t) => sum + parseAmount(t.amount), 0n);
  return {
    lines,
    subtotal: formatCents(subtotal),
    taxes,
    tax_total: formatCents(taxTotal),
    total: formatCents(subtotal + taxTotal),
  };
}
