// What "now" and "today" are for a subscription: its test clock's time when it is on one (the
// clock is the only time it knows), else the real time. Pure: no I/O.
import { type Interval, periodContaining } from './periods.js';

export interface Clocked {
  /** The test clock's time; null in real time. */
  clock_time: Date | null;
}

/** Now, for this subscription. */
export const subscriptionNow = (s: Clocked, real: Date = new Date()): Date => s.clock_time ?? real;

/** The UTC calendar day of an instant. */
export const dayOf = (at: Date): string => at.toISOString().slice(0, 10);

/**
 * The day whose billing period is the subscription's current one: today on its clock, but not
 * after the last day it was served (the day it was canceled, the day before a scheduled
 * cancellation took effect at 00:00, or its end_date), nor before its start (a subscription that
 * has not started shows its first period).
 */
export function currentPeriodDay(
  s: Clocked & {
    start_date: string;
    end_date: string | null;
    canceled_at: Date | null;
    cancel_at: Date | null;
  },
  real: Date = new Date(),
): string {
  let day = dayOf(subscriptionNow(s, real));
  if (s.canceled_at) {
    const scheduled = s.cancel_at?.getTime() === s.canceled_at.getTime();
    const last = dayOf(scheduled ? new Date(s.canceled_at.getTime() - 1) : s.canceled_at);
    if (last < day) day = last;
  }
  if (s.end_date !== null && s.end_date < day) day = s.end_date;
  return day > s.start_date ? day : s.start_date;
}

/**
 * A trial with an end is a period of its own, before the first one billed: from start_date to
 * trial_end. Its price and its usage are free. Undefined for a day not in such a trial.
 */
export function trialPeriodOf(
  s: { start_date: string; trial_end: string | null },
  day: string,
): { start: string; end: string } | undefined {
  return s.trial_end !== null && day < s.trial_end ? { start: s.start_date, end: s.trial_end } : undefined;
}

/**
 * The trial a subscription had until it was ended early (trial_ended_on, once trial_end became
 * null): its own period, start_date to that day. Undefined for a day after it, or without one.
 */
export function endedTrialPeriodOf(
  s: { start_date: string; trial_ended_on: string | null },
  day: string,
): { start: string; end: string } | undefined {
  return s.trial_ended_on !== null && s.trial_ended_on > s.start_date && day < s.trial_ended_on
    ? { start: s.start_date, end: s.trial_ended_on }
    : undefined;
}

/** Trialing without a trial_end: free until it is changed, and so since its start. */
export const endlessTrial = (s: { status: string; trial_end: string | null }): boolean =>
  s.status === 'trialing' && s.trial_end === null;

/**
 * The last day a subscription is served, if its service ends: its end_date, the day it was
 * canceled, or the day before a scheduled cancellation takes effect (at 00:00 UTC of cancel_at's
 * day). Nothing after it is ever invoiced.
 */
export function lastDayServed(s: {
  end_date: string | null;
  canceled_at: Date | null;
  cancel_at: Date | null;
}): { lastDay: string; why: 'end_date' | 'canceled' | 'cancel_at' } | undefined {
  const candidates: Array<{ lastDay: string; why: 'end_date' | 'canceled' | 'cancel_at' }> = [];
  if (s.end_date !== null) candidates.push({ lastDay: s.end_date, why: 'end_date' });
  if (s.canceled_at) candidates.push({ lastDay: dayOf(s.canceled_at), why: 'canceled' });
  if (s.cancel_at) candidates.push({ lastDay: dayOf(new Date(s.cancel_at.getTime() - 1)), why: 'cancel_at' });
  return candidates.sort((a, b) => (a.lastDay < b.lastDay ? -1 : 1))[0];
}

/**
 * The day a subscription's billing periods are anchored on: its start date, until a change of
 * interval started a new schedule (billing_anchor).
 */
export const billingAnchor = (s: { start_date: string; billing_anchor: string | null }): string =>
  s.billing_anchor ?? s.start_date;

/**
 * The end of the period a subscription serves on `today` (its clock's day): its trial's end during
 * a trial, else the end of its billing period, the first one for a subscription not started yet.
 * A cancellation or a change at the period's end takes effect on it.
 */
export function servedPeriodEnd(
  s: {
    start_date: string;
    billing_anchor: string | null;
    billing_interval: Interval;
    interval_count: number;
    trial_end: string | null;
  },
  today: string,
): string {
  const day = s.start_date > today ? s.start_date : today;
  return (
    trialPeriodOf(s, day)?.end ??
    periodContaining(billingAnchor(s), s.billing_interval, s.interval_count, day).end
  );
}

/**
 * The first day whose usage renewals bill, for a subscription whose invoices (billed in advance)
 * start with the period starting on `firstInvoiced`: usage is billed in arrears, by the invoice
 * of the period after it, so the usage of the period before that one is billed too, and nothing
 * earlier. Not before the start date. On the anchor itself (a first period, the day after a
 * trial, or after a trial ended early) usage is billed from that day: the days before it were
 * not served, or served free. Undefined when `firstInvoiced` precedes the anchor (a schedule
 * changed since: its earlier periods are not known).
 */
export function firstUsageDayBilled(
  s: {
    start_date: string;
    billing_anchor: string | null;
    billing_interval: Interval;
    interval_count: number;
  },
  firstInvoiced: string,
): string | undefined {
  const anchor = billingAnchor(s);
  if (firstInvoiced < anchor) return undefined;
  if (firstInvoiced === anchor) return anchor;
  const dayBefore = dayOf(new Date(Date.parse(`${firstInvoiced}T00:00:00Z`) - 86_400_000));
  const { start } = periodContaining(anchor, s.billing_interval, s.interval_count, dayBefore);
  return start > s.start_date ? start : s.start_date;
}
