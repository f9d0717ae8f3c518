// Physical design for GET /api/v1/analytics: aggregates maintained exactly, in the writing
// transaction, by statement-level triggers with transition tables (one aggregate step per
// statement, so a bulk load of a million rows updates each rollup row once).
import { type Kysely, sql } from 'kysely';

const APP_ROLE = 'subscriptions_app';
const OPERATIONS = ['insert', 'update', 'delete'] as const;
const CURRENT_TENANT = sql`nullif(current_setting('app.tenant_id', true), '')::uuid`;

export async function up(db: Kysely<any>): Promise<void> {
  // Serves the live recomputation of monthly_revenue (start_date ranges) and list filters on
  // start_date. The seed loads rows in start_date order, so block ranges stay tight.
  await sql`create index subscriptions_start_date_brin on subscriptions using brin (start_date)`.execute(db);
  // Serves the live recomputation of total_recurring_revenue: an index-only scan of active rows.
  await sql`create index subscriptions_active_plan_cost_idx on subscriptions (tenant_id) include (plan_cost)
    where status = 'active'`.execute(db);

  // Count and plan_cost total per tenant, start month and status. `shard` spreads concurrent
  // writers over several rows (each backend writes the shard of its pid), so busy tenants do not
  // queue on one hot row; readers sum the shards.
  await sql`
    create table subscription_rollups (
      tenant_id uuid not null default ${CURRENT_TENANT} references tenants (id) on delete cascade,
      month date not null,
      status text not null,
      shard smallint not null,
      subscription_count bigint not null,
      plan_cost_total numeric not null,
      primary key (tenant_id, month, status, shard)
    )`.execute(db);

  // Per user: count and total plan_cost of all their subscriptions.
  await sql`
    create table user_totals (
      tenant_id uuid not null default ${CURRENT_TENANT},
      user_id uuid not null,
      subscription_count bigint not null,
      total_value numeric not null,
      primary key (tenant_id, user_id),
      foreign key (tenant_id, user_id) references users (tenant_id, id) on delete cascade
    )`.execute(db);
  // Serves top_users: the first rows of this index, in order, are the answer.
  await sql`create index user_totals_top_idx on user_totals (tenant_id, total_value desc, user_id)
    where subscription_count > 0`.execute(db);

  for (const table of ['subscription_rollups', 'user_totals']) {
    await sql`alter table ${sql.table(table)} enable row level security, force row level security`.execute(
      db,
    );
    await sql`create policy tenant_isolation on ${sql.table(table)}
      using (tenant_id = ${CURRENT_TENANT}) with check (tenant_id = ${CURRENT_TENANT})`.execute(db);
    await sql`grant select, insert, update, delete on ${sql.table(table)} to ${sql.id(APP_ROLE)}`.execute(db);
  }

  // One trigger function per operation, from one template: the signed deltas (+1 per new row,
  // -1 per old row) of the statement, applied to both aggregates in a single SQL statement.
  // Upserts go in key order, so two transactions lock aggregate rows in the same order and cannot
  // deadlock each other; groups whose delta is zero (an end_date change, say) touch nothing.
  for (const op of OPERATIONS) {
    const deltas = [
      ...(op !== 'delete'
        ? ['select tenant_id, user_id, start_date, status, plan_cost, 1 as sign from new_rows']
        : []),
      ...(op !== 'insert'
        ? ['select tenant_id, user_id, start_date, status, plan_cost, -1 as sign from old_rows']
        : []),
    ].join(' union all ');
    await sql`
      create function ${sql.id(`subscriptions_aggregates_${op}`)}() returns trigger
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
    const transitions = {
      insert: sql`new table as new_rows`,
      update: sql`old table as old_rows new table as new_rows`,
      delete: sql`old table as old_rows`,
    }[op];
    await sql`
      create trigger ${sql.id(`subscriptions_aggregates_${op}`)}
      after ${sql.raw(op)} on subscriptions
      referencing ${transitions}
      for each statement execute function ${sql.id(`subscriptions_aggregates_${op}`)}()`.execute(db);
  }

  // Subscriptions that exist already (a deployment upgrading) get their aggregates now.
  await sql`
    insert into subscription_rollups (tenant_id, month, status, shard, subscription_count, plan_cost_total)
    select tenant_id, date_trunc('month', start_date::timestamp)::date, status, 0, count(*), sum(plan_cost)
    from subscriptions group by 1, 2, 3`.execute(db);
  await sql`
    insert into user_totals (tenant_id, user_id, subscription_count, total_value)
    select tenant_id, user_id, count(*), sum(plan_cost) from subscriptions group by 1, 2`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const op of OPERATIONS) {
    await sql`drop trigger ${sql.id(`subscriptions_aggregates_${op}`)} on subscriptions`.execute(db);
    await sql`drop function ${sql.id(`subscriptions_aggregates_${op}`)}()`.execute(db);
  }
  await sql`drop table user_totals`.execute(db);
  await sql`drop table subscription_rollups`.execute(db);
  await sql`drop index subscriptions_active_plan_cost_idx`.execute(db);
  await sql`drop index subscriptions_start_date_brin`.execute(db);
}
