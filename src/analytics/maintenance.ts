// Checks the aggregates of GET /analytics (subscription_rollups, user_totals) against a live
// recomputation from the tables, and rebuilds them. Run inside withTenant: RLS limits both sides
// to the transaction's tenant. Each table is also filtered by the tenant as a parameter: the
// planner then plans for that tenant's rows (an index for a small tenant), not for a tenant_id
// from current_setting it cannot see, which it estimated as a share of every tenant's rows (3.6 s
// to check an empty tenant beside one of 5,000,000 subscriptions). (The MRR sums:
// services/mrr-rebuild.ts.)
import { sql } from 'kysely';
import type { Schemas } from '../contract.js';
import type { Db } from '../database/connection.js';

type Difference = Schemas['AnalyticsConsistency']['differences'][number];

/** Rows whose maintained count/total differ from the live ones; zero rows count as absent. */
export async function findDifferences(db: Db, tenantId: string): Promise<Difference[]> {
  const rollups = await sql<{ key: string; maintained: string | null; recomputed: string | null }>`
    with maintained as (
      select month, status, sum(subscription_count) as n, sum(plan_cost_total) as total
      from subscription_rollups where tenant_id = ${tenantId} group by 1, 2 having sum(subscription_count) <> 0 or sum(plan_cost_total) <> 0
    ), live as (
      select date_trunc('month', start_date::timestamp)::date as month, status, count(*) as n, sum(plan_cost) as total
      from subscriptions where tenant_id = ${tenantId} and test_clock_id is null group by 1, 2
    )
    select to_char(coalesce(m.month, l.month), 'YYYY-MM') || ' ' || coalesce(m.status, l.status) as key,
           m.n || '/' || m.total as maintained, l.n || '/' || l.total as recomputed
    from maintained m full join live l on l.month = m.month and l.status = m.status
    where m.n is distinct from l.n or m.total is distinct from l.total
    order by 1`.execute(db);
  const users = await sql<{ key: string; maintained: string | null; recomputed: string | null }>`
    with maintained as (
      select user_id, subscription_count as n, total_value as total
      from user_totals where tenant_id = ${tenantId} and (subscription_count <> 0 or total_value <> 0)
    ), live as (
      select user_id, count(*) as n, sum(plan_cost) as total from subscriptions
      where tenant_id = ${tenantId} and test_clock_id is null group by 1
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

/** What to add to each aggregate row for it to equal the recount (zero: nothing). */
export interface Corrections {
  rollups: { month: string[]; status: string[]; count: string[]; total: string[] };
  users: { user: string[]; count: string[]; total: string[] };
}

/**
 * The recount minus the maintained rows, per row, in one snapshot (the caller's transaction must
 * be repeatable read). Exact numeric and bigint differences, as strings.
 */
export async function aggregateCorrections(db: Db, tenantId: string): Promise<Corrections> {
  const { rows: rollups } = await sql<{ month: string; status: string; count: string; total: string }>`
    with maintained as (
      select month, status, sum(subscription_count) as n, sum(plan_cost_total) as total
      from subscription_rollups where tenant_id = ${tenantId} group by 1, 2
    ), live as (
      select date_trunc('month', start_date::timestamp)::date as month, status, count(*) as n, sum(plan_cost) as total
      from subscriptions where tenant_id = ${tenantId} and test_clock_id is null group by 1, 2
    )
    select coalesce(l.month, m.month) as month, coalesce(l.status, m.status) as status,
           (coalesce(l.n, 0) - coalesce(m.n, 0))::text as count, (coalesce(l.total, 0) - coalesce(m.total, 0))::text as total
    from maintained m full join live l on l.month = m.month and l.status = m.status
    where coalesce(l.n, 0) <> coalesce(m.n, 0) or coalesce(l.total, 0) <> coalesce(m.total, 0)`.execute(db);
  const { rows: users } = await sql<{ user_id: string; count: string; total: string }>`
    with live as (
      select user_id, count(*) as n, sum(plan_cost) as total from subscriptions
      where tenant_id = ${tenantId} and test_clock_id is null group by 1
    )
    select coalesce(l.user_id, m.user_id) as user_id,
           (coalesce(l.n, 0) - coalesce(m.subscription_count, 0))::text as count,
           (coalesce(l.total, 0) - coalesce(m.total_value, 0))::text as total
    from (select * from user_totals where tenant_id = ${tenantId}) m full join live l on l.user_id = m.user_id
    where coalesce(l.n, 0) <> coalesce(m.subscription_count, 0) or coalesce(l.total, 0) <> coalesce(m.total_value, 0)`.execute(
    db,
  );
  return {
    rollups: {
      month: rollups.map((r) => r.month),
      status: rollups.map((r) => r.status),
      count: rollups.map((r) => r.count),
      total: rollups.map((r) => r.total),
    },
    users: {
      user: users.map((r) => r.user_id),
      count: users.map((r) => r.count),
      total: users.map((r) => r.total),
    },
  };
}

/**
 * Adds the corrections to the rows as they are now. The triggers only ever add deltas, so the
 * rows now are the snapshot's plus what writers committed since, and adding the snapshot's
 * correction makes them the recount plus those same writes: exact, and no writer waits. A
 * customer deleted since has no row to correct (its totals went with it).
 */
export async function applyCorrections(db: Db, c: Corrections): Promise<void> {
  if (c.rollups.month.length > 0)
    await sql`
      insert into subscription_rollups as r (month, status, shard, subscription_count, plan_cost_total)
      select month, status, 0, count, total
      from unnest(${c.rollups.month}::date[], ${c.rollups.status}::text[], ${c.rollups.count}::bigint[],
                  ${c.rollups.total}::numeric[]) as d (month, status, count, total)
      on conflict (tenant_id, month, status, shard) do update set
        subscription_count = r.subscription_count + excluded.subscription_count,
        plan_cost_total = r.plan_cost_total + excluded.plan_cost_total`.execute(db);
  if (c.users.user.length > 0)
    await sql`
      insert into user_totals as t (user_id, subscription_count, total_value)
      select d.user_id, d.count, d.total
      from unnest(${c.users.user}::uuid[], ${c.users.count}::bigint[], ${c.users.total}::numeric[])
        as d (user_id, count, total)
      where exists (select from users u where u.tenant_id = current_setting('app.tenant_id')::uuid and u.id = d.user_id)
      on conflict (tenant_id, user_id) do update set
        subscription_count = t.subscription_count + excluded.subscription_count,
        total_value = t.total_value + excluded.total_value`.execute(db);
}
