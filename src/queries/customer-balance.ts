import { sql } from 'kysely';
import type { Db } from '../database/connection.js';
import type { BalanceTransactionRow, BalanceTransactionType } from '../database/schema.js';

const columns = [
  'id',
  'user_id',
  'type',
  'amount',
  'balance_after',
  'invoice_id',
  'credit_note_id',
  'refund_id',
  'created_at',
] as const;

/**
 * The customer's balance, under the user's row lock until the transaction ends (the last lock of
 * a money decision). FOR NO KEY UPDATE: a subscription being created for the user still may.
 */
export async function lockBalance(db: Db, userId: string): Promise<string | undefined> {
  const row = await db
    .selectFrom('users')
    .select('balance')
    .where('id', '=', userId)
    .forNoKeyUpdate()
    .executeTakeFirst();
  return row?.balance;
}

export interface NewBalanceTransaction {
  user_id: string;
  type: BalanceTransactionType;
  /** Signed: more than zero credits the customer, less than zero is applied to an invoice. */
  amount: string;
  invoice_id?: string | null;
  credit_note_id?: string | null;
  refund_id?: string | null;
  /** subscription_ended only: the tax it gives back, one line per rate (as a credit note's). */
  taxes?: unknown[];
  /** subscription_ended only: each invoice's share of it, with and without its tax (endingCreditOfInvoice). */
  invoice_shares?: Array<{ invoice_id: string; amount: string; before_tax: string }>;
  created_at: Date;
}

/**
 * An entry of the ledger and the balance it leaves, together: the user's balance moves by the
 * amount (its version with it: the user shows its balance) and the entry records the balance after.
 * On a balance locked by lockBalance; PostgreSQL refuses a balance below zero.
 */
export async function addBalanceTransaction(
  db: Db,
  entry: NewBalanceTransaction,
): Promise<BalanceTransactionRow> {
  const { rows } = await sql<BalanceTransactionRow>`
    with moved as (
      update users set balance = balance + ${entry.amount}::numeric, updated_at = now()
      where id = ${entry.user_id}
      returning balance
    )
    insert into customer_balance_transactions
      (user_id, type, amount, balance_after, invoice_id, credit_note_id, refund_id, taxes, invoice_shares,
       created_at)
    select ${entry.user_id}, ${entry.type}, ${entry.amount}::numeric, moved.balance,
      ${entry.invoice_id ?? null}::uuid, ${entry.credit_note_id ?? null}::uuid, ${entry.refund_id ?? null}::uuid,
      ${entry.taxes === undefined ? null : JSON.stringify(entry.taxes)}::jsonb,
      ${entry.invoice_shares === undefined ? null : JSON.stringify(entry.invoice_shares)}::jsonb,
      ${entry.created_at}::timestamptz
    from moved
    returning ${sql.join(columns.map((c) => sql.ref(c)))}`.execute(db);
  const row = rows[0];
  if (!row) throw new Error(`no user ${entry.user_id} to credit`);
  return row;
}

export interface BalanceTransactionFilter {
  userId: string;
  limit: number;
  after?: string | undefined;
}

/** A customer's entries, newest first; limit + 1 rows so the caller can tell whether another page follows. */
export function listBalanceTransactions(
  db: Db,
  filter: BalanceTransactionFilter,
): Promise<BalanceTransactionRow[]> {
  let query = db
    .selectFrom('customer_balance_transactions')
    .select(columns)
    .where('user_id', '=', filter.userId)
    .orderBy('id', 'desc')
    .limit(filter.limit + 1);
  if (filter.after) query = query.where('id', '<', filter.after);
  return query.execute();
}

/**
 * What a subscription's end left in the balance for the days an invoice billed: of each
 * `subscription_ended` entry, the invoice's share as the entry recorded it (`credit`, with its
 * tax; `before_tax`, without). An entry made before it recorded shares (invoice_shares null)
 * counts in `credit` its share of the items of the invoice's days, between start and end (the
 * entry carries their tax too, so the share is of its amount), and nothing in `before_tax`.
 */
export async function endingCreditOfInvoice(
  db: Db,
  subscriptionId: string,
  invoice: { id: string; period_start: string; period_end: string },
): Promise<{ credit: string; before_tax: string }> {
  const { rows } = await sql<{ credit: string; before_tax: string }>`
    select coalesce(sum(case when entry.invoice_shares is not null then mine.credit
        else round(entry.amount * share.days / share.whole, 2) end), 0)::text as credit,
      coalesce(sum(mine.before_tax), 0)::text as before_tax
    from (
      select balance_transaction_id,
        sum(amount) filter (where period_start < ${invoice.period_end}::date
          and period_end > ${invoice.period_start}::date) as days,
        sum(amount) as whole
      from invoice_items
      where subscription_id = ${subscriptionId} and balance_transaction_id is not null
      group by balance_transaction_id
    ) share
    join customer_balance_transactions entry on entry.id = share.balance_transaction_id
    left join lateral (
      select coalesce(sum((s.share ->> 'amount')::numeric), 0) as credit,
        coalesce(sum((s.share ->> 'before_tax')::numeric), 0) as before_tax
      from jsonb_array_elements(entry.invoice_shares) as s (share)
      where s.share ->> 'invoice_id' = ${invoice.id}::text
    ) mine on entry.invoice_shares is not null
    where entry.type = 'subscription_ended' and share.whole <> 0
      and (entry.invoice_shares is not null or share.days is not null)`.execute(db);
  return rows[0]!;
}
