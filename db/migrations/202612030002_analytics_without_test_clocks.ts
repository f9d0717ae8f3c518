// GET /api/v1/analytics counted subscriptions on test clocks (issue 20): they are simulations and
// count nowhere, as the MRR metrics already did. The aggregate triggers of 202611230003 now skip
// them, and the aggregates are recounted without them. (A subscription never moves onto or off a
// clock: test_clock_id is set at creation only.)
import { type Kysely, sql } from 'kysely';

const OPERATIONS = ['insert', 'update', 'delete'] as const;

/** 202611230003's trigger functions, with or without the test-clock filter. */
async function triggerFunctions(db: Kysely<any>, skipTestClocks: boolean) {
  const where = skipTestClocks ? ' where test_clock_id is null' : '';
  for (const op of OPERATIONS) {
    const deltas = [
      ...(op !== 'delete'
        ? [`select tenant_id, user_id, start_date, status, plan_cost, 1 as sign from new_rows${where}`]
        : []),
      ...(op !== 'insert'
        ? [`select tenant_id, user_id, start_date, status, plan_cost, -1 as sign from old_rows${where}`]
        : []),
    ].join(' union all ');
    await sql`
      create or replace function ${sql.id(`subscriptions_aggregates_${op}`)}() returns trigger
      language plpgsql as $$
      begin
        with d as (${sql.raw(deltas)}),
        rollups as (
          insert into subscription_rollups as r
            (tenant_id, month, status, shard, subscription_count, plan_cost_total)
          select tenant_id, date_trunc('month', start_date::timestamp)::date, status, pg_backend_pid() % 16,
                 sum(sign), sum(sign * plan_cost)
          from d group by 1, 2, 3
          having sum(sign) <> 0 or sum(sign * plan_cost) <> 0
          order by 1, 2, 3
          on conflict (tenant_id, month, status, shard) do update
            set subscription_count = r.subscription_count + excluded.subscription_count,
                plan_cost_total = r.plan_cost_total + excluded.plan_cost_total
        )
        insert into user_totals as u (tenant_id, user_id, subscription_count, total_value)
        select tenant_id, user_id, sum(sign), sum(sign * plan_cost)
        from d group by 1, 2
        having sum(sign) <> 0 or sum(sign * plan_cost) <> 0
        order by 1, 2
        on conflict (tenant_id, user_id) do update
          set subscription_count = u.subscription_count + excluded.subscription_count,
              total_value = u.total_value + excluded.total_value;
        return null;
      end
      $$`.execute(db);
  }
}

async function recount(db: Kysely<any>, skipTestClocks: boolean) {
  const where = sql.raw(skipTestClocks ? 'where test_clock_id is null' : '');
  await sql`delete from subscription_rollups`.execute(db);
  await sql`delete from user_totals`.execute(db);
  await sql`
    insert into subscription_rollups (tenant_id, month, status, shard, subscription_count, plan_cost_total)
    select tenant_id, date_trunc('month', start_date::timestamp)::date, status, 0, count(*), sum(plan_cost)
    from subscriptions ${where} group by 1, 2, 3`.execute(db);
  await sql`
    insert into user_totals (tenant_id, user_id, subscription_count, total_value)
    select tenant_id, user_id, count(*), sum(plan_cost) from subscriptions ${where} group by 1, 2`.execute(
    db,
  );
}

export async function up(db: Kysely<any>): Promise<void> {
  await triggerFunctions(db, true);
  await recount(db, true);
}

export async function down(db: Kysely<any>): Promise<void> {
  await triggerFunctions(db, false);
  await recount(db, false);
}
