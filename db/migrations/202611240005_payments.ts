// Background billing: test clocks, renewals (billed_until), automatic collection, payments on
// rails and dunning. The job queue itself (schema pgboss) is pg-boss's, installed by pg-boss
// (src/jobs/queue.ts), not by these migrations.
import { type Kysely, sql } from 'kysely';

const APP_ROLE = 'subscriptions_app';
const CURRENT_TENANT = sql`nullif(current_setting('app.tenant_id', true), '')::uuid`;
const TENANT_TABLES = ['test_clocks', 'payments', 'billing_settings'] as const;

export async function up(db: Kysely<any>): Promise<void> {
  // A tenant's simulated time: subscriptions attached to it renew, settle and dun by its clock.
  await sql`
    create table test_clocks (
      id uuid primary key default uuid_generate_v7(),
      tenant_id uuid not null default ${CURRENT_TENANT} references tenants (id) on delete cascade,
      name text not null check (length(btrim(name)) between 1 and 200),
      frozen_time timestamptz not null,
      status text not null default 'ready' check (status in ('ready', 'advancing')),
      version integer not null default 1,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      unique (tenant_id, id)
    )`.execute(db);
  await sql`create trigger test_clocks_bump_version before update on test_clocks
    for each row execute function bump_version()`.execute(db);

  // billed_until: the start of the first period not invoiced yet; renewals invoice every period
  // that has begun (catching up after downtime). Null: not billed automatically (subscriptions
  // made before renewals existed). payment_method + payment_rail: collected automatically.
  await sql`alter table subscriptions
    add column test_clock_id uuid,
    add column billed_until date,
    add column payment_method text check (payment_method ~ '^pm_[A-Za-z0-9_]{1,100}$'),
    add column payment_rail text
      check (payment_rail in ('card', 'ach_standard', 'ach_same_day', 'wire', 'instant')),
    add constraint subscriptions_collection_check check ((payment_method is null) = (payment_rail is null)),
    add constraint subscriptions_test_clock_fkey foreign key (tenant_id, test_clock_id)
      references test_clocks (tenant_id, id) on delete restrict`.execute(db);
  // The renewal sweep across tenants (only subscriptions still billed are in it).
  await sql`create index subscriptions_billed_until_idx on subscriptions (billed_until)
    where billed_until is not null and status <> 'canceled'`.execute(db);
  await sql`create index subscriptions_test_clock_idx on subscriptions (tenant_id, test_clock_id)
    where test_clock_id is not null`.execute(db);

  // Dunning state of an open invoice: when its collection first failed, and the next retry.
  await sql`alter table invoices
    add column collection_failed_at timestamptz,
    add column next_collection_at timestamptz`.execute(db);
  await sql`create index invoices_next_collection_idx on invoices (next_collection_at)
    where next_collection_at is not null`.execute(db);

  await sql`
    create table payments (
      id uuid primary key default uuid_generate_v7(),
      tenant_id uuid not null default ${CURRENT_TENANT} references tenants (id) on delete cascade,
      invoice_id uuid not null,
      subscription_id uuid not null,
      amount numeric(14, 2) not null check (amount > 0),
      rail text not null check (rail in ('card', 'ach_standard', 'ach_same_day', 'wire', 'instant')),
      payment_method text not null check (payment_method ~ '^pm_[A-Za-z0-9_]{1,100}$'),
      status text not null default 'pending' check (status in ('pending', 'processing', 'succeeded', 'failed')),
      failure_reason text,
      -- Who started it: a request, a renewal, or a dunning retry (attempt counts per invoice).
      initiated_by text not null check (initiated_by in ('api', 'renewal', 'dunning')),
      attempt integer not null default 1 check (attempt >= 1),
      -- Times on the subscription's clock (its test clock, or real time).
      submit_after timestamptz not null,
      submit_attempts integer not null default 0,
      submitted_at timestamptz,
      settles_at timestamptz,
      settled_at timestamptz,
      gateway_reference text,
      version integer not null default 1,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      unique (tenant_id, id),
      foreign key (tenant_id, invoice_id) references invoices (tenant_id, id) on delete restrict,
      foreign key (tenant_id, subscription_id) references subscriptions (tenant_id, id) on delete restrict,
      check ((status = 'failed') = (failure_reason is not null))
    )`.execute(db);
  await sql`create trigger payments_bump_version before update on payments
    for each row execute function bump_version()`.execute(db);
  // Never paid twice, never two payments in flight for one invoice, whatever the requests' keys.
  await sql`create unique index payments_one_success_idx on payments (tenant_id, invoice_id)
    where status = 'succeeded'`.execute(db);
  await sql`create unique index payments_one_in_flight_idx on payments (tenant_id, invoice_id)
    where status in ('pending', 'processing')`.execute(db);
  await sql`create index payments_invoice_idx on payments (tenant_id, invoice_id, id)`.execute(db);
  // The sweeps: payments to submit, payments to settle.
  await sql`create index payments_due_idx on payments ((case status when 'pending' then submit_after else settles_at end))
    where status in ('pending', 'processing')`.execute(db);
  await sql`
    create function payments_follow_lifecycle() returns trigger language plpgsql as $$
    begin
      if tg_op = 'DELETE' then
        raise exception 'a payment is never deleted' using errcode = 'BIL04';
      end if;
      if (new.invoice_id, new.subscription_id, new.amount, new.rail, new.payment_method, new.initiated_by, new.attempt)
         is distinct from
         (old.invoice_id, old.subscription_id, old.amount, old.rail, old.payment_method, old.initiated_by, old.attempt)
         or (old.status in ('succeeded', 'failed') and new is distinct from old)
         or (new.status is distinct from old.status and not (
              (old.status = 'pending' and new.status in ('processing', 'succeeded', 'failed'))
           or (old.status = 'processing' and new.status in ('succeeded', 'failed')))) then
        raise exception 'payment %: % cannot become %, and its amount and invoice never change',
          old.id, old.status, new.status using errcode = 'BIL04';
      end if;
      return new;
    end $$`.execute(db);
  await sql`create trigger payments_lifecycle before update or delete on payments
    for each row execute function payments_follow_lifecycle()`.execute(db);

  // Per tenant: the dunning schedule (days after the first failure) and what ends it.
  await sql`
    create table billing_settings (
      tenant_id uuid primary key default ${CURRENT_TENANT} references tenants (id) on delete cascade,
      dunning_retry_days integer[] not null default '{1,3,5}'
        check (cardinality(dunning_retry_days) <= 10 and 0 < all (dunning_retry_days) and 60 >= all (dunning_retry_days)),
      dunning_final_action text not null default 'cancel' check (dunning_final_action in ('cancel', 'mark_unpaid')),
      version integer not null default 1,
      updated_at timestamptz not null default now()
    )`.execute(db);
  await sql`create trigger billing_settings_bump_version before update on billing_settings
    for each row execute function bump_version()`.execute(db);

  for (const table of TENANT_TABLES) {
    await sql`alter table ${sql.table(table)} enable row level security, force row level security`.execute(
      db,
    );
    await sql`create policy tenant_isolation on ${sql.table(table)}
      using (tenant_id = ${CURRENT_TENANT}) with check (tenant_id = ${CURRENT_TENANT})`.execute(db);
  }
  await sql`grant select, insert, update on test_clocks, payments, billing_settings to ${sql.id(APP_ROLE)}`.execute(
    db,
  );
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop table billing_settings`.execute(db);
  await sql`drop table payments`.execute(db);
  await sql`drop function payments_follow_lifecycle()`.execute(db);
  await sql`drop index invoices_next_collection_idx`.execute(db);
  await sql`alter table invoices drop column collection_failed_at, drop column next_collection_at`.execute(
    db,
  );
  await sql`drop index subscriptions_test_clock_idx`.execute(db);
  await sql`drop index subscriptions_billed_until_idx`.execute(db);
  await sql`alter table subscriptions
    drop constraint subscriptions_test_clock_fkey,
    drop constraint subscriptions_collection_check,
    drop column test_clock_id, drop column billed_until, drop column payment_method, drop column payment_rail`.execute(
    db,
  );
  await sql`drop table test_clocks`.execute(db);
}
