import { sql } from 'kysely';
import type { Db } from '../database/connection.js';
import type { Aggregation, BillableMetricRow } from '../database/schema.js';

export const billableMetricColumns = [
  'id',
  'code',
  'name',
  'aggregation',
  'field',
  'group_by',
  'filters',
  'archived_at',
  'version',
  'created_at',
  'updated_at',
] as const;

export interface BillableMetricFilter {
  limit: number;
  after?: string | undefined;
  code?: string | undefined;
  archived?: boolean | undefined;
}

export function listBillableMetrics(db: Db, filter: BillableMetricFilter): Promise<BillableMetricRow[]> {
  let query = db
    .selectFrom('billable_metrics')
    .select(billableMetricColumns)
    .orderBy('id', 'desc')
    .limit(filter.limit + 1);
  if (filter.after) query = query.where('id', '<', filter.after);
  if (filter.code !== undefined) query = query.where('code', '=', filter.code);
  if (filter.archived !== undefined)
    query = query.where('archived_at', filter.archived ? 'is not' : 'is', null);
  return query.execute();
}

export function findBillableMetric(db: Db, id: string): Promise<BillableMetricRow | undefined> {
  return db
    .selectFrom('billable_metrics')
    .select(billableMetricColumns)
    .where('id', '=', id)
    .executeTakeFirst();
}

/** The metrics with these codes (archived ones included). */
export async function findBillableMetricsByCode(
  db: Db,
  codes: readonly string[],
): Promise<BillableMetricRow[]> {
  if (codes.length === 0) return [];
  return db
    .selectFrom('billable_metrics')
    .select(billableMetricColumns)
    .where('code', '=', sql<string>`any(${[...codes]}::text[])`)
    .execute();
}

/**
 * The metrics with these codes, each kept from a delete until the transaction ends: a plan's
 * charge refers to its metric inside jsonb, with no foreign key to wait on. A delete that
 * committed meanwhile leaves its code out (retest9 #1).
 */
export async function shareBillableMetricsByCode(
  db: Db,
  codes: readonly string[],
): Promise<BillableMetricRow[]> {
  if (codes.length === 0) return [];
  return db
    .selectFrom('billable_metrics')
    .select(billableMetricColumns)
    .where('code', '=', sql<string>`any(${[...codes]}::text[])`)
    .forKeyShare()
    .execute();
}

/** The metric, locked until the transaction ends: what a change starts from. */
export function lockBillableMetric(db: Db, id: string): Promise<BillableMetricRow | undefined> {
  return db
    .selectFrom('billable_metrics')
    .select(billableMetricColumns)
    .where('id', '=', id)
    .forUpdate()
    .executeTakeFirst();
}

export interface NewBillableMetric {
  code: string;
  name: string;
  aggregation: Aggregation;
  field: string | null;
  group_by: string | null;
  filters: Record<string, string[]>;
}

export function insertBillableMetric(db: Db, values: NewBillableMetric): Promise<BillableMetricRow> {
  return db
    .insertInto('billable_metrics')
    .values({ ...values, filters: JSON.stringify(values.filters) })
    .returning(billableMetricColumns)
    .executeTakeFirstOrThrow();
}

/**
 * Run on a locked row (lockBillableMetric): the version trigger bumps `version`. Archived now:
 * at the transaction's time, the same as updated_at.
 */
export function updateBillableMetric(
  db: Db,
  id: string,
  { archived, ...patch }: { name?: string; archived?: boolean },
): Promise<BillableMetricRow> {
  return db
    .updateTable('billable_metrics')
    .set({
      ...patch,
      ...(archived === undefined ? {} : { archived_at: archived ? sql<Date>`now()` : null }),
      updated_at: sql`now()`,
    })
    .where('id', '=', id)
    .returning(billableMetricColumns)
    .executeTakeFirstOrThrow();
}

/** Whether any event or any plan's usage charge refers to the metric. */
export async function billableMetricInUse(db: Db, id: string): Promise<boolean> {
  const { rows } = await sql<{ used: boolean }>`
    select exists (select from usage_events where billable_metric_id = ${id}::uuid)
        or exists (select from charged_billable_metrics where billable_metric_id = ${id}::uuid)
        or exists (select from plans where usage_charges @> ${JSON.stringify([{ billable_metric_id: id }])}::jsonb)
        or exists (select from wallet_holds where billable_metric_id = ${id}::uuid)
       as used`.execute(db);
  return rows[0]!.used;
}

/**
 * Records that a plan charges these metrics: for good, as the invoices of a charge name its
 * metric after the plan drops it (a delete of the metric then fails on the foreign key).
 */
export async function noteChargedMetrics(db: Db, ids: readonly string[]): Promise<void> {
  if (ids.length === 0) return;
  await sql`insert into charged_billable_metrics (billable_metric_id)
    select unnest(${[...new Set(ids)]}::uuid[]) on conflict do nothing`.execute(db);
}

export function deleteBillableMetric(db: Db, id: string): Promise<BillableMetricRow | undefined> {
  return db
    .deleteFrom('billable_metrics')
    .where('id', '=', id)
    .returning(billableMetricColumns)
    .executeTakeFirst();
}
