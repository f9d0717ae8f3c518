// What serving a period's usage cost, kept with its totals: GET /reports/usage-margin (docs/usage.md,
// "Margins") sums usage_totals.cost over periods instead of the events' cost, so the report reads
// one row per subscription, metric, period and dimension, never the events (10,000,000 of them at
// the bench's size).
//
// usage_totals.cost: the sum of the `cost` of the period's counted events (those the totals count;
// an event without a cost adds 0), in the all-events row (dimension null) and in the row of the
// event's dimension, as the other totals. Maintained by the recording transaction's upsert
// (src/queries/usage.ts, addToTotals); totals that exist already get theirs from the events here.
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
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`alter table usage_totals drop column cost`.execute(db);
}
