// Credit notes (docs/billing.md, "Credit notes"): a full or partial credit against an issued
// invoice, numbered gapless per tenant in their own sequence, immutable, with its taxes reversed
// in proportion.
// - credit_notes: append-only (a trigger refuses any update or delete; a tenant's deletion aside).
// - credit_note_counters: the tenant's last credit note number, taken under its row lock.
// - invoices.amount_credited: the sum of the invoice's credit notes; what is still due is
//   total - amount_credited, never below zero.
import { type Kysely, sql } from 'kysely';

const APP_ROLE = 'subscriptions_app';
const CURRENT_TENANT = sql`nullif(current_setting('app.tenant_id', true), '')::uuid`;

export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table invoices
    add column amount_credited numeric(16, 2) not null default 0,
    add constraint invoices_amount_credited_check check (amount_credited >= 0 and amount_credited <= total)`.execute(
    db,
  );
  await sql`
    create table credit_note_counters (
      tenant_id uuid primary key default ${CURRENT_TENANT} references tenants (id) on delete cascade,
      last_number bigint not null
    )`.execute(db);
  await sql`
    create table credit_notes (
      tenant_id uuid not null default ${CURRENT_TENANT} references tenants (id) on delete cascade,
      id uuid not null default uuid_generate_v7(),
      number bigint not null,
      invoice_id uuid not null,
      subscription_id uuid not null,
      user_id uuid not null,
      reason text not null check (length(btrim(reason)) between 1 and 500),
      lines jsonb not null,
      subtotal numeric(16, 2) not null check (subtotal > 0),
      taxes jsonb not null,
      tax_total numeric(16, 2) not null check (tax_total >= 0),
      total numeric(16, 2) not null check (total = subtotal + tax_total),
      issued_at timestamptz not null,
      created_at timestamptz not null default now(),
      primary key (tenant_id, id),
      unique (tenant_id, number),
      foreign key (tenant_id, invoice_id) references invoices (tenant_id, id)
    )`.execute(db);
  // An invoice's credit notes, and the tax report (by day of issue).
  await sql`create index credit_notes_invoice_idx on credit_notes (tenant_id, invoice_id, number)`.execute(
    db,
  );
  await sql`create index credit_notes_issued_idx on credit_notes (tenant_id, issued_at)`.execute(db);
  await sql`
    create function credit_notes_are_final() returns trigger language plpgsql as $$
    begin
      if tg_op = 'DELETE' and pg_trigger_depth() > 1
         and not exists (select from tenants where id = old.tenant_id) then
        return old;
      end if;
      raise exception 'a credit note is final: % refused', lower(tg_op) using errcode = 'BIL05';
    end $$`.execute(db);
  await sql`create trigger credit_notes_final before update or delete on credit_notes
    for each row execute function credit_notes_are_final()`.execute(db);
  for (const table of ['credit_notes', 'credit_note_counters']) {
    await sql`alter table ${sql.table(table)} enable row level security, force row level security`.execute(
      db,
    );
    await sql`create policy tenant_isolation on ${sql.table(table)}
      using (tenant_id = ${CURRENT_TENANT}) with check (tenant_id = ${CURRENT_TENANT})`.execute(db);
  }
  await sql`grant select, insert on credit_notes to ${sql.id(APP_ROLE)}`.execute(db);
  await sql`grant select, insert, update on credit_note_counters to ${sql.id(APP_ROLE)}`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop table credit_notes`.execute(db);
  await sql`drop function credit_notes_are_final()`.execute(db);
  await sql`drop table credit_note_counters`.execute(db);
  await sql`alter table invoices drop constraint invoices_amount_credited_check, drop column amount_credited`.execute(
    db,
  );
}
