import { sql } from 'kysely';
import type { Db } from '../database/connection.js';
import type { PaymentRail, RefundRow, RefundStatus } from '../database/schema.js';

const columns = [
  'id',
  'credit_note_id',
  'invoice_id',
  'payment_id',
  'subscription_id',
  'user_id',
  'amount',
  'rail',
  'payment_method',
  'status',
  'failure_reason',
  'submit_after',
  'submitted_at',
  'settles_at',
  'settled_at',
  'gateway_reference',
  'version',
  'created_at',
  'updated_at',
] as const;

export interface RefundFilter {
  invoiceId: string;
  limit: number;
  after?: string | undefined;
}

/** An invoice's refunds, newest first; limit + 1 rows so the caller can tell whether another page follows. */
export function listRefunds(db: Db, filter: RefundFilter): Promise<RefundRow[]> {
  let query = db
    .selectFrom('refunds')
    .select(columns)
    .where('invoice_id', '=', filter.invoiceId)
    .orderBy('id', 'desc')
    .limit(filter.limit + 1);
  if (filter.after) query = query.where('id', '<', filter.after);
  return query.execute();
}

export function findRefund(db: Db, id: string): Promise<RefundRow | undefined> {
  return db.selectFrom('refunds').select(columns).where('id', '=', id).executeTakeFirst();
}

export function lockRefund(db: Db, id: string): Promise<RefundRow | undefined> {
  return db.selectFrom('refunds').select(columns).where('id', '=', id).forUpdate().executeTakeFirst();
}

/**
 * What the refunds of an invoice (of its one successful payment) add up to, whatever their
 * status: a failed one's amount went to the customer's balance instead.
 */
export async function refundedOfInvoice(db: Db, invoiceId: string): Promise<string> {
  const row = await db
    .selectFrom('refunds')
    .select(sql<string>`coalesce(sum(amount), 0)::text`.as('refunded'))
    .where('invoice_id', '=', invoiceId)
    .executeTakeFirstOrThrow();
  return row.refunded;
}

export interface NewRefund {
  credit_note_id: string;
  invoice_id: string;
  payment_id: string;
  subscription_id: string;
  user_id: string;
  amount: string;
  rail: PaymentRail;
  payment_method: string;
  submit_after: Date;
}

export function insertRefund(db: Db, values: NewRefund): Promise<RefundRow> {
  return db.insertInto('refunds').values(values).returning(columns).executeTakeFirstOrThrow();
}

/** Run on a locked refund; the trigger refuses what a refund may not change. */
export function updateRefund(
  db: Db,
  id: string,
  patch: {
    status?: RefundStatus;
    failure_reason?: string;
    submitted_at?: Date;
    settles_at?: Date | null;
    settled_at?: Date;
    gateway_reference?: string;
  },
): Promise<RefundRow> {
  return db
    .updateTable('refunds')
    .set({ ...patch, updated_at: sql`now()` })
    .where('id', '=', id)
    .returning(columns)
    .executeTakeFirstOrThrow();
}
