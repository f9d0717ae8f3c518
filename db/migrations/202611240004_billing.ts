// Billing: plans with versioned prices, subscriptions priced from them, tax rates with history,
// and invoices that cannot change once issued.
import { type Kysely, sql } from 'kysely';

const APP_ROLE = 'subscriptions_app';
const CURRENT_TENANT = sql`nullif(current_setting('app.tenant_id', true), '')::uuid`;
const TENANT_TABLES = ['plans', 'plan_versions', 'tax_rates', 'invoices', 'invoice_counters'] as const;

export async function up(db: Kysely<any>): Promise<void> {
  // Equality on uuid and text inside a GiST exclusion constraint (tax rates).
  await sql`create extension if not exists btree_gist`.execute(db);

  await sql`
    create table plans (
      id uuid primary key default uuid_generate_v7(),
      tenant_id uuid not null default ${CURRENT_TENANT} references tenants (id) on delete cascade,
      code text not null check (code ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$'),
      name text not null check (length(btrim(name)) between 1 and 200),
      interval text not null check (interval in ('month', 'year')),
      interval_count integer not null default 1 check (interval_count between 1 and 36),
      -- The number of the plan version new subscriptions get (plan_versions.number).
      current_version integer not null default 1,
      archived_at timestamptz,
      version integer not null default 1,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      unique (tenant_id, code),
      unique (tenant_id, id)
    )`.execute(db);
  await sql`create trigger plans_bump_version before update on plans
    for each row execute function bump_version()`.execute(db);

  // A price, frozen: editing a plan's price adds a version; subscriptions keep theirs.
  await sql`
    create table plan_versions (
      id uuid primary key default uuid_generate_v7(),
      tenant_id uuid not null default ${CURRENT_TENANT},
      plan_id uuid not null,
      number integer not null check (number >= 1),
      price_model text not null check (price_model in ('flat', 'per_unit', 'tiered', 'volume')),
      amount numeric(14, 4) check (amount >= 0),
      tiers jsonb,
      created_at timestamptz not null default now(),
      unique (plan_id, number),
      unique (tenant_id, id),
      foreign key (tenant_id, plan_id) references plans (tenant_id, id) on delete cascade,
      check ((price_model in ('flat', 'per_unit')) = (amount is not null and tiers is null))
    )`.execute(db);
  await sql`
    create function plan_versions_are_frozen() returns trigger language plpgsql as $$
    begin
      raise exception 'a plan version never changes: add a version instead' using errcode = 'BIL01';
    end $$`.execute(db);
  await sql`create trigger plan_versions_frozen before update on plan_versions
    for each row execute function plan_versions_are_frozen()`.execute(db);

  // Subscriptions on a plan: priced by the server from the plan version they were put on.
  await sql`alter table subscriptions
    add column plan_id uuid,
    add column plan_version_id uuid,
    add column quantity integer not null default 1 check (quantity between 1 and 1000000000),
    add column interval_count integer not null default 1 check (interval_count between 1 and 36),
    add column price_breakdown jsonb,
    add constraint subscriptions_plan_check check ((plan_id is null) = (plan_version_id is null)),
    add constraint subscriptions_plan_version_fkey foreign key (tenant_id, plan_version_id)
      references plan_versions (tenant_id, id) on delete restrict`.execute(db);
  // Serves "is this plan in use?" and the plan filter of the metrics.
  await sql`create index subscriptions_plan_id_idx on subscriptions (tenant_id, plan_id) where plan_id is not null`.execute(
    db,
  );

  // Billing regions: an ISO 3166-1 alpha-2 country, or a subdivision (US-CA).
  await sql`alter table users add column region text check (region ~ '^[A-Z]{2}(-[A-Z0-9]{1,3})?$')`.execute(
    db,
  );

  // Tax rates with history: a rate is closed (effective_until) and another opened, never edited;
  // the rates of one code and region never overlap in time (the exclusion constraint).
  await sql`
    create table tax_rates (
      id uuid primary key default uuid_generate_v7(),
      tenant_id uuid not null default ${CURRENT_TENANT} references tenants (id) on delete cascade,
      code text not null check (code ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,49}$'),
      name text not null check (length(btrim(name)) between 1 and 200),
      percentage numeric(7, 4) not null check (percentage >= 0 and percentage <= 100),
      region text not null check (region ~ '^[A-Z]{2}(-[A-Z0-9]{1,3})?$'),
      effective_from date not null,
      effective_until date check (effective_until > effective_from),
      created_at timestamptz not null default now(),
      unique (tenant_id, id),
      constraint tax_rates_no_overlap exclude using gist (
        tenant_id with =, code with =, region with =,
        daterange(effective_from, effective_until, '[)') with &&)
    )`.execute(db);
  await sql`
    create function tax_rates_close_only() returns trigger language plpgsql as $$
    begin
      if old.effective_until is null and new.effective_until is not null
         and (new.id, new.tenant_id, new.code, new.name, new.percentage, new.region, new.effective_from, new.created_at)
             is not distinct from
             (old.id, old.tenant_id, old.code, old.name, old.percentage, old.region, old.effective_from, old.created_at) then
        return new;
      end if;
      raise exception 'a tax rate is never edited: close it and open another' using errcode = 'BIL02';
    end $$`.execute(db);
  await sql`create trigger tax_rates_close_only before update on tax_rates
    for each row execute function tax_rates_close_only()`.execute(db);

  // Invoices. One per subscription and period; a number only once finalized, gapless per tenant.
  await sql`
    create table invoices (
      id uuid primary key default uuid_generate_v7(),
      tenant_id uuid not null default ${CURRENT_TENANT} references tenants (id) on delete cascade,
      subscription_id uuid not null,
      user_id uuid not null,
      status text not null default 'draft' check (status in ('draft', 'open', 'paid', 'void', 'uncollectible')),
      number bigint,
      period_start date not null,
      period_end date not null check (period_end > period_start),
      invoice_date date not null,
      region text,
      lines jsonb not null,
      subtotal numeric(16, 2) not null check (subtotal >= 0),
      taxes jsonb not null,
      tax_total numeric(16, 2) not null check (tax_total >= 0),
      total numeric(16, 2) not null check (total = subtotal + tax_total),
      finalized_at timestamptz,
      paid_at timestamptz,
      voided_at timestamptz,
      uncollectible_at timestamptz,
      version integer not null default 1,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      unique (tenant_id, id),
      unique (tenant_id, subscription_id, period_start),
      unique (tenant_id, number),
      foreign key (tenant_id, subscription_id) references subscriptions (tenant_id, id) on delete restrict,
      check ((status = 'draft') = (number is null) or (status = 'void' and finalized_at is null))
    )`.execute(db);
  await sql`create trigger invoices_bump_version before update on invoices
    for each row execute function bump_version()`.execute(db);
  // Serves the invoice lists filtered by user, and the tax report (by invoice date).
  await sql`create index invoices_user_id_idx on invoices (tenant_id, user_id, id)`.execute(db);
  await sql`create index invoices_invoice_date_idx on invoices (tenant_id, invoice_date)
    where status in ('open', 'paid', 'uncollectible')`.execute(db);

  // Issued means final: amounts, lines, taxes, number, period and customer never change after
  // draft, whoever asks (the owner too); only the status moves on, along the lifecycle.
  await sql`
    create function invoices_are_final() returns trigger language plpgsql as $$
    begin
      if tg_op = 'DELETE' then
        if old.status = 'draft' then return old; end if;
        raise exception 'an issued invoice cannot be deleted; void it' using errcode = 'BIL03';
      end if;
      if old.status <> 'draft' and
         (new.number, new.lines, new.subtotal, new.taxes, new.tax_total, new.total, new.period_start,
          new.period_end, new.invoice_date, new.region, new.subscription_id, new.user_id, new.finalized_at)
         is distinct from
         (old.number, old.lines, old.subtotal, old.taxes, old.tax_total, old.total, old.period_start,
          old.period_end, old.invoice_date, old.region, old.subscription_id, old.user_id, old.finalized_at) then
        raise exception 'invoice % is issued: its amounts, lines, taxes and number are final', old.id
          using errcode = 'BIL03';
      end if;
      if new.status is distinct from old.status and not (
           (old.status = 'draft' and new.status in ('open', 'void'))
        or (old.status = 'open' and new.status in ('paid', 'void', 'uncollectible'))
        or (old.status = 'uncollectible' and new.status in ('paid', 'void'))) then
        raise exception 'invoice status % cannot become %', old.status, new.status using errcode = 'BIL03';
      end if;
      return new;
    end $$`.execute(db);
  await sql`create trigger invoices_final before update or delete on invoices
    for each row execute function invoices_are_final()`.execute(db);

  // The last invoice number per tenant: finalizing takes the next one under this row's lock, so
  // numbers are gapless and unique (a rolled-back finalization gives its number back).
  await sql`
    create table invoice_counters (
      tenant_id uuid primary key default ${CURRENT_TENANT} references tenants (id) on delete cascade,
      last_number bigint not null check (last_number >= 0)
    )`.execute(db);

  for (const table of TENANT_TABLES) {
    await sql`alter table ${sql.table(table)} enable row level security, force row level security`.execute(
      db,
    );
    await sql`create policy tenant_isolation on ${sql.table(table)}
      using (tenant_id = ${CURRENT_TENANT}) with check (tenant_id = ${CURRENT_TENANT})`.execute(db);
  }
  await sql`grant select, insert, update, delete on plans, invoices to ${sql.id(APP_ROLE)}`.execute(db);
  await sql`grant select, insert on plan_versions to ${sql.id(APP_ROLE)}`.execute(db);
  await sql`grant select, insert, update on tax_rates, invoice_counters to ${sql.id(APP_ROLE)}`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop table invoice_counters`.execute(db);
  await sql`drop table invoices`.execute(db);
  await sql`drop function invoices_are_final()`.execute(db);
  await sql`drop table tax_rates`.execute(db);
  await sql`drop function tax_rates_close_only()`.execute(db);
  await sql`alter table users drop column region`.execute(db);
  await sql`drop index subscriptions_plan_id_idx`.execute(db);
  await sql`alter table subscriptions
    drop constraint subscriptions_plan_version_fkey,
    drop constraint subscriptions_plan_check,
    drop column plan_id, drop column plan_version_id, drop column quantity,
    drop column interval_count, drop column price_breakdown`.execute(db);
  await sql`drop table plan_versions`.execute(db);
  await sql`drop function plan_versions_are_frozen()`.execute(db);
  await sql`drop table plans`.execute(db);
  await sql`drop extension btree_gist`.execute(db);
}
