// Checks the maintained aggregates (of GET /analytics and of the MRR metrics) against a live
// recomputation from the tables, and rebuilds them. Run inside withTenant: RLS limits both sides to the transaction's tenant.
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
      from subscriptions group by 1, 2
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
      select user_id, count(*) as n, sum(plan_cost) as total from subscriptions group by 1
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
  const [buckets, series] = await Promise.all([mrrBucketDifferences(db), mrrSeriesDifferences(db)]);
  return [
    ...rollups.rows.map(describe('subscription_rollups')),
    ...users.rows.map(describe('user_totals')),
    ...buckets.map(describe('mrr_buckets')),
    ...series.map(describe('mrr_series')),
  ];
}

const TENANT = sql`current_setting('app.tenant_id')::uuid`;
const BUCKET_COLUMNS = [
  'mrr',
  'customers',
  'new_amount',
  'new_count',
  'reactivation_amount',
  'reactivation_count',
  'expansion_amount',
  'expansion_count',
  'contraction_amount',
  'contraction_count',
  'churn_amount',
  'churn_count',
  'nrr_base',
  'nrr_num',
] as const;

/** The MRR buckets against mrr_expected (the migration's recomputation from the tables). */
function mrrBucketDifferences(db: Db) {
  const values = (alias: string) =>
    sql.join(
      BUCKET_COLUMNS.map((col) => sql`${sql.ref(`${alias}.${col}`)}::text`),
      sql` || '/' || `,
    );
  const differs = sql.join(
    BUCKET_COLUMNS.map((col) => sql`${sql.ref(`m.${col}`)} is distinct from ${sql.ref(`l.${col}`)}`),
    sql` or `,
  );
  return sql<{ key: string; maintained: string | null; recomputed: string | null }>`
    with maintained as (
      select dim_kind, dim_id, region, day,
             ${sql.join(BUCKET_COLUMNS.map((col) => sql`sum(${sql.ref(col)}) as ${sql.ref(col)}`))}
      from (
        select dim_kind, dim_id, region, day, ${sql.join(BUCKET_COLUMNS.map((col) => sql.ref(col)))}
        from mrr_buckets
        -- What reads add for the customers not compacted yet.
        union all select * from mrr_correction(${TENANT})
      ) b
      group by 1, 2, 3, 4
      having ${sql.join(
        BUCKET_COLUMNS.map((col) => sql`sum(${sql.ref(col)}) <> 0`),
        sql` or `,
      )}
    ), live as (select * from mrr_expected(${TENANT}))
    select coalesce(m.dim_kind, l.dim_kind) || ':' || coalesce(m.dim_id, l.dim_id) || ' '
             || coalesce(m.region, l.region) || ' ' || coalesce(m.day, l.day) as key,
           ${values('m')} as maintained, ${values('l')} as recomputed
    from maintained m full join live l
      on l.dim_kind = m.dim_kind and l.dim_id = m.dim_id and l.region = m.region and l.day = m.day
    where ${differs}
    order by 1`
    .execute(db)
    .then((r) => r.rows);
}

/** Each customer's stored series against the one derived from the tables (a dirty one lags by design). */
function mrrSeriesDifferences(db: Db) {
  return sql<{ key: string; maintained: string | null; recomputed: string | null }>`
    with maintained as (
      select user_id, dim_kind, dim_id, region, string_agg(t::text || '=' || mrr::text, ' ' order by t) as points
      from mrr_series where user_id not in (select user_id from mrr_dirty) group by 1, 2, 3, 4
    ), live as (
      select user_id, dim_kind, dim_id, region, string_agg(t::text || '=' || mrr::text, ' ' order by t) as points
      from mrr_points_all(${TENANT}) where user_id not in (select user_id from mrr_dirty) group by 1, 2, 3, 4
    )
    select coalesce(m.user_id, l.user_id) || ' ' || coalesce(m.dim_kind, l.dim_kind) || ':'
             || coalesce(m.dim_id, l.dim_id) as key,
           m.region || ' ' || m.points as maintained, l.region || ' ' || l.points as recomputed
    from maintained m full join live l
      on l.user_id = m.user_id and l.dim_kind = m.dim_kind and l.dim_id = m.dim_id
    where m.points is distinct from l.points or m.region is distinct from l.region
    order by 1`
    .execute(db)
    .then((r) => r.rows);
}

/**
 * Replaces the tenant's aggregates with a recomputation. The lock keeps writers out until the
 * transaction ends, so no write can fall between the recount and the swap.
 */
export async function rebuildAggregates(db: Db): Promise<void> {
  // The MRR aggregates also follow feature links and users' regions.
  await sql`lock table subscriptions, subscription_features, users in share row exclusive mode`.execute(db);
  await sql`select mrr_rebuild(${TENANT})`.execute(db);
  await db.deleteFrom('subscription_rollups').execute();
  await db.deleteFrom('user_totals').execute();
  await sql`
    insert into subscription_rollups (month, status, shard, subscription_count, plan_cost_total)
    select date_trunc('month', start_date::timestamp)::date, status, 0, count(*), sum(plan_cost)
    from subscriptions group by 1, 2`.execute(db);
  await sql`
    insert into user_totals (user_id, subscription_count, total_value)
    select user_id, count(*), sum(plan_cost) from subscriptions group by 1`.execute(db);
}
