// Usage-based billing (docs/usage.md): billable metrics, usage events recorded exactly once, and
// the totals that make a period's usage a key lookup.
//
// Tables, and why each:
// - billable_metrics: what events count and how (count, sum, max, unique_count, latest of a
//   property), optionally split by one property (group_by). Never changed once created, but for
//   the name and archiving: totals already counted depend on the definition.
// - usage_events: every event, append-only (a trigger refuses update and delete; only a
//   tenant's deletion removes them). The primary key (tenant_id, event_id) is what makes an event
//   count once forever: a second insert of the same event_id conflicts, in any request, at any
//   time, and a concurrent one waits for the first to commit or roll back.
// - usage_totals: per subscription, metric, billing period and dimension (null = all the
//   metric's events), what the period's events add up to, updated in the recording transaction
//   only for events that were new. A read of the usage now or an invoice reads these rows, never
//   the events, so their cost does not grow with the number of events.
// - usage_unique_values: the distinct values a unique_count total has counted, so that a value
//   seen again in the period adds nothing.
// - subscriptions.usage_invoiced_until: periods that start before it had their usage invoiced;
//   events for them are refused. Set by the renewal under the subscription's row lock, which
//   recording events takes in share mode: an event commits before the period closes, or is refused.
// - plans.usage_charges: the plan's usage charges (metric, dimension value, price), as JSON with
//   the metric's id: read with the plan, priced by src/billing/usage-pricing.ts.
import { type Kysely, sql } from 'kysely';

const APP_ROLE = 'subscriptions_app';
const CURRENT_TENANT = sql`nullif(current_setting('app.tenant_id', true), '')::uuid`;
const TENANT_TABLES = ['billable_metrics', 'usage_events', 'usage_totals', 'usage_unique_values'] as const;

export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create table billable_metrics (
      id uuid not null default uuid_generate_v7(),
      tenant_id uuid not null default ${CURRENT_TENANT} references tenants (id) on delete cascade,
      code text not null check (code ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$'),
      name text not null check (length(btrim(name)) between 1 and 200),
      aggregation text not null check (aggregation in ('count', 'sum', 'max', 'unique_count', 'latest')),
      field text check (field ~ '^[A-Za-z0-9_.-]{1,100}$'),
      group_by text check (group_by ~ '^[A-Za-z0-9_.-]{1,100}$'),
      filters jsonb not null default '{}',
      archived_at timestamptz,
      version integer not null default 1,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      primary key (tenant_id, id),
      unique (tenant_id, code),
      check ((aggregation = 'count') = (field is null))
    )`.execute(db);
  await sql`create trigger billable_metrics_bump_version before update on billable_metrics
    for each row execute function bump_version()`.execute(db);

  await sql`alter table plans add column usage_charges jsonb not null default '[]'`.execute(db);
  await sql`alter table subscriptions add column usage_invoiced_until date`.execute(db);

  await sql`
    create table usage_events (
      tenant_id uuid not null default ${CURRENT_TENANT} references tenants (id) on delete cascade,
      event_id text not null check (length(event_id) between 1 and 255),
      id uuid not null default uuid_generate_v7(),
      user_id uuid not null,
      subscription_id uuid,
      billable_metric_id uuid not null,
      timestamp timestamptz not null,
      properties jsonb not null default '{}',
      cost numeric(14, 4) check (cost >= 0),
      value text,
      dimension text,
      counted boolean not null,
      period_start date,
      received_at timestamptz not null default now(),
      primary key (tenant_id, event_id),
      unique (tenant_id, id),
      foreign key (tenant_id, user_id) references users (tenant_id, id),
      foreign key (tenant_id, billable_metric_id) references billable_metrics (tenant_id, id),
      check (not counted or (subscription_id is not null and period_start is not null))
    )`.execute(db);
  // Serves GET /usage-events filtered by customer (and by subscription), newest first.
  await sql`create index usage_events_user_idx on usage_events (tenant_id, user_id, id)`.execute(db);
  // Serves the metric filter of the list, and "is this metric used?" before deleting it.
  await sql`create index usage_events_metric_idx on usage_events (tenant_id, billable_metric_id, id)`.execute(
    db,
  );
  await sql`create index usage_events_subscription_idx on usage_events (tenant_id, subscription_id, id)
    where subscription_id is not null`.execute(db);
  // Serves GET /usage-events?from=&to=: events arrive roughly in time order, so block ranges of
  // timestamps stay narrow and a BRIN index is a few pages for millions of rows.
  await sql`create index usage_events_timestamp_brin on usage_events using brin (timestamp)`.execute(db);

  await sql`
    create function usage_events_are_immutable() returns trigger language plpgsql as $$
    begin
      if tg_op = 'DELETE' and pg_trigger_depth() > 1
         and not exists (select from tenants where id = old.tenant_id) then
        return old;
      end if;
      raise exception 'usage events are append-only: % refused', lower(tg_op)
        using errcode = 'USG01';
    end $$`.execute(db);
  await sql`create trigger usage_events_immutable before update or delete on usage_events
    for each row execute function usage_events_are_immutable()`.execute(db);
  await sql`create trigger usage_events_no_truncate before truncate on usage_events
    for each statement execute function usage_events_are_immutable()`.execute(db);

  await sql`
    create table usage_totals (
      tenant_id uuid not null default ${CURRENT_TENANT} references tenants (id) on delete cascade,
      subscription_id uuid not null,
      billable_metric_id uuid not null,
      period_start date not null,
      -- null: every event of the metric; else the events with this group_by value.
      dimension text,
      events bigint not null default 0,
      total numeric not null default 0,
      max_value numeric,
      latest_value numeric,
      latest_at timestamptz,
      latest_event_id text,
      unique_values bigint not null default 0,
      unique nulls not distinct (tenant_id, subscription_id, billable_metric_id, period_start, dimension)
    )`.execute(db);
  await sql`
    create table usage_unique_values (
      tenant_id uuid not null default ${CURRENT_TENANT} references tenants (id) on delete cascade,
      subscription_id uuid not null,
      billable_metric_id uuid not null,
      period_start date not null,
      dimension text,
      value text not null,
      unique nulls not distinct (tenant_id, subscription_id, billable_metric_id, period_start, dimension, value)
    )`.execute(db);

  for (const table of TENANT_TABLES) {
    await sql`alter table ${sql.table(table)} enable row level security, force row level security`.execute(
      db,
    );
    await sql`create policy tenant_isolation on ${sql.table(table)}
      using (tenant_id = ${CURRENT_TENANT}) with check (tenant_id = ${CURRENT_TENANT})`.execute(db);
  }
  await sql`grant select, insert, update, delete on billable_metrics, usage_totals, usage_unique_values
    to ${sql.id(APP_ROLE)}`.execute(db);
  await sql`grant select, insert on usage_events to ${sql.id(APP_ROLE)}`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop table usage_unique_values`.execute(db);
  await sql`drop table usage_totals`.execute(db);
  await sql`drop table usage_events`.execute(db);
  await sql`drop function usage_events_are_immutable()`.execute(db);
  await sql`alter table subscriptions drop column usage_invoiced_until`.execute(db);
  await sql`alter table plans drop column usage_charges`.execute(db);
  await sql`drop table billable_metrics`.execute(db);
}
