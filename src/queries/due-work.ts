// What billing work is due, across tenants (run by the worker as the owner: ids only, no data;
// each item is then performed in its tenant's transaction).
import { sql } from 'kysely';
import type { Db } from '../database/connection.js';

export type DueKind =
  | 'cancel'
  | 'settle'
  | 'submit'
  | 'retry'
  | 'renew'
  | 'expire'
  | 'trial'
  | 'resume'
  | 'close'
  | 'refund'
  | 'refund_settle'
  | 'lapse';

export interface DueItem {
  kind: DueKind;
  tenant_id: string;
  subscription_id: string;
  /** The subscription, payment, invoice (a `retry` or `lapse`), refund or wallet (an `expire` step, whose subscription_id is the wallet's id) to act on. */
  target_id: string;
  due_at: Date;
  /** When the step happens on a test clock: its due time, or the time the clock's advance started if later. */
  at: Date;
}

/**
 * The earliest due item of each subscription (so one subscription's steps happen in time order:
 * its next item is looked for again after this one is done), earliest first, then by rank. The
 * ranks follow a renewal's life: a step only makes steps due later, or at the same time with a
 * higher rank (renew → submit → settle; a failed settlement → a retry days later → submit; a
 * refund's submission → its settlement), and
 * a scheduled cancellation goes before the renewal it prevents (a canceled subscription still has
 * its "renewal" when its plan charges usage: the closing invoice of its last period's usage). On a test clock, due means at or
 * before the clock's time; in real time, at or before now.
 */
export async function findDueWork(
  db: Db,
  scope: { tenantId?: string | undefined; clockId?: string | undefined },
  limit: number,
): Promise<DueItem[]> {
  // On a clock, a step happens at its due time, but not before the time the clock's advance
  // started: due earlier, it was not due on the clock until then (its subscription was created or
  // changed then, backdated), and it happens then, as real time's step would happen now.
  const clock = scope.clockId
    ? sql`select frozen_time as now, coalesce(advanced_from, '-infinity') as floor,
          coalesce(advanced_from, '-infinity') as step_floor
        from test_clocks where id = ${scope.clockId} ${scope.tenantId ? sql`and tenant_id = ${scope.tenantId}` : sql``}`
    : sql`select now() as now, '-infinity'::timestamptz as floor, now() as step_floor`;
  const onClock = scope.clockId ? sql`s.test_clock_id = ${scope.clockId}` : sql`s.test_clock_id is null`;
  const inTenant = scope.tenantId ? sql`and s.tenant_id = ${scope.tenantId}` : sql``;
  const { rows } = await sql<DueItem>`
    with clock as (${clock}),
    items as (
      select 1 as rank, 'cancel' as kind, s.tenant_id, s.id as subscription_id, s.id as target_id, s.cancel_at as due_at
      from subscriptions s, clock
      where s.cancel_at is not null and s.status <> 'canceled' and s.cancel_at <= clock.now and ${onClock} ${inTenant}
      union all
      -- A trial's end announced 3 days before (not before the trial started: a shorter trial at once).
      -- Not a trial whose service ends before it (end_date): it never becomes a paid period. Nor
      -- one that has ended by the time the step would happen (its end_date moved past the trial
      -- after both days had gone): there is nothing left to announce (collection.ts).
      select 0, 'trial', s.tenant_id, s.id, s.id, greatest(s.trial_end - 3, s.start_date)::timestamp at time zone 'UTC'
      from subscriptions s, clock
      where s.status = 'trialing' and s.trial_end is not null and s.trial_notified_at is null
        and (s.end_date is null or s.end_date >= s.trial_end)
        and greatest(greatest(s.trial_end - 3, s.start_date)::timestamp at time zone 'UTC', clock.step_floor)
          < s.trial_end::timestamp at time zone 'UTC'
        and s.trial_end <= (select (now at time zone 'UTC')::date + 3 from clock) and ${onClock} ${inTenant}
      union all
      -- A pause that ends today: before the day's renewal, which then finds the period billed.
      select 1, 'resume', s.tenant_id, s.id, s.id, s.resumes_at::timestamp at time zone 'UTC'
      from subscriptions s
      where s.status = 'paused' and s.resumes_at is not null
        and s.resumes_at <= (select (now at time zone 'UTC')::date from clock) and ${onClock} ${inTenant}
      union all
      -- A canceled subscription with invoice items still pending: its last invoice. Found from
      -- the pending items (an index of their own, and few), not from every canceled subscription.
      select 3, 'close', s.tenant_id, s.id, s.id, coalesce(s.canceled_at, clock.now)
      from (select distinct tenant_id, subscription_id from invoice_items
            where invoice_id is null and balance_transaction_id is null) i
      join subscriptions s on s.tenant_id = i.tenant_id and s.id = i.subscription_id, clock
      where s.status = 'canceled' and coalesce(s.canceled_at, clock.now) <= clock.now and ${onClock} ${inTenant}
      union all
      select 5, 'settle', p.tenant_id, p.subscription_id, p.id, p.settles_at
      from payments p join subscriptions s on s.tenant_id = p.tenant_id and s.id = p.subscription_id, clock
      where p.status = 'processing' and p.settles_at <= clock.now and ${onClock} ${inTenant}
      union all
      select 4, 'submit', p.tenant_id, p.subscription_id, p.id, p.submit_after
      from payments p join subscriptions s on s.tenant_id = p.tenant_id and s.id = p.subscription_id, clock
      where p.status = 'pending' and p.submit_after <= clock.now and ${onClock} ${inTenant}
      union all
      -- Refunds (made by credit notes, never by a step): submitted, then settled after the rail's delay.
      select 6, 'refund', r.tenant_id, r.subscription_id, r.id, r.submit_after
      from refunds r join subscriptions s on s.tenant_id = r.tenant_id and s.id = r.subscription_id, clock
      where r.status = 'pending' and r.submitted_at is null
        and coalesce(r.settles_at, r.submit_after) <= clock.now and ${onClock} ${inTenant}
      union all
      select 7, 'refund_settle', r.tenant_id, r.subscription_id, r.id, r.settles_at
      from refunds r join subscriptions s on s.tenant_id = r.tenant_id and s.id = r.subscription_id, clock
      where r.status = 'pending' and r.submitted_at is not null
        and coalesce(r.settles_at, r.submit_after) <= clock.now and ${onClock} ${inTenant}
      union all
      -- A purchase still unpaid when its grant expires: voided (no payment may be in flight), at
      -- the expiry, or when a payment in flight then failed.
      select 3, 'lapse', g.tenant_id, i.subscription_id, i.id,
        greatest(g.expires_at, (select max(p.settled_at) from payments p
                                where p.tenant_id = i.tenant_id and p.invoice_id = i.id))
      from wallet_grants g
      join invoices i on i.tenant_id = g.tenant_id and i.id = g.invoice_id
      join subscriptions s on s.tenant_id = i.tenant_id and s.id = i.subscription_id, clock
      where g.invoice_id is not null and g.available_at is null and g.canceled_at is null
        and g.expires_at is not null and g.expires_at <= clock.now
        and i.status in ('open', 'uncollectible')
        and not exists (select from payments p where p.tenant_id = i.tenant_id and p.invoice_id = i.id
                        and p.status in ('pending', 'processing'))
        and ${onClock} ${inTenant}
      union all
      -- A dunning retry; while a payment of its invoice is in flight (made through the API) it
      -- waits, and follows that payment's failure (which moves it to then).
      select 3, 'retry', i.tenant_id, i.subscription_id, i.id, i.next_collection_at
      from invoices i join subscriptions s on s.tenant_id = i.tenant_id and s.id = i.subscription_id, clock
      where i.next_collection_at <= clock.now and ${onClock} ${inTenant}
        and not exists (select from payments p where p.tenant_id = i.tenant_id and p.invoice_id = i.id
                        and p.status in ('pending', 'processing'))
      union all
      select 2, 'renew', s.tenant_id, s.id, s.id, s.billed_until::timestamp at time zone 'UTC'
      from subscriptions s
      where s.billed_until is not null and s.status <> 'canceled'
        and s.billed_until <= (select (now at time zone 'UTC')::date from clock) and ${onClock} ${inTenant}
      union all
      -- A canceled subscription has one step left when its plan charges usage: its last usage.
      -- Found from those plans (each branch has an index of its own: one scan with an "or" read
      -- every subscription, 200 ms at 500,000, each time the worker looked). The day is a value (a
      -- subquery), not a join, so that it bounds the index scans.
      select 2, 'renew', s.tenant_id, s.id, s.id, s.billed_until::timestamp at time zone 'UTC'
      from plans p join subscriptions s on s.tenant_id = p.tenant_id and s.plan_id = p.id
      where p.usage_charges <> '[]'::jsonb and s.status = 'canceled' and s.billed_until is not null
        and s.billed_until <= (select (now at time zone 'UTC')::date from clock) and ${onClock} ${inTenant}
    ${
      scope.clockId
        ? sql`union all
      -- A wallet on the clock whose holds or grants expire: swept at the earliest such time.
      select 0, 'expire', w.tenant_id, w.id, w.id, e.due_at
      from wallets w, clock, lateral (
        select min(t) as due_at from (
          select g.expires_at as t from wallet_grants g
          where g.tenant_id = w.tenant_id and g.wallet_id = w.id and g.remaining > g.reserved and g.expires_at <= clock.now
          union all
          select h.expires_at from wallet_holds h
          where h.tenant_id = w.tenant_id and h.wallet_id = w.id and h.status = 'pending' and h.expires_at <= clock.now
        ) x) e
      where e.due_at is not null and w.test_clock_id = ${scope.clockId}
        ${scope.tenantId ? sql`and w.tenant_id = ${scope.tenantId}` : sql``}`
        : sql``
    }
    ),
    first as (
      select distinct on (subscription_id) * from items order by subscription_id, due_at, rank
    )
    select kind, tenant_id, subscription_id, target_id, due_at, greatest(due_at, clock.floor) as at
    from first, clock
    order by at, rank, due_at, subscription_id
    limit ${limit}`.execute(db);
  return rows;
}
