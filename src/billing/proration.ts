// Proration of a mid-period price change, by the day: pure and exact. A change on day D of the
// billing period [S, E) credits the old price and charges the new one for the days D to E − 1,
// each price × (E − D) / (E − S), rounded to the cent half up. And how the pending items are
// applied to an invoice: charges in full, credits up to the invoice's zero, the rest carried.
import type { Period } from './periods.js';
import { formatCents, formatSignedCents, type Micros, parseAmount, parseSignedAmount } from './money.js';

const DAY_MS = 86_400_000;

/** Whole days from a to b ('YYYY-MM-DD'). */
export const daysBetween = (a: string, b: string): number =>
  Math.round((Date.parse(`${b}T00:00:00Z`) - Date.parse(`${a}T00:00:00Z`)) / DAY_MS);

/** price × days / periodDays, rounded to the cent, half up (in ten-thousandths). */
export function prorated(price: string, days: number, periodDays: number): Micros {
  return proratedPaid({ numerator: parseAmount(price), denominator: 1n }, days, periodDays);
}

/** An amount in ten-thousandths as a fraction (a share of a discount is seldom whole). */
export interface Paid {
  numerator: Micros;
  denominator: bigint;
}

/** paid × days / periodDays, rounded to the cent, half up (in ten-thousandths). */
function proratedPaid(paid: Paid, days: number, periodDays: number): Micros {
  const numerator = paid.numerator * BigInt(days);
  const perCent = paid.denominator * BigInt(periodDays) * 100n;
  return ((2n * numerator + perCent) / (2n * perCent)) * 100n;
}

/**
 * What is left paid, net of tax, of an invoice's line `index`. A charge: its share of what the
 * invoice's charges cost after its discount (in proportion to the line among them), less its
 * share of the credit notes of the invoice as a whole (which take back what the charges cost, in
 * the same proportion) and less the credit notes of the line itself; between zero and the line. A
 * credit (negative): as it is, never discounted nor taken back (it is of what was paid).
 */
export function paidForLine(
  invoice: { lines: ReadonlyArray<{ type: string; amount: string }> },
  creditNotes: ReadonlyArray<{ lines: ReadonlyArray<{ line_index: number | null; amount: string }> }>,
  index: number,
): Paid {
  const amount = parseSignedAmount(invoice.lines[index]!.amount);
  if (amount <= 0n) return { numerator: amount, denominator: 1n };
  let charges = 0n;
  let discount = 0n;
  for (const line of invoice.lines) {
    const value = parseSignedAmount(line.amount);
    if (line.type === 'discount') discount -= value;
    else if (value > 0n) charges += value;
  }
  let ofInvoice = 0n;
  let ofLine = 0n;
  for (const note of creditNotes)
    for (const line of note.lines) {
      if (line.line_index === null) ofInvoice += parseAmount(line.amount);
      else if (line.line_index === index) ofLine += parseAmount(line.amount);
    }
  // What the charges cost after the discount, less what credit notes of the whole took back of it
  // (nothing with a 100% discount): the line's share of that, less its own credit notes.
  const left = charges - discount - ofInvoice;
  const numerator = (left > 0n ? amount * left : 0n) - ofLine * charges;
  const most = amount * charges;
  return { numerator: numerator < 0n ? 0n : numerator > most ? most : numerator, denominator: charges };
}

/** What is left paid of the price a period's invoice billed (its `subscription` line), if any. */
export function paidForPrice(
  invoice: { lines: ReadonlyArray<{ type: string; amount: string }> },
  creditNotes: ReadonlyArray<{ lines: ReadonlyArray<{ line_index: number | null; amount: string }> }>,
): Paid | undefined {
  const index = invoice.lines.findIndex((line) => line.type === 'subscription');
  return index < 0 ? undefined : paidForLine(invoice, creditNotes, index);
}

/** a + b × scale (fractions; scale given as numerator and denominator). */
export function addPaid(a: Paid, b: Paid, scale: { numerator: bigint; denominator: bigint } = ONE): Paid {
  return {
    numerator:
      a.numerator * b.denominator * scale.denominator + b.numerator * scale.numerator * a.denominator,
    denominator: a.denominator * b.denominator * scale.denominator,
  };
}
const ONE = { numerator: 1n, denominator: 1n };

export interface ProrationItem {
  kind: 'proration_credit' | 'proration_charge';
  description: string;
  /** Signed, two decimals: negative for the credit. */
  amount: string;
  period_start: string;
  period_end: string;
}

/**
 * The items of a change on `day` within `period` from the price `before` to the price `after`
 * (each with what it is, for the descriptions). A zero amount makes no item. With `until`, the
 * credit is of the days up to it only (its price came back then: services/prorations.ts
 * endCreditsChargedAgain); its description still names the days to the period's end.
 */
export function prorationItems(
  period: Period,
  day: string,
  before: { amount: string; label: string; paid?: Paid | undefined } | undefined,
  after: { amount: string; label: string } | undefined,
  until?: string,
): ProrationItem[] {
  const days = daysBetween(day, period.end);
  const periodDays = daysBetween(period.start, period.end);
  const span = `from ${day} to ${period.end}`;
  const items: ProrationItem[] = [];
  const paid = before?.paid;
  // Paid in full, or more than the price by its count (invariants5 #4: a start date moved back,
  // "at 103.32 paid of 45.00", the 99.99 that paid the days once credited already): a day is
  // credited at most at the price it is credited under.
  const full = paid === undefined || paid.numerator >= parseAmount(before!.amount) * paid.denominator;
  const credited = until === undefined ? days : daysBetween(day, until);
  const credit = !before
    ? 0n
    : full
      ? prorated(before.amount, credited, periodDays)
      : proratedPaid(paid, credited, periodDays);
  if (credit > 0n) {
    const at = full
      ? ''
      : `, at ${formatCents(proratedPaid(paid, 1, 1))} paid of ${formatCents(parseAmount(before!.amount))}`;
    const upTo = until === undefined ? '' : `, until ${until} (${credited} of ${periodDays} days)`;
    items.push({
      kind: 'proration_credit',
      description: `Unused time on ${before!.label} ${span} (${days} of ${periodDays} days)${at}${upTo}`,
      amount: formatSignedCents(-credit),
      period_start: day,
      period_end: until ?? period.end,
    });
  }
  const charge = after ? prorated(after.amount, days, periodDays) : 0n;
  if (charge > 0n) {
    items.push({
      kind: 'proration_charge',
      description: `Remaining time on ${after!.label} ${span} (${days} of ${periodDays} days)`,
      amount: formatSignedCents(charge),
      period_start: day,
      period_end: period.end,
    });
  }
  return items;
}

export interface PendingItem {
  id: string;
  amount: string;
}

export interface AppliedItems<T extends PendingItem> {
  /** The items billed, with the amount billed (a credit may be billed in part). */
  billed: Array<{ item: T; amount: string }>;
  /** What is left of a credit applied in part: it stays pending. */
  carried?: { item: T; amount: string };
}

/**
 * Pending items on an invoice whose other lines add up to `subtotal`: every charge in full, then
 * credits (oldest first) while the invoice stays at or above zero. The credit that would take it
 * below zero is billed in part, up to zero, and the rest carried; later credits wait whole.
 */
export function applyItems<T extends PendingItem>(subtotal: Micros, items: readonly T[]): AppliedItems<T> {
  const billed = new Map<T, string>();
  let total = subtotal;
  for (const item of items) {
    const amount = parseSignedAmount(item.amount);
    if (amount >= 0n) {
      billed.set(item, item.amount);
      total += amount;
    }
  }
  let carried: { item: T; amount: string } | undefined;
  for (const item of items) {
    const amount = parseSignedAmount(item.amount);
    if (amount >= 0n) continue;
    if (carried) break;
    if (total + amount >= 0n) {
      billed.set(item, item.amount);
      total += amount;
    } else {
      if (total > 0n) billed.set(item, formatSignedCents(-total));
      carried = { item, amount: formatSignedCents(total + amount) };
      total = 0n;
    }
  }
  // In the items' order, as the invoice shows them.
  const lines = items.filter((item) => billed.has(item)).map((item) => ({ item, amount: billed.get(item)! }));
  return carried ? { billed: lines, carried } : { billed: lines };
}
