// GET /api/v1/analytics from the maintained aggregates: a few hundred rollup rows and the first
// rows of one index, however many subscriptions the tenant has. Run inside withTenant (RLS).
import { sql } from 'kysely';
import type { Schemas } from '../contract.js';
import type { Db } from '../database/connection.js';

export interface AnalyticsParams {
  /** 'YYYY-MM-DD': its month is the last of monthly_revenue. */
  asOf: string;
  months: number;
  top: number;
}

/** Money as an exact string with two decimals ('0.00', not '0'). */
const cents = (value: ReturnType<typeof sql>) => sql<string>`round(${value}, 2)::text`;

function totals(db: Db) {
  return db
    .selectFrom('subscription_rollups')
    .select([
      cents(sql`coalesce(sum(plan_cost_total) filter (where status = 'active'), 0)`).as(
        'total_recurring_revenue',
      ),
      sql<string | null>`round(sum(plan_cost_total) / nullif(sum(subscription_count), 0), 2)::text`.as(
        'average_subscription_cost',
      ),
      sql<string>`coalesce(sum(subscription_count), 0)::text`.as('subscription_count'),
    ]);
}

/** Every month of the window, oldest first, zeros where nothing started. */
function monthlyRevenue(db: Db, { asOf, months }: AnalyticsParams) {
  // timestamp, not timestamptz: months of a date must not depend on the session's TimeZone.
  const last = sql`date_trunc('month', ${asOf}::timestamp)`;
  const first = sql`${last} - make_interval(months => ${months - 1})`;
  return (
    db
      .selectFrom(
        sql<{
          w: Date;
        }>`generate_series(${first}, ${last}, interval '1 month')`.as('w'), // one column, also named w
      )
      // The window's months only, by the primary key: not every month of the tenant's history.
      .leftJoin('subscription_rollups as r', (join) =>
        join
          .onRef('r.month', '=', sql`w.w::date`)
          .on('r.month', '>=', sql<string>`(${first})::date`)
          .on('r.month', '<=', sql<string>`(${last})::date`),
      )
      .select([
        sql<string>`to_char(w.w, 'YYYY-MM')`.as('month'),
        cents(sql`coalesce(sum(r.plan_cost_total), 0)`).as('revenue'),
        sql<string>`coalesce(sum(r.subscription_count), 0)::text`.as('subscription_count'),
      ])
      .groupBy(sql`w.w`)
      .orderBy(sql`w.w`)
  );
}

/**
 * Highest total first, ties by user id; served in order by user_totals_top_idx. Its predicate is
 * written out, not bound: a prepared statement's generic plan cannot prove a partial index's
 * condition from a parameter, and would sort every user of the tenant instead. The join names the
 * tenant, as the users' primary key (tenant_id, id) does.
 */
function topUsers(db: Db, { top }: AnalyticsParams) {
  return db
    .selectFrom('user_totals as t')
    .innerJoin('users as u', (join) =>
      join.onRef('u.tenant_id', '=', 't.tenant_id').onRef('u.id', '=', 't.user_id'),
    )
    .select([
      'u.id',
      'u.name',
      'u.email',
      cents(sql`t.total_value`).as('total_value'),
      't.subscription_count',
    ])
    .where('t.subscription_count', '>', sql<string>`0`)
    .orderBy('t.total_value', 'desc')
    .orderBy('t.user_id')
    .limit(top);
}

export const analyticsQueries = { totals, monthlyRevenue, topUsers };

/** Everything of GET /analytics but the MRR (analytics/mrr.ts, currentMrr). */
export async function readRollups(
  db: Db,
  params: AnalyticsParams,
): Promise<Omit<Schemas['Analytics'], 'mrr' | 'arr'>> {
  // Sent together: the connection is pipelined, so the three cost one round trip.
  const [sums, months, users] = await Promise.all([
    totals(db).executeTakeFirstOrThrow(),
    monthlyRevenue(db, params).execute(),
    topUsers(db, params).execute(),
  ]);
  return {
    as_of: params.asOf,
    total_recurring_revenue: sums.total_recurring_revenue,
    average_subscription_cost: sums.average_subscription_cost,
    subscription_count: Number(sums.subscription_count),
    monthly_revenue: months.map((m) => ({
      month: m.month,
      revenue: m.revenue,
      subscription_count: Number(m.subscription_count),
    })),
    top_users: users.map((u) => ({ ...u, subscription_count: Number(u.subscription_count) })),
  };
}
