// What serving a period's usage cost, kept with its totals: GET /reports/usage-margin (docs/usage.md,
// "Margins") sums usage_totals.cost over periods instead of the events' cost, so the report reads
// one row per subscription, metric, period and dimension, never the events (10,000,000 of them at
// the bench's size).
//
// usage_totals.cost: the sum of the `cost` of the period's counted events (those the totals count;
// an event without a cost adds 0), in the all-events row (dimension null) and in the row of the
// event's dimension, as the other totals. Maintained by the recording transaction's upsert
// (src/queries/usage.ts, addToTotals); totals that exist already get theirs from the events here.
// And two indexes by period for the report: usage_totals' and the issued invoices'.
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  // A constant default: no table rewrite.
  await sql`alter table usage_totals add column cost numeric not null default 0`.execute(db);

  // Two updates, one per kind of row, each joined on plain equalities (hashable), not on
  // "is not distinct from" (which would join row by row).
  await sql`
    update usage_totals t set cost = e.cost
    from (select tenant_id, subscription_id, billable_metric_id, period_start, sum(cost) as cost
          from usage_events where counted and cost is not null
          group by 1, 2, 3, 4) e
    where t.dimension is null and t.tenant_id = e.tenant_id and t.subscription_id = e.subscription_id
      and t.billable_metric_id = e.billable_metric_id and t.period_start = e.period_start`.execute(db);
  await sql`
    update usage_totals t set cost = e.cost
    from (select tenant_id, subscription_id, billable_metric_id, period_start, dimension, sum(cost) as cost
          from usage_events where counted and cost is not null and dimension is not null
          group by 1, 2, 3, 4, 5) e
    where t.tenant_id = e.tenant_id and t.subscription_id = e.subscription_id
      and t.billable_metric_id = e.billable_metric_id and t.period_start = e.period_start
      and t.dimension = e.dimension`.execute(db);

  // Serve GET /reports/usage-margin (src/analytics/usage-margin.ts): the totals of the periods that
  // start in its range, and the issued invoices whose period starts after its `from` (those that
  // can bill the range's usage). Rows of both are written in time order, so a range's rows lie
  // together. EXPLAIN ANALYZE on 10,000 subscriptions with a year of history (bench/usage-margin.ts),
  // a month's report: its totals in 5 ms instead of 45 to 75 ms scanning every total, its invoices
  // in 30 ms instead of 40 to 70 ms walking the whole (tenant, subscription, period) index.
  // Recording events never changes a total's tenant or period: its updates stay HOT (202612030005).
  await sql`create index usage_totals_period_idx on usage_totals (tenant_id, period_start)`.execute(db);
  await sql`create index invoices_issued_period_idx on invoices (tenant_id, period_start)
    where status in ('open', 'paid', 'uncollectible')`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index invoices_issued_period_idx`.execute(db);
  await sql`drop index usage_totals_period_idx`.execute(db);
  await sql`alter table usage_totals drop column cost`.execute(db);
}
