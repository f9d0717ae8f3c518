import { sql } from 'kysely';
import type { Db } from '../database/connection.js';
import type { InvoiceItemKind, InvoiceItemRow, InvoiceRow } from '../database/schema.js';

const columns = [
  'id',
  'subscription_id',
  'kind',
  'description',
  'amount',
  'period_start',
  'period_end',
  'invoice_id',
  'balance_transaction_id',
  'plan_id',
  'created_at',
] as const;

export interface NewInvoiceItem {
  subscription_id: string;
  kind: InvoiceItemKind;
  description: string;
  amount: string;
  period_start: string;
  period_end: string;
  /** The plan a change's charge is for (a coupon for some plans reduces theirs only). */
  plan_id?: string | null;
}

export function insertInvoiceItems(db: Db, items: readonly NewInvoiceItem[]): Promise<InvoiceItemRow[]> {
  if (items.length === 0) return Promise.resolve([]);
  return db.insertInto('invoice_items').values(items).returning(columns).execute();
}

/**
 * A subscription's items waiting for an invoice, oldest first, a change's credit before its
 * charge (its lock serializes their use).
 */
export function pendingInvoiceItems(db: Db, subscriptionId: string): Promise<InvoiceItemRow[]> {
  return db
    .selectFrom('invoice_items')
    .select(columns)
    .where('subscription_id', '=', subscriptionId)
    .where('invoice_id', 'is', null)
    .where('balance_transaction_id', 'is', null)
    .orderBy('created_at')
    .orderBy('kind', 'desc')
    .orderBy('id')
    .execute();
}

/** Whether a change, a pause or a resume in the period [start, end) made proration items. */
export async function hasProrationsIn(
  db: Db,
  subscriptionId: string,
  period: { start: string; end: string },
): Promise<boolean> {
  const found = await db
    .selectFrom('invoice_items')
    .select('id')
    .where('subscription_id', '=', subscriptionId)
    .where('kind', 'in', ['proration_credit', 'proration_charge'])
    .where('period_start', '>=', period.start)
    .where('period_start', '<', period.end)
    .where('period_end', '<=', period.end)
    .limit(1)
    .executeTakeFirst();
  return found !== undefined;
}

/**
 * The proration items of the period [start, end) that invoice `invoiceId` billed: a change's
 * credit and charge, a pause's credit, a resume's charge, netted on that period's invoice.
 */
export function prorationItemsBilledBy(
  db: Db,
  invoiceId: string,
  period: { start: string; end: string },
): Promise<InvoiceItemRow[]> {
  return db
    .selectFrom('invoice_items')
    .select(columns)
    .where('invoice_id', '=', invoiceId)
    .where('kind', 'in', ['proration_credit', 'proration_charge'])
    .where('period_start', '>=', period.start)
    .where('period_start', '<', period.end)
    .where('period_end', '<=', period.end)
    .orderBy('created_at')
    .orderBy('kind', 'desc')
    .orderBy('id')
    .execute();
}

/**
 * Whether a change or a pause in the period [start, end) made proration items before the period's
 * invoice `invoiceId` was voided, in the event log's order (each item's `invoice_item.created`
 * before its `invoice.voided`): they priced the period's days by that invoice.
 */
export async function proratedBeforeVoid(
  db: Db,
  subscriptionId: string,
  period: { start: string; end: string },
  invoiceId: string,
): Promise<boolean> {
  const found = await db
    .selectFrom('invoice_items as item')
    .innerJoin('events as made', (join) =>
      join
        .onRef('made.resource_id', '=', 'item.id')
        .on('made.resource_type', '=', 'invoice_item')
        .on('made.type', '=', 'invoice_item.created'),
    )
    .innerJoin('events as voided', (join) =>
      join
        .on('voided.resource_id', '=', invoiceId)
        .on('voided.resource_type', '=', 'invoice')
        .on('voided.type', '=', 'invoice.voided'),
    )
    .select('item.id')
    .where('item.subscription_id', '=', subscriptionId)
    .where('item.kind', 'in', ['proration_credit', 'proration_charge'])
    // Its days in the period: from a day in it, to its end or (ended early) before.
    .where('item.period_start', '>=', period.start)
    .where('item.period_start', '<', period.end)
    .where('item.period_end', '<=', period.end)
    .where(sql<boolean>`(made.xid, made.seq) < (voided.xid, voided.seq)`)
    .limit(1)
    .executeTakeFirst();
  return found !== undefined;
}

/**
 * The proration items of the period [start, end): those of the changes, pauses and resumes in it
 * (each for the days from its own to the period's end), pending or billed, oldest first.
 */
export function prorationItemsIn(
  db: Db,
  subscriptionId: string,
  period: { start: string; end: string },
): Promise<InvoiceItemRow[]> {
  return db
    .selectFrom('invoice_items')
    .select(columns)
    .where('subscription_id', '=', subscriptionId)
    .where('kind', 'in', ['proration_credit', 'proration_charge'])
    .where('period_start', '>=', period.start)
    .where('period_end', '=', period.end)
    .orderBy('created_at')
    .orderBy('id')
    .execute();
}

/** Billed by an invoice: from now on final (a trigger). */
export async function billInvoiceItems(
  db: Db,
  ids: readonly string[],
  invoiceId: string,
): Promise<InvoiceItemRow[]> {
  if (ids.length === 0) return [];
  return db
    .updateTable('invoice_items')
    .set({ invoice_id: invoiceId })
    .where('id', 'in', ids)
    .where('invoice_id', 'is', null)
    .returning(columns)
    .execute();
}

/**
 * The items a draft billed, pending again once it is voided (it billed no one): the one change
 * the trigger lets through on a billed item, while its invoice is a void draft.
 */
export function unbillInvoiceItems(db: Db, invoiceId: string): Promise<InvoiceItemRow[]> {
  return db
    .updateTable('invoice_items')
    .set({ invoice_id: null })
    .where('invoice_id', '=', invoiceId)
    .returning(columns)
    .execute();
}

/** Pending items settled by a customer balance entry (the credits left of an ended subscription). */
export async function settleInvoiceItems(
  db: Db,
  ids: readonly string[],
  balanceTransactionId: string,
): Promise<InvoiceItemRow[]> {
  if (ids.length === 0) return [];
  return db
    .updateTable('invoice_items')
    .set({ balance_transaction_id: balanceTransactionId })
    .where('id', 'in', ids)
    .where('invoice_id', 'is', null)
    .returning(columns)
    .execute();
}

/**
 * A pending item changed: a charge ended early by a later change in its period, a credit priced
 * again after a credit note or a void.
 */
export function updatePendingItem(
  db: Db,
  id: string,
  values: { amount: string; description: string; period_end?: string },
): Promise<InvoiceItemRow | undefined> {
  return db
    .updateTable('invoice_items')
    .set(values)
    .where('id', '=', id)
    .where('invoice_id', 'is', null)
    .where('balance_transaction_id', 'is', null)
    .returning(columns)
    .executeTakeFirst();
}

/** A pending charge undone the day it was made: never billed, it goes. */
export function deletePendingItem(db: Db, id: string): Promise<InvoiceItemRow | undefined> {
  return db
    .deleteFrom('invoice_items')
    .where('id', '=', id)
    .where('invoice_id', 'is', null)
    .where('balance_transaction_id', 'is', null)
    .returning(columns)
    .executeTakeFirst();
}

/** A pending item's amount, when an invoice applies only part of a credit. */
export async function reducePendingItem(db: Db, id: string, amount: string): Promise<void> {
  await db
    .updateTable('invoice_items')
    .set({ amount })
    .where('id', '=', id)
    .where('invoice_id', 'is', null)
    .execute();
}

export interface InvoiceItemFilter {
  subscriptionId: string;
  limit: number;
  after?: string | undefined;
  pending?: boolean | undefined;
}

/** Newest first; limit + 1 rows so the caller can tell whether another page follows. */
export function listInvoiceItems(db: Db, filter: InvoiceItemFilter): Promise<InvoiceItemRow[]> {
  let query = db
    .selectFrom('invoice_items')
    .select(columns)
    .where('subscription_id', '=', filter.subscriptionId)
    .orderBy('id', 'desc')
    .limit(filter.limit + 1);
  if (filter.after) query = query.where('id', '<', filter.after);
  if (filter.pending === true)
    query = query.where('invoice_id', 'is', null).where('balance_transaction_id', 'is', null);
  if (filter.pending === false)
    query = query.where((eb) =>
      eb.or([eb('invoice_id', 'is not', null), eb('balance_transaction_id', 'is not', null)]),
    );
  return query.execute();
}

/**
 * The credits of a subscription's period (days between start and end) that went to the customer
 * or are on their way: billed by an invoice not voided (other than `except`, the period's own),
 * settled by the customer's balance, or pending as the rest of a credit billed in part.
 */
export function creditsGivenIn(
  db: Db,
  subscriptionId: string,
  period: { start: string; end: string },
  except: string,
  carriedForward: string,
): Promise<
  Array<
    Pick<InvoiceItemRow, 'description' | 'amount'> & {
      /** The invoice that billed it (none: carried forward, or settled by the balance). */
      billed: Pick<
        InvoiceRow,
        'id' | 'subscription_id' | 'kind' | 'lines' | 'period_start' | 'period_end' | 'subtotal'
      > | null;
      /** What the credit notes of that invoice took of its subtotal. */
      billed_credited: string;
    }
  >
> {
  return db
    .selectFrom('invoice_items as item')
    .leftJoin('invoices as billed', 'billed.id', 'item.invoice_id')
    .select([
      'item.description',
      'item.amount',
      sql<InvoiceRow | null>`case when billed.id is null then null else json_build_object(
        'id', billed.id, 'subscription_id', billed.subscription_id, 'kind', billed.kind, 'lines', billed.lines, 'period_start', billed.period_start,
        'period_end', billed.period_end, 'subtotal', billed.subtotal::text) end`.as('billed'),
      sql<string>`(select coalesce(sum(note.subtotal), 0)::text from credit_notes note
        where note.invoice_id = billed.id)`.as('billed_credited'),
    ])
    .where('item.subscription_id', '=', subscriptionId)
    .where('item.kind', '=', 'proration_credit')
    .where('item.period_start', '>=', period.start)
    .where('item.period_end', '<=', period.end)
    .where((eb) =>
      eb.or([
        eb.and([eb('item.invoice_id', '<>', except), eb('billed.status', '<>', 'void')]),
        eb('item.balance_transaction_id', 'is not', null),
        eb.and([eb('item.invoice_id', 'is', null), eb('item.description', 'like', `%${carriedForward}`)]),
      ]),
    )
    .orderBy('item.id')
    .execute();
}
