// Proration of a mid-period price change, by the day: pure and exact. A change on day D of the
// billing period [S, E) credits the old price and charges the new one for the days D to E − 1,
// each price × (E − D) / (E − S), rounded to the cent half up. And how the pending items are
// applied to an invoice: charges in full, credits up to the invoice's zero, the rest carried.
import type { Period } from './periods.js';
import { formatSignedCents, type Micros, parseAmount, parseSignedAmount } from './money.js';

const DAY_MS = 86_400_000;

/** Whole days from a to b ('YYYY-MM-DD'). */
export const daysBetween = (a: string, b: string): number =>
  Math.round((Date.parse(`${b}T00:00:00Z`) - Date.parse(`${a}T00:00:00Z`)) / DAY_MS);

/** price × days / periodDays, rounded to the cent, half up (in ten-thousandths). */
export function prorated(price: string, days: number, periodDays: number): Micros {
  const numerator = parseAmount(price) * BigInt(days);
  const perCent = BigInt(periodDays) * 100n;
  return ((2n * numerator + perCent) / (2n * perCent)) * 100n;
}

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
 * (each with what it is, for the descriptions). A zero amount makes no item.
 */
export function prorationItems(
  period: Period,
  day: string,
  before: { amount: string; label: string } | undefined,
  after: { amount: string; label: string } | undefined,
): ProrationItem[] {
  const days = daysBetween(day, period.end);
  const periodDays = daysBetween(period.start, period.end);
  const span = `from ${day} to ${period.end}`;
  const items: ProrationItem[] = [];
  const credit = before ? prorated(before.amount, days, periodDays) : 0n;
  if (credit > 0n) {
    items.push({
      kind: 'proration_credit',
      description: `Unused time on ${before!.label} ${span} (${days} of ${periodDays} days)`,
      amount: formatSignedCents(-credit),
      period_start: day,
      period_end: period.end,
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
