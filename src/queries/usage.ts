// Usage events and the totals kept as they are recorded (db/migrations/202612030004_usage.ts).
// Batches travel as arrays (unnest): one statement per table, whatever the batch size.
import { type RawBuilder, sql } from 'kysely';
import type { Db } from '../database/connection.js';
import type { UsageEventRow } from '../database/schema.js';

export const usageEventColumns = [
  'id',
  'event_id',
  'user_id',
  'subscription_id',
  'billable_metric_id',
  'timestamp',
  'properties',
  'cost',
  'value',
  'dimension',
  'counted',
  'period_start',
  'received_at',
] as const;

const selectEvents = sql.join(usageEventColumns.map((c) => sql.ref(`e.${c}`)));

export interface NewUsageEvent {
  event_id: string;
  user_id: string;
  subscription_id: string | null;
  billable_metric_id: string;
  timestamp: Date;
  properties: string;
  cost: string | null;
  value: string | null;
  dimension: string | null;
  counted: boolean;
  period_start: string | null;
}

/**
 * Inserts the events whose event_id the tenant has not recorded yet, in event_id order (so that
 * two batches sharing ids wait for each other in one order, never in a cycle). Returns those
 * inserted; an event_id recorded before (or by a concurrent transaction that commits) is skipped.
 */
export async function insertNewEvents(
  db: Db,
  events: readonly NewUsageEvent[],
): Promise<Array<{ event_id: string; id: string; received_at: Date }>> {
  if (events.length === 0) return [];
  const sorted = [...events].sort((a, b) => (a.event_id < b.event_id ? -1 : a.event_id > b.event_id ? 1 : 0));
  const col = <K extends keyof NewUsageEvent>(k: K) => sorted.map((e) => e[k]);
  // Only what the database made: the caller has the rest (rows of 13 columns cost to parse).
  const { rows } = await sql<{ event_id: string; id: string; received_at: Date }>`
    insert into usage_events as e (event_id, user_id, subscription_id, billable_metric_id, timestamp,
      properties, cost, value, dimension, counted, period_start)
    select a, b, c, d, t, p, co, v, di, cn, ps
    from unnest(${col('event_id')}::text[], ${col('user_id')}::uuid[], ${col('subscription_id')}::uuid[],
      ${col('billable_metric_id')}::uuid[], ${col('timestamp')}::timestamptz[], ${col('properties')}::jsonb[],
      ${col('cost')}::numeric[], ${col('value')}::text[], ${col('dimension')}::text[], ${col('counted')}::boolean[],
      ${col('period_start')}::date[]) with ordinality as u (a, b, c, d, t, p, co, v, di, cn, ps, n)
    order by n
    on conflict (tenant_id, event_id) do nothing
    returning e.event_id, e.id, e.received_at`.execute(db);
  return rows;
}

/** The recorded events with these event_ids. */
export async function findEventsByEventId(db: Db, eventIds: readonly string[]): Promise<UsageEventRow[]> {
  if (eventIds.length === 0) return [];
  const { rows } = await sql<UsageEventRow>`
    select ${selectEvents} from usage_events e
    where e.tenant_id = current_setting('app.tenant_id')::uuid and e.event_id = any(${[...eventIds]}::text[])`.execute(
    db,
  );
  return rows;
}

export function findEvent(db: Db, id: string): Promise<UsageEventRow | undefined> {
  return db.selectFrom('usage_events').select(usageEventColumns).where('id', '=', id).executeTakeFirst();
}

export interface UsageEventFilter {
  limit: number;
  after?: string | undefined;
  userId?: string | undefined;
  subscriptionId?: string | undefined;
  billableMetricId?: string | undefined;
  eventId?: string | undefined;
  from?: Date | undefined;
  to?: Date | undefined;
}

/** Newest first (by id, which is time-ordered); limit + 1 rows. */
export function listEvents(db: Db, filter: UsageEventFilter): Promise<UsageEventRow[]> {
  let query = db
    .selectFrom('usage_events')
    .select(usageEventColumns)
    .orderBy('id', 'desc')
    .limit(filter.limit + 1);
  if (filter.after) query = query.where('id', '<', filter.after);
  if (filter.userId) query = query.where('user_id', '=', filter.userId);
  if (filter.subscriptionId) {
    // Through the customer's index (usage_events has none by subscription: each costs every insert).
    const subscriptionId = filter.subscriptionId;
    query = query
      .where('user_id', '=', (eb) =>
        eb.selectFrom('subscriptions').select('user_id').where('subscriptions.id', '=', subscriptionId),
      )
      .where('subscription_id', '=', subscriptionId);
  }
  if (filter.billableMetricId) query = query.where('billable_metric_id', '=', filter.billableMetricId);
  if (filter.eventId !== undefined) query = query.where('event_id', '=', filter.eventId);
  if (filter.from) query = query.where('timestamp', '>=', filter.from);
  if (filter.to) query = query.where('timestamp', '<', filter.to);
  return query.execute();
}

/** Where a total is kept: a subscription's period of one metric, all its events or one dimension. */
export interface TotalKey {
  subscription_id: string;
  billable_metric_id: string;
  period_start: string;
  /** null: every event of the metric; else the events with this group_by value. */
  dimension: string | null;
}

/** What new events add to a total. */
export interface TotalDelta extends TotalKey {
  events: number;
  total: string;
  max_value: string | null;
  latest_value: string | null;
  latest_at: Date | null;
  latest_event_id: string | null;
  unique_values: number;
  /** What the new events cost (the sum of their `cost`, those without one adding 0): for margins. */
  cost: string;
}

export const totalKeyText = (k: TotalKey) =>
  `${k.subscription_id}|${k.billable_metric_id}|${k.period_start}|${k.dimension === null ? '' : `=${k.dimension}`}`;

/**
 * Records values for unique_count totals; returns those not seen before in their total (a value
 * seen again adds nothing). In key order.
 */
export async function insertUniqueValues(
  db: Db,
  values: ReadonlyArray<TotalKey & { value: string }>,
): Promise<Array<TotalKey & { value: string }>> {
  if (values.length === 0) return [];
  const sorted = [...values].sort((a, b) => {
    const ka = `${totalKeyText(a)}|${a.value}`;
    const kb = `${totalKeyText(b)}|${b.value}`;
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  });
  const col = <K extends keyof (TotalKey & { value: string })>(k: K) => sorted.map((v) => v[k]);
  const { rows } = await sql<TotalKey & { value: string }>`
    insert into usage_unique_values (subscription_id, billable_metric_id, period_start, dimension, value)
    select s, m, p, d, v from unnest(${col('subscription_id')}::uuid[], ${col('billable_metric_id')}::uuid[],
      ${col('period_start')}::date[], ${col('dimension')}::text[], ${col('value')}::text[]) with ordinality as u (s, m, p, d, v, n)
    order by n
    on conflict do nothing
    returning subscription_id, billable_metric_id, period_start::text as period_start, dimension, value`.execute(
    db,
  );
  return rows;
}

/** Adds the deltas to their totals (one per key), in key order; returns the totals as they are now. */
export async function addToTotals(
  db: Db,
  deltas: readonly TotalDelta[],
): Promise<Array<TotalKey & TotalRow>> {
  if (deltas.length === 0) return [];
  const sorted = [...deltas].sort((a, b) => (totalKeyText(a) < totalKeyText(b) ? -1 : 1));
  const col = <K extends keyof TotalDelta>(k: K) => sorted.map((d) => d[k]);
  const { rows } = await sql<TotalKey & TotalRow>`
    insert into usage_totals as t (subscription_id, billable_metric_id, period_start, dimension, events, total,
      max_value, latest_value, latest_at, latest_event_id, unique_values, cost)
    select s, m, p, d, ev, tot, mx, lv, la, le, uv, co
    from unnest(${col('subscription_id')}::uuid[], ${col('billable_metric_id')}::uuid[], ${col('period_start')}::date[],
      ${col('dimension')}::text[], ${col('events')}::bigint[], ${col('total')}::numeric[], ${col('max_value')}::numeric[],
      ${col('latest_value')}::numeric[], ${col('latest_at')}::timestamptz[], ${col('latest_event_id')}::text[],
      ${col('unique_values')}::bigint[], ${col('cost')}::numeric[]) with ordinality as u (s, m, p, d, ev, tot, mx, lv, la, le, uv, co, n)
    order by n
    on conflict (tenant_id, subscription_id, billable_metric_id, period_start, dimension) do update set
      events = t.events + excluded.events,
      total = t.total + excluded.total,
      cost = t.cost + excluded.cost,
      max_value = greatest(t.max_value, excluded.max_value),
      unique_values = t.unique_values + excluded.unique_values,
      latest_value = case when ${newerLatest} then excluded.latest_value else t.latest_value end,
      latest_event_id = case when ${newerLatest} then excluded.latest_event_id else t.latest_event_id end,
      latest_at = case when ${newerLatest} then excluded.latest_at else t.latest_at end
    returning t.subscription_id, t.billable_metric_id, t.period_start::text as period_start, t.dimension,
      t.events::text as events, t.total::text as total, t.max_value::text as max_value,
      t.latest_value::text as latest_value, t.unique_values::text as unique_values`.execute(db);
  return rows;
}

/**
 * The latest value is the one with the greatest (timestamp, event_id), event_ids compared byte by
 * byte (collate "C", as the service compares them within a batch), whatever the database's collation.
 */
const newerLatest = sql`excluded.latest_at is not null and (t.latest_at is null
  or excluded.latest_at > t.latest_at
  or (excluded.latest_at = t.latest_at and excluded.latest_event_id collate "C" > t.latest_event_id collate "C"))`;

export interface TotalRow {
  billable_metric_id: string;
  dimension: string | null;
  events: string;
  total: string;
  max_value: string | null;
  latest_value: string | null;
  unique_values: string;
}

/** A subscription period's totals. */
export async function periodTotals(db: Db, subscriptionId: string, periodStart: string): Promise<TotalRow[]> {
  const { rows } = await sql<TotalRow>`
    select billable_metric_id, dimension, events::text as events, total::text as total,
      max_value::text as max_value, latest_value::text as latest_value, unique_values::text as unique_values
    from usage_totals
    where tenant_id = current_setting('app.tenant_id')::uuid and subscription_id = ${subscriptionId}::uuid
      and period_start = ${periodStart}::date`.execute(db);
  return rows;
}

/**
 * The lines of the invoice that billed a subscription period's usage: the latest one not voided,
 * else the latest voided one (whose usage is forgiven); undefined when no invoice bills it.
 */
export async function billedUsageLines(
  db: Db,
  subscriptionId: string,
  periodStart: string,
): Promise<unknown[] | undefined> {
  const { rows } = await sql<{ lines: unknown[] }>`
    select lines from invoices
    where tenant_id = current_setting('app.tenant_id')::uuid and subscription_id = ${subscriptionId}::uuid
      and lines @> jsonb_build_array(jsonb_build_object('type', 'usage', 'period_start', ${periodStart}::text))
    order by status = 'void', created_at desc
    limit 1`.execute(db);
  return rows[0]?.lines;
}

/**
 * The totals of the periods not invoiced yet (their usage is priced by the plan's charges as they
 * are when it is) of the plan's subscriptions, for these metrics.
 */
export async function openTotalsOfPlan(
  db: Db,
  planId: string,
  metricIds: readonly string[],
): Promise<Array<TotalKey & TotalRow>> {
  if (metricIds.length === 0) return [];
  return openTotals(db, sql`s.plan_id = ${planId}::uuid`, metricIds);
}

/** The same for one subscription: the totals a plan it moves to would price. */
export async function openTotalsOfSubscription(
  db: Db,
  subscriptionId: string,
  metricIds: readonly string[],
): Promise<Array<TotalKey & TotalRow>> {
  if (metricIds.length === 0) return [];
  return openTotals(db, sql`s.id = ${subscriptionId}::uuid`, metricIds);
}

async function openTotals(
  db: Db,
  which: RawBuilder<unknown>,
  metricIds: readonly string[],
): Promise<Array<TotalKey & TotalRow>> {
  const { rows } = await sql<TotalKey & TotalRow>`
    select t.subscription_id, t.billable_metric_id, t.period_start::text as period_start, t.dimension,
      t.events::text as events, t.total::text as total, t.max_value::text as max_value,
      t.latest_value::text as latest_value, t.unique_values::text as unique_values
    from subscriptions s
    join usage_totals t on t.tenant_id = s.tenant_id and t.subscription_id = s.id
    where s.tenant_id = current_setting('app.tenant_id')::uuid and ${which}
      and t.billable_metric_id = any(${[...metricIds]}::uuid[])
      and (s.usage_invoiced_until is null or t.period_start >= s.usage_invoiced_until)`.execute(db);
  return rows;
}

/**
 * The time of the latest usage event counted for the subscription after `day` (dated the next day
 * or later), if any. Such events lie in the period starting on `periodStart` (the one containing
 * `day`) or later: without a total of those periods, the events are not read at all.
 */
export async function latestCountedUsageAfter(
  db: Db,
  s: { id: string; user_id: string },
  day: string,
  periodStart: string,
): Promise<Date | undefined> {
  const { rows } = await sql<{ at: Date | null }>`
    select max(e.timestamp) as at from usage_events e
    where e.tenant_id = current_setting('app.tenant_id')::uuid and e.user_id = ${s.user_id}::uuid
      and e.subscription_id = ${s.id}::uuid and e.counted
      and e.timestamp >= (${day}::date + 1)::timestamp at time zone 'UTC'
      and exists (select from usage_totals t
        where t.tenant_id = current_setting('app.tenant_id')::uuid and t.subscription_id = ${s.id}::uuid
          and t.period_start >= ${periodStart}::date)`.execute(db);
  return rows[0]?.at ?? undefined;
}

/**
 * Whether usage counted for the subscription: a total exists for it (every counted event adds to
 * one). Read by changes that would orphan that usage (a new start date, a delete).
 */
export async function hasCountedUsage(db: Db, subscriptionId: string): Promise<boolean> {
  const { rows } = await sql<{ found: boolean }>`
    select exists (select from usage_totals
      where tenant_id = current_setting('app.tenant_id')::uuid and subscription_id = ${subscriptionId}::uuid
    ) as found`.execute(db);
  return rows[0]!.found;
}

/**
 * The start of each subscription's first invoiced period (voided invoices too: their period was
 * invoiced); none for a subscription never invoiced.
 */
export async function firstInvoicedPeriods(
  db: Db,
  subscriptionIds: readonly string[],
): Promise<Map<string, string>> {
  if (subscriptionIds.length === 0) return new Map();
  const { rows } = await sql<{ subscription_id: string; first: string }>`
    select subscription_id, min(period_start)::text as first from invoices
    where tenant_id = current_setting('app.tenant_id')::uuid
      and subscription_id = any(${[...subscriptionIds]}::uuid[])
    group by subscription_id`.execute(db);
  return new Map(rows.map((r) => [r.subscription_id, r.first]));
}
