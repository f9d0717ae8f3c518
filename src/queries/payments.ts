import { sql } from 'kysely';
import type { Db } from '../database/connection.js';
import type { PaymentRail, PaymentRow, PaymentStatus } from '../database/schema.js';

const columns = [
  'id',
  'invoice_id',
  'subscription_id',
  'amount',
  'rail',
  'payment_method',
  'status',
  'failure_reason',
  'initiated_by',
  'attempt',
  'submit_after',
  'submit_attempts',
  'submitted_at',
  'settles_at',
  'settled_at',
  'gateway_reference',
  'version',
  'created_at',
  'updated_at',
] as const;

export interface PaymentFilter {
  limit: number;
  after?: string | undefined;
  invoiceId?: string | undefined;
  subscriptionId?: string | undefined;
  statuses?: readonly PaymentStatus[] | undefined;
}

export function listPayments(db: Db, filter: PaymentFilter): Promise<PaymentRow[]> {
  let query = db
    .selectFrom('payments')
    .select(columns)
    .orderBy('id', 'desc')
    .limit(filter.limit + 1);
  if (filter.after) query = query.where('id', '<', filter.after);
  if (filter.invoiceId) query = query.where('invoice_id', '=', filter.invoiceId);
  if (filter.subscriptionId) query = query.where('subscription_id', '=', filter.subscriptionId);
  if (filter.statuses?.length) query = query.where('status', 'in', filter.statuses);
  return query.execute();
}

export function findPayment(db: Db, id: string): Promise<PaymentRow | undefined> {
  return db.selectFrom('payments').select(columns).where('id', '=', id).executeTakeFirst();
}

export function lockPayment(db: Db, id: string): Promise<PaymentRow | undefined> {
  return db.selectFrom('payments').select(columns).where('id', '=', id).forUpdate().executeTakeFirst();
}

/** The invoice's payment still pending or processing, if any (there is at most one). */
export function findPaymentInFlight(
  db: Db,
  invoiceId: string,
): Promise<Pick<PaymentRow, 'id' | 'status'> | undefined> {
  return db
    .selectFrom('payments')
    .select(['id', 'status'])
    .where('invoice_id', '=', invoiceId)
    .where('status', 'in', ['pending', 'processing'])
    .executeTakeFirst();
}

/** The invoice's successful payment, if any (there is at most one: a unique index). */
export function findSucceededPayment(db: Db, invoiceId: string): Promise<PaymentRow | undefined> {
  return db
    .selectFrom('payments')
    .select(columns)
    .where('invoice_id', '=', invoiceId)
    .where('status', '=', 'succeeded')
    .executeTakeFirst();
}

/** How many payments the invoice had (the next attempt's number is one more). */
export async function countPayments(db: Db, invoiceId: string): Promise<number> {
  const row = await db
    .selectFrom('payments')
    .select((eb) => eb.fn.countAll<string>().as('count'))
    .where('invoice_id', '=', invoiceId)
    .executeTakeFirstOrThrow();
  return Number(row.count);
}

export interface NewPayment {
  invoice_id: string;
  subscription_id: string;
  amount: string;
  rail: PaymentRail;
  payment_method: string;
  initiated_by: 'api' | 'renewal' | 'dunning' | 'purchase';
  attempt: number;
  submit_after: Date;
}

/** Undefined when the invoice already has a payment in flight or a successful one (unique indexes). */
export function insertPayment(db: Db, values: NewPayment): Promise<PaymentRow | undefined> {
  return (
    db
      .insertInto('payments')
      .values(values)
      // The predicate is literal so PostgreSQL can match it to the partial unique index.
      .onConflict((oc) =>
        oc
          .columns(['tenant_id', 'invoice_id'])
          .where(sql<boolean>`status in ('pending', 'processing')`)
          .doNothing(),
      )
      .returning(columns)
      .executeTakeFirst()
  );
}

export function updatePayment(
  db: Db,
  id: string,
  patch: {
    status?: PaymentStatus;
    failure_reason?: string;
    submit_after?: Date;
    submit_attempts?: number;
    submitted_at?: Date;
    settles_at?: Date | null;
    settled_at?: Date;
    gateway_reference?: string;
  },
): Promise<PaymentRow> {
  return db
    .updateTable('payments')
    .set({ ...patch, updated_at: sql`now()` })
    .where('id', '=', id)
    .returning(columns)
    .executeTakeFirstOrThrow();
}
