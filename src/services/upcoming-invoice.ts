// The invoice a subscription's next renewal will issue, as things stand now (GET
// /subscriptions/{id}/upcoming-invoice): the renewal itself, run in a transaction that is rolled
// back, so the preview is computed by the code that bills and cannot drift from it. Neither
// issued nor collected: no number is taken and no payment is started, not even to roll back.
import { PeriodBeyondCalendarError } from '../billing/periods.js';
import { subscriptionNow } from '../billing/subscription-time.js';
import type { InvoiceRow } from '../database/schema.js';
import { pendingInvoiceItems } from '../queries/invoice-items.js';
import { lockSubscription } from '../queries/subscriptions.js';
import { atStep, renewLocked, type Settle } from './collection.js';
import { type Actor, inTenant, type ServiceContext } from './context.js';
import { takeFromBalance } from './customer-balance.js';
import { closeEndedItems, withRatesInForce } from './invoices.js';
import { resumeScheduled } from './pauses.js';
import { lockAfterDueCancellations } from './subscriptions.js';

export type UpcomingOutcome =
  | { kind: 'upcoming'; invoice: InvoiceRow; issuesAt: Date }
  | { kind: 'missing' }
  | {
      kind: 'none';
      why: 'canceled' | 'ends' | 'not-renewing' | 'paused' | 'nothing-billed' | 'past-calendar';
    };

/** Carries the preview out of the transaction it rolls back. */
class Rollback extends Error {
  constructor(readonly outcome: UpcomingOutcome) {
    super('upcoming invoice: rolled back');
  }
}

/**
 * Renewals a preview runs at most before one issues an invoice: a trial's periods and the
 * period an ended subscription still serves before its closing invoice each take one.
 */
const MOST_RENEWALS = 24;

export async function upcomingInvoice(
  ctx: ServiceContext,
  actor: Actor,
  id: string,
): Promise<UpcomingOutcome> {
  try {
    // Every outcome rolls back: the renewals run to find it wrote.
    return await inTenant(ctx, actor, async (tx): Promise<never> => {
      const done = (outcome: UpcomingOutcome) => new Rollback(outcome);
      let locked = await lockAfterDueCancellations(tx, id);
      if (!locked) throw done({ kind: 'missing' });
      const issued: InvoiceRow[] = [];
      // Items the preview makes (a resume's charge, say) are rolled back with it: their lines
      // name no item.
      const pending = new Set((await pendingInvoiceItems(tx.db, id)).map((item) => item.id));
      // Not issued: issuing takes the tenant's next invoice number, whose lock would hold the
      // tenant's renewals until this rolls back. What the balance would pay is all it adds.
      const preview: Settle = async (tx, _before, draft, at, _tenantId, created) => {
        // The period's invoice issued already (by hand, before the worker's look): the renewal
        // issues nothing for that period, and moves on to the next (retest15 #1).
        if (draft.status !== 'draft') return draft;
        // Taxed as issuing it will, with the rates in force on its date now (retest16 #5).
        const taxed = await withRatesInForce(tx, draft);
        const fromBalance = await takeFromBalance(tx, taxed, at, created?.customer);
        const lines = (taxed.lines as unknown as Array<{ invoice_item_id?: string }>).map((line) => {
          if (line.invoice_item_id === undefined || pending.has(line.invoice_item_id)) return line;
          const { invoice_item_id: _made, ...rest } = line;
          return rest;
        });
        const invoice = {
          ...taxed,
          lines: lines as unknown as InvoiceRow['lines'],
          ...(fromBalance === '0.00' ? {} : { amount_from_balance: fromBalance }),
        };
        issued.push(invoice);
        return invoice;
      };
      if (locked.status === 'canceled') {
        // Items still pending when it was canceled are billed on a last invoice of their own at
        // the cancellation (the worker's closeDue, due at canceled_at), before any renewal step.
        const now = subscriptionNow(locked);
        const at = locked.test_clock_id && locked.canceled_at ? locked.canceled_at : now;
        atStep(tx, locked, at);
        const last = await closeEndedItems(tx, locked, at);
        if (last)
          throw done({
            kind: 'upcoming',
            invoice: await preview(tx, locked, last, at, actor.tenantId),
            issuesAt: at,
          });
      }
      for (let i = 0; i < MOST_RENEWALS; i++) {
        if (locked.billed_until === null) {
          const ends = locked.cancel_at !== null || locked.end_date !== null;
          throw done({
            kind: 'none',
            why: locked.status === 'canceled' ? 'canceled' : ends ? 'ends' : 'not-renewing',
          });
        }
        const paused = locked.status === 'paused';
        const now = subscriptionNow(locked);
        if (paused && locked.resumes_at !== null && locked.resumes_at <= locked.billed_until) {
          // Its resume comes first, as the worker runs it on that day: the rest of the period
          // it invoices, if any, is the upcoming invoice; otherwise the renewals after it are.
          const resumes = new Date(`${locked.resumes_at}T00:00:00Z`);
          const at = resumes > now ? resumes : now;
          atStep(tx, locked, at);
          await resumeScheduled(tx, actor.tenantId, locked, at, preview);
          if (issued.length > 0) throw done({ kind: 'upcoming', invoice: issued[0]!, issuesAt: at });
          locked = (await lockSubscription(tx.db, id))!;
          continue;
        }
        const due = new Date(`${locked.billed_until}T00:00:00Z`);
        const at = due > now ? due : now;
        try {
          await renewLocked(tx, actor.tenantId, locked, at, preview);
        } catch (error) {
          // Its next period would end after 9999-12-31: no renewal can ever make it (retest10 #1).
          if (error instanceof PeriodBeyondCalendarError) throw done({ kind: 'none', why: 'past-calendar' });
          throw error;
        }
        if (issued.length > 0) throw done({ kind: 'upcoming', invoice: issued[0]!, issuesAt: at });
        // Paused: its renewals invoice nothing for the time paused, only the usage of the period
        // before the pause (billed above when there is any); nothing more until it resumes.
        if (paused && locked.resumes_at === null) throw done({ kind: 'none', why: 'paused' });
        locked = (await lockSubscription(tx.db, id))!;
      }
      throw done({ kind: 'none', why: locked.status === 'paused' ? 'paused' : 'nothing-billed' });
    });
  } catch (error) {
    if (error instanceof Rollback) return error.outcome;
    throw error;
  }
}
