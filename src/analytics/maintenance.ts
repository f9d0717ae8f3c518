// Checks the aggregates of GET /analytics (subscription_rollups, user_totals) against a live
// recomputation from the tables, and rebuilds them. Run inside withTenant: RLS limits both sides
// to the transaction's tenant. (The MRR sums: services/mrr-rebuild.ts.)
import { sql } from 'kysely';
import type { Schemas } from '../contract.js';
import type { Db } from '../database/connection.js';

type Difference = Schemas['AnalyticsConsistency']['differences'][number];

/** Rows whose maintained count/total differ from the live ones; zero rows count as absent. */
export async function findDifferences(db: Db): Promise<Difference[]> {
  const rollups = await sql<{ key: string; maintained: string | null; recomputed: string | null }>`
    with maintained as (
      select month, status, sum(subscription_count) as n, sum(plan_cost_total) as total
      from subscription_rollups group by 1, 2 having sum(subscription_count) <> 0 or sum(plan_cost_total) <> 0
    ), live as (
      select date_trunc('month', start_date::timestamp)::date as month, status, count(*) as n, sum(plan_cost) as total
      from subscriptions where test_clock_id is null group by 1, 2
    )
    select to_char(coalesce(m.month, l.month), 'YYYY-MM') || ' ' || coalesce(m.status, l.status) as key,
           m.n || '/' || m.total as maintained, l.n || '/' || l.total as recomputed
    from maintained m full join live l on l.month = m.month and l.status = m.status
    where m.n is distinct from l.n or m.total is distinct from l.total
    order by 1`.execute(db);
  const users = await sql<{ key: string; maintained: string | null; recomputed: string | null }>`
    with maintained as (
      select user_id, subscription_count as n, total_value as total
      from user_totals where subscription_count <> 0 or total_value <> 0
    ), live as (
      select user_id, count(*) as n, sum(plan_cost) as total from subscriptions where test_clock_id is null group by 1
    )
    select coalesce(m.user_id, l.user_id)::text as key,
           m.n || '/' || m.total as maintained, l.n || '/' || l.total as recomputed
    from maintained m full join live l on l.user_id = m.user_id
    where m.n is distinct from l.n or m.total is distinct from l.total
    order by 1`.execute(db);
  const describe = (aggregate: Difference['aggregate']) => (row: (typeof users.rows)[number]) => ({
    aggregate,
    key: row.key,
    maintained: row.maintained ?? 'missing',
    recomputed: row.recomputed ?? 'missing',
  });
  return [...rollups.rows.map(describe('subscription_rollups')), ...users.rows.map(describe('user_totals'))];
}

/**
 * Replaces the tenant's subscription_rollups and user_totals with a recount. The lock keeps
 * writers out until the transaction ends (one grouped scan of the tenant's subscriptions: seconds
 * at millions), so no write can fall between the recount and the swap. (The MRR sums are rebuilt
 * without stopping writers: services/mrr-rebuild.ts.)
 */
export async function rebuildAggregates(db: Db): Promise<void> {
  await sql`lock table subscriptions in share row exclusive mode`.execute(db);
  await db.deleteFrom('subscription_rollups').execute();
  await db.deleteFrom('user_totals').execute();
  await sql`
    insert into subscription_rollups (month, status, shard, subscription_count, plan_cost_total)
    select date_trunc('month', start_date::timestamp)::date, status, 0, count(*), sum(plan_cost)
    from subscriptions where test_clock_id is null group by 1, 2`.execute(db);
  await sql`
    insert into user_totals (user_id, subscription_count, total_value)
    select user_id, count(*), sum(plan_cost) from subscriptions where test_clock_id is null group by 1`.execute(
    db,
  );
}
