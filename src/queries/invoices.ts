import { sql } from 'kysely';
import type { Db } from '../database/connection.js';
import type { InvoiceKind, InvoiceRow, InvoiceStatus } from '../database/schema.js';

const columns = [
  'id',
  'kind',
  'subscription_id',
  'user_id',
  'status',
  'number',
  'period_start',
  'period_end',
  'invoice_date',
  'region',
  'lines',
  'subtotal',
  'taxes',
  'tax_total',
  'total',
  'finalized_at',
  'paid_at',
  'voided_at',
  'uncollectible_at',
  'collection_failed_at',
  'next_collection_at',
  'dunning_retries',
  'amount_credited',
  'amount_from_balance',
  'version',
  'created_at',
  'updated_at',
] as const;

export interface InvoiceFilter {
  limit: number;
  after?: string | undefined;
  subscriptionId?: string | undefined;
  userId?: string | undefined;
  statuses?: readonly InvoiceStatus[] | undefined;
  /** Invoices whose period contains this date. */
  periodOn?: string | undefined;
  number?: number | undefined;
}

export function listInvoices(db: Db, filter: InvoiceFilter): Promise<InvoiceRow[]> {
  let query = db
    .selectFrom('invoices')
    .select(columns)
    .orderBy('id', 'desc')
    .limit(filter.limit + 1);
  if (filter.after) query = query.where('id', '<', filter.after);
  if (filter.subscriptionId) query = query.where('subscription_id', '=', filter.subscriptionId);
  if (filter.userId) query = query.where('user_id', '=', filter.userId);
  if (filter.statuses?.length) query = query.where('status', 'in', filter.statuses);
  if (filter.periodOn) {
    query = query.where('period_start', '<=', filter.periodOn).where('period_end', '>', filter.periodOn);
  }
  if (filter.number !== undefined) query = query.where('number', '=', String(filter.number));
  return query.execute();
}

export function findInvoice(db: Db, id: string): Promise<InvoiceRow | undefined> {
  return db.selectFrom('invoices').select(columns).where('id', '=', id).executeTakeFirst();
}

export function lockInvoice(db: Db, id: string): Promise<InvoiceRow | undefined> {
  return db.selectFrom('invoices').select(columns).where('id', '=', id).forUpdate().executeTakeFirst();
}

/**
 * The period invoice of a subscription's period: the live one (one at most, a unique index), else
 * the last voided one.
 */
export function findInvoiceForPeriod(
  db: Db,
  subscriptionId: string,
  period: { start: string; end: string },
): Promise<InvoiceRow | undefined> {
  return db
    .selectFrom('invoices')
    .select(columns)
    .where('subscription_id', '=', subscriptionId)
    .where('period_start', '=', period.start)
    .where('period_end', '=', period.end)
    .where('kind', '=', 'period')
    .orderBy(sql`status = 'void'`)
    .orderBy('created_at', 'desc')
    .orderBy('id', 'desc')
    .limit(1)
    .executeTakeFirst();
}

/**
 * A period invoice of the subscription, not voided (drafts included), of another period sharing
 * days with `period`: one of the schedule before its start_date moved. The earliest. With `void`,
 * a voided one instead.
 */
export function overlappingPeriodInvoice(
  db: Db,
  subscriptionId: string,
  period: { start: string; end: string },
  status: 'standing' | 'void' = 'standing',
): Promise<InvoiceRow | undefined> {
  return db
    .selectFrom('invoices')
    .select(columns)
    .where('subscription_id', '=', subscriptionId)
    .where('kind', '=', 'period')
    .where('status', status === 'void' ? '=' : '<>', 'void')
    .where('period_start', '<', period.end)
    .where('period_end', '>', period.start)
    .where((eb) => eb.or([eb('period_start', '<>', period.start), eb('period_end', '<>', period.end)]))
    .orderBy('period_start')
    .limit(1)
    .executeTakeFirst();
}

/** The period of the subscription's latest period invoice not voided (drafts included). */
export function latestInvoicedPeriod(
  db: Db,
  subscriptionId: string,
): Promise<{ period_start: string; period_end: string } | undefined> {
  return db
    .selectFrom('invoices')
    .select(['period_start', 'period_end'])
    .where('subscription_id', '=', subscriptionId)
    .where('kind', '=', 'period')
    .where('status', '<>', 'void')
    .orderBy('period_start', 'desc')
    .limit(1)
    .executeTakeFirst();
}

/**
 * A subscription's issued invoices (open, paid, uncollectible) of its periods and changes whose
 * period meets the days from `from` to `to` (exclusive): those that may have billed them (their
 * lines say), oldest first.
 */
export function issuedInvoicesMeeting(
  db: Db,
  subscriptionId: string,
  from: string,
  to: string,
): Promise<
  Array<Pick<InvoiceRow, 'id' | 'kind' | 'period_start' | 'period_end' | 'lines' | 'taxes' | 'subtotal'>>
> {
  return db
    .selectFrom('invoices')
    .select(['id', 'kind', 'period_start', 'period_end', 'lines', 'taxes', 'subtotal'])
    .where('subscription_id', '=', subscriptionId)
    .where('kind', 'in', ['period', 'proration'])
    .where('status', 'in', ['open', 'paid', 'uncollectible'])
    .where('period_start', '<', to)
    .where('period_end', '>', from)
    .orderBy('invoice_date')
    .orderBy('id')
    .execute();
}

export interface NewInvoice {
  /** `period` when absent. */
  kind?: InvoiceKind;
  subscription_id: string;
  user_id: string;
  period_start: string;
  period_end: string;
  invoice_date: string;
  region: string | null;
  lines: unknown;
  subtotal: string;
  taxes: unknown;
  tax_total: string;
  total: string;
}

/**
 * The new draft, or undefined when the period already has an invoice (made concurrently too). A
 * purchase invoice is always new.
 */
export function insertInvoice(db: Db, values: NewInvoice): Promise<InvoiceRow | undefined> {
  return db
    .insertInto('invoices')
    .values({ ...values, lines: JSON.stringify(values.lines), taxes: JSON.stringify(values.taxes) })
    .onConflict((oc) =>
      oc
        .columns(['tenant_id', 'subscription_id', 'period_start', 'period_end'])
        // Literals: the index's predicate must be provable from them (a parameter is not).
        .where(sql<boolean>`kind = 'period' and status <> 'void'`)
        .doNothing(),
    )
    .returning(columns)
    .executeTakeFirst();
}

/** The once discount the invoice used up, as its subscription had it; null for none. */
export async function discountUsedBy(db: Db, id: string): Promise<unknown> {
  const row = await db.selectFrom('invoices').select('discount_used').where('id', '=', id).executeTakeFirst();
  return row?.discount_used ?? null;
}

/** The tenant's next invoice number, taken under the counter row's lock until the transaction ends. */
/**
 * draft → open with the tenant's next invoice number, in one statement. The counter's row stays
 * locked until COMMIT (numbers are gapless: a number rolled back is given again), so every other
 * invoice of the tenant waits from here: the number is taken with the invoice's own update, the
 * issuing's last step, instead of a round trip of its own at the start.
 */
export async function openWithNextNumber(
  db: Db,
  id: string,
  patch: { finalized_at: Date; amount_from_balance?: string },
): Promise<InvoiceRow> {
  const { rows } = await sql<InvoiceRow>`
    with counter as (
      insert into invoice_counters as c (last_number) values (1)
      on conflict (tenant_id) do update set last_number = c.last_number + 1
      returning last_number)
    update invoices set status = 'open', number = (select last_number from counter),
      finalized_at = ${patch.finalized_at},
      amount_from_balance = coalesce(${patch.amount_from_balance ?? null}::numeric, amount_from_balance),
      updated_at = now()
    where id = ${id}
    returning ${sql.join(columns.map((c) => sql.ref(c)))}`.execute(db);
  return rows[0]!;
}

/** Whether a subscription has any invoice, of any kind or status. */
export async function hasAnyInvoice(db: Db, subscriptionId: string): Promise<boolean> {
  const row = await db
    .selectFrom('invoices')
    .select('id')
    .where('subscription_id', '=', subscriptionId)
    .limit(1)
    .executeTakeFirst();
  return row !== undefined;
}

/** A subscription's invoices still owed (open or uncollectible), oldest first. */
export function owedInvoicesOf(db: Db, subscriptionId: string): Promise<InvoiceRow[]> {
  return db
    .selectFrom('invoices')
    .select(columns)
    .where('subscription_id', '=', subscriptionId)
    .where('status', 'in', ['open', 'uncollectible'])
    .orderBy('finalized_at')
    .orderBy('id')
    .execute();
}

/**
 * Whether a subscription has an invoice whose automatic collection failed and that is still
 * unpaid; with `retried`, only one still in dunning (open, its next retry scheduled or under way).
 */
export async function hasFailingInvoice(db: Db, subscriptionId: string, retried = false): Promise<boolean> {
  const row = await db
    .selectFrom('invoices as i')
    .select('i.id')
    .where('i.subscription_id', '=', subscriptionId)
    .where('i.status', 'in', retried ? ['open'] : ['open', 'uncollectible'])
    .where('i.collection_failed_at', 'is not', null)
    .$if(retried, (q) =>
      q.where((eb) =>
        eb.or([
          eb('i.next_collection_at', 'is not', null),
          eb.exists(
            eb
              .selectFrom('payments as p')
              .select('p.id')
              .whereRef('p.invoice_id', '=', 'i.id')
              .where('p.status', 'in', ['pending', 'processing']),
          ),
        ]),
      ),
    )
    .limit(1)
    .executeTakeFirst();
  return row !== undefined;
}

/**
 * A subscription that ended: none of its invoices is retried any more (under its lock). The
 * invoices changed, before and after, for their events.
 */
export async function stopRetries(
  db: Db,
  subscriptionId: string,
): Promise<Array<{ before: InvoiceRow; after: InvoiceRow }>> {
  const retried = await db
    .selectFrom('invoices')
    .select(columns)
    .where('subscription_id', '=', subscriptionId)
    .where('next_collection_at', 'is not', null)
    .execute();
  if (retried.length === 0) return [];
  const after = await db
    .updateTable('invoices')
    .set({ next_collection_at: null, updated_at: sql`now()` })
    .where(
      'id',
      'in',
      retried.map((i) => i.id),
    )
    .returning(columns)
    .execute();
  const before = new Map(retried.map((i) => [i.id, i]));
  return after.map((i) => ({ before: before.get(i.id)!, after: i }));
}

/**
 * A subscription active again after `unpaid` (under its lock): its open invoices issued since
 * dunning made it unpaid (finalized at or after its latest `uncollectible_at`; all of them when
 * none is, as for one made unpaid by hand, or created so), which nothing collected (a renewal does not collect while unpaid), are due for collection at `at` (now in
 * real time): the worker's retry step collects them as a renewal would.
 */
export async function resumeCollection(
  db: Db,
  subscriptionId: string,
  at: Date | undefined,
): Promise<InvoiceRow[]> {
  const { rows } = await sql<InvoiceRow>`
    update invoices i set next_collection_at = ${at ?? sql`now()`}, updated_at = now()
    where i.subscription_id = ${subscriptionId} and i.status = 'open' and i.kind <> 'purchase'
      and i.collection_failed_at is null and i.next_collection_at is null
      and i.finalized_at >= (select coalesce(max(u.uncollectible_at), '-infinity') from invoices u
                             where u.subscription_id = ${subscriptionId})
      and not exists (select from payments p where p.tenant_id = i.tenant_id and p.invoice_id = i.id
                      and p.initiated_by in ('renewal', 'dunning'))
      -- Without a payment method no collection will be made: none is shown as coming.
      and exists (select from subscriptions s where s.id = ${subscriptionId}
                  and s.payment_method is not null and s.payment_rail is not null)
    returning ${sql.join(columns.map((c) => sql.ref(`i.${c}`)))}`.execute(db);
  return rows;
}

/** Run on a locked invoice; the trigger refuses what an issued invoice may not change. */
export function updateInvoice(
  db: Db,
  id: string,
  patch: {
    status?: InvoiceStatus;
    finalized_at?: Date;
    voided_at?: Date;
    paid_at?: Date;
    uncollectible_at?: Date;
    collection_failed_at?: Date | null;
    next_collection_at?: Date | null;
    dunning_retries?: number;
    amount_credited?: string;
    amount_from_balance?: string;
  },
): Promise<InvoiceRow> {
  return db
    .updateTable('invoices')
    .set({ ...patch, updated_at: sql`now()` })
    .where('id', '=', id)
    .returning(columns)
    .executeTakeFirstOrThrow();
}

/** A draft's taxes and totals, taxed again (its lines and subtotal stay). */
export function retaxDraft(
  db: Db,
  id: string,
  amounts: { taxes: string; tax_total: string; total: string },
): Promise<InvoiceRow> {
  return db
    .updateTable('invoices')
    .set({ ...amounts, updated_at: sql`now()` })
    .where('id', '=', id)
    .where('status', '=', 'draft')
    .returning(columns)
    .executeTakeFirstOrThrow();
}

export interface TaxReportRow {
  month: string;
  code: string;
  region: string;
  taxable_amount: string;
  tax_amount: string;
  invoice_count: string;
  credit_note_count: string;
  ending_credit_count: string;
}

/**
 * Each tax code's totals per month: the issued invoices' snapshots by invoice date, less the
 * credit notes' by day of issue, less the tax the ending credits of subscriptions gave back to the
 * customer's balance (their entries' lines, of invoices still issued and not credited in full) by
 * day of the entry.
 */
export async function taxReport(db: Db, from: string, to: string): Promise<TaxReportRow[]> {
  const { rows } = await sql<TaxReportRow>`
    with entries as (
      select i.invoice_date as day, t, 'invoice' as source, i.id
      from invoices i, jsonb_array_elements(i.taxes) t
      where i.status in ('open', 'paid', 'uncollectible')
        and i.invoice_date >= ${from}::date and i.invoice_date < ${to}::date
      union all
      select (c.issued_at at time zone 'UTC')::date, t, 'credit_note', c.id
      from credit_notes c, jsonb_array_elements(c.taxes) t
      where c.issued_at >= ${from}::date at time zone 'UTC' and c.issued_at < ${to}::date at time zone 'UTC'
      union all
      -- While the invoice that charged the tax stands: a void, or credit notes of all of it (which
      -- net its whole tax themselves), take both out.
      select (b.created_at at time zone 'UTC')::date, t, 'ending_credit', b.id
      from customer_balance_transactions b
      cross join jsonb_array_elements(b.taxes) t
      join invoices paid on paid.id = (t->>'invoice_id')::uuid
      where b.type = 'subscription_ended' and b.taxes is not null
        and paid.status in ('open', 'paid', 'uncollectible') and paid.amount_credited < paid.total
        and b.created_at >= ${from}::date at time zone 'UTC' and b.created_at < ${to}::date at time zone 'UTC'
    )
    select to_char(date_trunc('month', day::timestamp), 'YYYY-MM') as month,
           t->>'code' as code, t->>'region' as region,
           sum(case when source = 'invoice' then 1 else -1 end * (t->>'taxable_amount')::numeric)::text
             as taxable_amount,
           sum(case when source = 'invoice' then 1 else -1 end * (t->>'amount')::numeric)::text as tax_amount,
           count(distinct id) filter (where source = 'invoice')::text as invoice_count,
           count(distinct id) filter (where source = 'credit_note')::text as credit_note_count,
           -- An ending credit of days two invoices billed has a line of each.
           count(distinct id) filter (where source = 'ending_credit')::text as ending_credit_count
    from entries
    group by 1, 2, 3
    order by 1, 2, 3`.execute(db);
  return rows;
}
