// Discounts (a coupon applied to a subscription): when one runs, which invoices it reduces and by
// how much. Pure and exact: no I/O. The rules are the spec's (`Discount`) and docs/billing.md's.
import type { Discount } from '../database/schema.js';
import { formatCents, parseAmount, percentOf, roundToCents } from './money.js';
import { anniversary, LAST_DATE } from './periods.js';

type Micros = bigint;

/**
 * A repeating discount's end: 00:00 UTC of `firstDay`, `months` months later (clamped), where
 * firstDay is the first day its months count from (see discountFirstDay).
 */
export function discountEnd(firstDay: string, months: number): Date {
  const end = anniversary(firstDay, 'month', months, 1);
  // Past the calendar's last date (a five-digit year, which no Date parses): no invoice's period
  // starts there, so the calendar's end is the same end.
  return new Date(`${Number(end.slice(0, end.indexOf('-', 1))) > 9999 ? LAST_DATE : end}T00:00:00Z`);
}

/**
 * The day a repeating discount's months count from: the start of the first period it can reduce,
 * the next one to be invoiced (`billedUntil`, which may have begun already: a backdated
 * subscription's, or a renewal not made yet), so that it discounts as many monthly invoices as it
 * has months whenever it is applied. Counted from the day applied instead, one applied mid-period
 * discounted one invoice fewer when that day's date did not exist months later (January 31st
 * plus a month is February 28th, the next period's start on a subscription billed on the 30th),
 * a backdated subscription's first invoice one more, and one starting in the future none at all.
 * During a trial (and when nothing is to be invoiced) it is the day applied, or the trial's
 * start if later: a trial's free days use months up, as Stripe's do. Paused until a known day,
 * it is the start of the period the resume falls in (`resumesIn`); paused with no resume day,
 * the next renewal's, as for any subscription.
 */
export function discountFirstDay(
  today: string,
  billedUntil: string | null,
  trialStart: string | null,
  resumesIn: string | null = null,
): string {
  if (trialStart !== null) return trialStart > today ? trialStart : today;
  // Paused until a known day: the periods until then are not invoiced; the first that is, in
  // part or whole, is the one the resume falls in.
  if (resumesIn !== null && (billedUntil === null || resumesIn > billedUntil)) return resumesIn;
  return billedUntil ?? today;
}

export type DiscountVerdict =
  | { kind: 'none' }
  /** Reduces the invoice: by `amount` (positive micros, whole cents). */
  | { kind: 'applies'; amount: Micros }
  /** Runs no more: the invoice's period starts at or after its end. Remove it. */
  | { kind: 'ended' }
  /** The subscription is on a plan the coupon is not for: nothing now, it stays. */
  | { kind: 'not-for-plan' };

/**
 * What the subscription's discount does to an invoice of `subtotal` (micros, ≥ 0) made at `now`
 * for a period starting on `periodStart`: percent_off of the subtotal, half up to the cent, or
 * amount_off, never more than the subtotal. A repeating discount's months are periods from its
 * first day (`from`) on: a period invoice of an earlier period, made later (billed by hand for a
 * backdated subscription, or invoiced again after a void), is not reduced, or its months would
 * reduce more invoices than they have months. A change's invoice is reduced as before.
 */
export function discountFor(
  discount: Discount | null,
  planId: string | null,
  periodStart: string,
  now: Date,
  subtotal: Micros,
  periodInvoice = false,
): DiscountVerdict {
  if (discount === null || now < new Date(discount.start)) return { kind: 'none' };
  if (discount.awaiting_resume) return { kind: 'none' };
  if (discount.end !== null && new Date(`${periodStart}T00:00:00Z`) >= new Date(discount.end))
    return { kind: 'ended' };
  if (periodInvoice && discount.from !== undefined && periodStart < discount.from) return { kind: 'none' };
  if (discount.plan_ids.length > 0 && (planId === null || !discount.plan_ids.includes(planId)))
    return { kind: 'not-for-plan' };
  const off =
    discount.percent_off !== null
      ? percentOf(subtotal, discount.percent_off)
      : parseAmount(discount.amount_off!);
  return { kind: 'applies', amount: off < subtotal ? off : subtotal };
}

/** The discount line's text: "Launch (25% off)", "Welcome (10.00 off)". */
export function discountLabel(discount: Discount): string {
  const off =
    discount.percent_off !== null
      ? `${discount.percent_off.replace(/\.?0+$/, '')}% off`
      : `${formatCents(parseAmount(discount.amount_off!))} off`;
  return `${discount.name} (${off})`;
}

/**
 * Each usage line's share of a discount of `discounted` on `charged` (micros, by line index):
 * their part of it (usage ÷ charged), rounded up to the cent (credits pay a cent less rather than
 * more), split over the lines in whole cents by largest remainder, so the shares add up to it.
 */
export function usageShares(
  lines: ReadonlyArray<{ type: string; amount: string }>,
  discounted: bigint,
  charged: bigint,
): Map<number, bigint> {
  const shares = new Map<number, bigint>();
  if (discounted === 0n || charged === 0n) return shares;
  const usage = lines.flatMap((line, index) =>
    line.type === 'usage' ? [{ index, whole: roundToCents(parseAmount(line.amount)) }] : [],
  );
  const total = usage.reduce((sum, u) => sum + u.whole, 0n);
  if (total === 0n) return shares;
  const cents = (((discounted * total + charged - 1n) / charged + 99n) / 100n) * 100n;
  const ofTotal = cents < total ? cents : total;
  const exact = usage.map((u) => ({ ...u, micros: ofTotal * u.whole }));
  let left = ofTotal;
  for (const u of exact) {
    const share = (u.micros / total / 100n) * 100n; // whole cents, rounded down
    shares.set(u.index, share);
    left -= share;
  }
  // The cents left, one each, to the lines whose share lost the most to rounding down.
  const byRemainder = [...exact].sort((a, b) => {
    const ra = a.micros % (total * 100n);
    const rb = b.micros % (total * 100n);
    return ra === rb ? a.index - b.index : rb > ra ? 1 : -1;
  });
  for (const u of byRemainder) {
    if (left <= 0n) break;
    if (shares.get(u.index)! + 100n > u.whole) continue;
    shares.set(u.index, shares.get(u.index)! + 100n);
    left -= 100n;
  }
  return shares;
}
