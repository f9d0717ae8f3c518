import { sql } from 'kysely';
import type { Db } from '../database/connection.js';
import type { CreditNoteRow, CreditNoteView, RefundTo } from '../database/schema.js';

const columns = [
  'id',
  'number',
  'invoice_id',
  'subscription_id',
  'user_id',
  'reason',
  'lines',
  'subtotal',
  'taxes',
  'tax_total',
  'total',
  'refund_to',
  'refund_amount',
  'credit_amount',
  'issued_at',
  'created_at',
] as const;

/** An invoice's credit notes, oldest first, each with its refund's id. */
export function listCreditNotes(db: Db, invoiceId: string): Promise<CreditNoteView[]> {
  return db
    .selectFrom('credit_notes as c')
    .select(columns.map((column) => `c.${column}` as const))
    .select((eb) =>
      eb.selectFrom('refunds as r').select('r.id').whereRef('r.credit_note_id', '=', 'c.id').as('refund_id'),
    )
    .where('c.invoice_id', '=', invoiceId)
    .orderBy('c.number')
    .execute();
}

/** The tenant's next credit note number, under the counter row's lock until the transaction ends. */
export async function nextCreditNoteNumber(db: Db): Promise<number> {
  const { rows } = await sql<{ last_number: string }>`
    insert into credit_note_counters as c (last_number) values (1)
    on conflict (tenant_id) do update set last_number = c.last_number + 1
    returning last_number`.execute(db);
  return Number(rows[0]!.last_number);
}

export interface NewCreditNote {
  number: number;
  invoice_id: string;
  subscription_id: string;
  user_id: string;
  reason: string;
  lines: unknown;
  subtotal: string;
  taxes: unknown;
  tax_total: string;
  total: string;
  refund_to: RefundTo | null;
  refund_amount: string;
  credit_amount: string;
  issued_at: Date;
}

export function insertCreditNote(db: Db, values: NewCreditNote): Promise<CreditNoteRow> {
  return db
    .insertInto('credit_notes')
    .values({
      ...values,
      number: String(values.number),
      lines: JSON.stringify(values.lines),
      taxes: JSON.stringify(values.taxes),
    })
    .returning(columns)
    .executeTakeFirstOrThrow();
}

/**
 * What is left to give back of a subscription's invoices, before tax: the subtotals of those paid
 * (credits later invoices netted are in them already; an open one was not paid, whatever it
 * bills) less their credit notes, less the credits its end settled to the customer's balance.
 * Never more than that goes back.
 */
export async function leftToGiveBack(db: Db, subscriptionId: string): Promise<string> {
  const { rows } = await sql<{ left: string }>`
    select (
      (select coalesce(sum(i.subtotal), 0) from invoices i
        where i.tenant_id = current_setting('app.tenant_id')::uuid and i.subscription_id = ${subscriptionId}::uuid
          and i.status = 'paid' and i.kind <> 'purchase')
      - (select coalesce(sum(n.subtotal), 0) from credit_notes n
        join invoices i on i.tenant_id = n.tenant_id and i.id = n.invoice_id and i.status = 'paid'
        where n.tenant_id = current_setting('app.tenant_id')::uuid and n.subscription_id = ${subscriptionId}::uuid)
      - (select coalesce(sum(-item.amount), 0) from invoice_items item
        where item.tenant_id = current_setting('app.tenant_id')::uuid and item.subscription_id = ${subscriptionId}::uuid
          and item.balance_transaction_id is not null)
    )::text as left`.execute(db);
  return rows[0]!.left;
}

/**
 * The most its end may give back to the customer's balance, before tax: what a subscription's
 * invoices billed (paid, or still owed: the balance then pays them) less their credit notes, less
 * the credits its end settled before; and the credits of days before its first period invoice
 * (an imported subscription's period, paid to the system it came from), pending or netted since by
 * an invoice here (invariants3 #3: such a credit paid a period's invoice, 0.00, whose days a pause
 * then credited), up to the price it was imported at, what that system was paid (invariants3 #1:
 * after a change with `none`, 69.68 was credited of 19.99 paid there).
 */
export async function leftForEndingCredit(db: Db, subscriptionId: string): Promise<string> {
  const { rows } = await sql<{ left: string }>`
    with billed as (
      select i.id, i.subtotal from invoices i
      where i.tenant_id = current_setting('app.tenant_id')::uuid and i.subscription_id = ${subscriptionId}::uuid
        and i.kind <> 'purchase' and i.status in ('paid', 'open', 'uncollectible')
    )
    select (
      (select coalesce(sum(subtotal), 0) from billed)
      - (select coalesce(sum(n.subtotal), 0) from credit_notes n join billed on billed.id = n.invoice_id
        where n.tenant_id = current_setting('app.tenant_id')::uuid)
      - (select coalesce(sum(-item.amount), 0) from invoice_items item
        where item.tenant_id = current_setting('app.tenant_id')::uuid and item.subscription_id = ${subscriptionId}::uuid
          and item.balance_transaction_id is not null)
      + least(
        (select coalesce(sum(-item.amount), 0) from invoice_items item
          where item.tenant_id = current_setting('app.tenant_id')::uuid and item.subscription_id = ${subscriptionId}::uuid
            and item.amount < 0
            and (item.period_end <= coalesce((select min(i.period_start) from invoices i
              where i.tenant_id = current_setting('app.tenant_id')::uuid and i.subscription_id = ${subscriptionId}::uuid
                and i.kind = 'period'), 'infinity')
              -- Or of the imported period's days, which a start date moved back leaves partly
              -- after the new schedule's first invoice (invariants5 #1).
              or item.period_end <= (select (e.data ->> 'billed_until')::date from events e
                where e.tenant_id = current_setting('app.tenant_id')::uuid and e.resource_id = ${subscriptionId}::uuid
                  and e.type = 'subscription.created'
                  and (e.data ->> 'billed_until')::date > (e.occurred_at at time zone 'UTC')::date))),
        -- What the old system was paid for that period: the price the subscription was created at.
        (select coalesce(max((e.data ->> 'plan_cost')::numeric), 0) from events e
          where e.tenant_id = current_setting('app.tenant_id')::uuid and e.resource_id = ${subscriptionId}::uuid
            and e.type = 'subscription.created'))
    )::text as left`.execute(db);
  return rows[0]!.left;
}
