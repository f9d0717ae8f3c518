// Mid-period price changes (docs/billing.md, "Changing a subscription mid-period").
//
// - subscriptions.billing_anchor: the day its billing periods are anchored on, when not its
//   start_date. A change of interval starts a new schedule on the day of the change.
// - invoice_items: charges and credits waiting for an invoice. A proration is made by a price
//   change in a period already invoiced: a credit for the unused time at the old price and a
//   charge for it at the new one. The subscription's next invoice bills every pending item
//   (invoice_id set then); an item billed is never changed again.
// - invoices.kind gains `proration`: the items of a change made with proration_behavior
//   always_invoice, invoiced and collected at once.
// - Period invoices are unique per subscription and period (start and end): after a change of
//   interval on the first day of a period, the new schedule's first period starts on the same day
//   as the old one.
import { type Kysely, sql } from 'kysely';

const APP_ROLE = 'subscriptions_app';
const CURRENT_TENANT = sql`nullif(current_setting('app.tenant_id', true), '')::uuid`;

export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table subscriptions add column billing_anchor date`.execute(db);

  await sql`alter table invoices
    drop constraint invoices_kind_check,
    add constraint invoices_kind_check check (kind in ('period', 'purchase', 'proration'))`.execute(db);
  await sql`drop index invoices_period_key`.execute(db);
  await sql`create unique index invoices_period_key on invoices (tenant_id, subscription_id, period_start, period_end)
    where kind = 'period'`.execute(db);

  await sql`
    create table invoice_items (
      tenant_id uuid not null default ${CURRENT_TENANT} references tenants (id) on delete cascade,
      id uuid not null default uuid_generate_v7(),
      subscription_id uuid not null,
      kind text not null check (kind in ('proration_credit', 'proration_charge')),
      description text not null,
      -- Negative for a credit.
      amount numeric(16, 2) not null,
      period_start date not null,
      period_end date not null check (period_end > period_start),
      invoice_id uuid,
      created_at timestamptz not null default now(),
      primary key (tenant_id, id),
      foreign key (tenant_id, subscription_id) references subscriptions (tenant_id, id) on delete cascade,
      foreign key (tenant_id, invoice_id) references invoices (tenant_id, id)
    )`.execute(db);
  // A subscription's items, and its pending ones (billed by its next invoice).
  await sql`create index invoice_items_subscription_idx on invoice_items (tenant_id, subscription_id, id)`.execute(
    db,
  );
  await sql`create index invoice_items_pending_idx on invoice_items (tenant_id, subscription_id)
    where invoice_id is null`.execute(db);
  // Billed means final: an item on an invoice is never changed or removed (a tenant's deletion
  // aside, which removes everything of it).
  await sql`
    create function invoice_items_are_final() returns trigger language plpgsql as $$
    begin
      if old.invoice_id is null then return coalesce(new, old); end if;
      if tg_op = 'DELETE' and pg_trigger_depth() > 1
         and not exists (select from tenants where id = old.tenant_id) then
        return old;
      end if;
      raise exception 'invoice item % is billed: it cannot change', old.id using errcode = 'BIL04';
    end $$`.execute(db);
  await sql`create trigger invoice_items_final before update or delete on invoice_items
    for each row execute function invoice_items_are_final()`.execute(db);
  await sql`alter table invoice_items enable row level security, force row level security`.execute(db);
  await sql`create policy tenant_isolation on invoice_items
    using (tenant_id = ${CURRENT_TENANT}) with check (tenant_id = ${CURRENT_TENANT})`.execute(db);
  await sql`grant select, insert, update, delete on invoice_items to ${sql.id(APP_ROLE)}`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop table invoice_items`.execute(db);
  await sql`drop function invoice_items_are_final()`.execute(db);
  await sql`drop index invoices_period_key`.execute(db);
  await sql`create unique index invoices_period_key on invoices (tenant_id, subscription_id, period_start)
    where kind = 'period'`.execute(db);
  await sql`alter table invoices
    drop constraint invoices_kind_check,
    add constraint invoices_kind_check check (kind in ('period', 'purchase'))`.execute(db);
  await sql`alter table subscriptions drop column billing_anchor`.execute(db);
}
