// Refunds (docs/billing.md, "Refunds"): the money of a credit note on a paid invoice, sent back
// through the gateway on the rail of the payment that paid the invoice.
// - refunds: pending until the rail settles them (the worker submits them to the gateway, then
//   settles them after the rail's delay), then succeeded or failed; a failed refund's amount is
//   credited to the customer's balance (a refund_failed entry), so no money is lost. One refund
//   per credit note; amounts, payment and invoice never change (a trigger).
import { type Kysely, sql } from 'kysely';

const APP_ROLE = 'subscriptions_app';
const CURRENT_TENANT = sql`nullif(current_setting('app.tenant_id', true), '')::uuid`;

export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create table refunds (
      tenant_id uuid not null default ${CURRENT_TENANT} references tenants (id) on delete cascade,
      id uuid not null default uuid_generate_v7(),
      credit_note_id uuid not null,
      invoice_id uuid not null,
      payment_id uuid not null,
      subscription_id uuid not null,
      user_id uuid not null,
      amount numeric(14, 2) not null check (amount > 0),
      rail text not null check (rail in ('card', 'ach_standard', 'ach_same_day', 'wire', 'instant')),
      payment_method text not null check (payment_method ~ '^pm_[A-Za-z0-9_]{1,100}$'),
      status text not null default 'pending' check (status in ('pending', 'succeeded', 'failed')),
      failure_reason text,
      -- Times on the subscription's clock (its test clock, or real time).
      submit_after timestamptz not null,
      submitted_at timestamptz,
      settles_at timestamptz,
      settled_at timestamptz,
      gateway_reference text,
      version integer not null default 1,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      primary key (tenant_id, id),
      unique (tenant_id, credit_note_id),
      foreign key (tenant_id, credit_note_id) references credit_notes (tenant_id, id),
      foreign key (tenant_id, invoice_id) references invoices (tenant_id, id),
      foreign key (tenant_id, payment_id) references payments (tenant_id, id),
      foreign key (tenant_id, subscription_id) references subscriptions (tenant_id, id),
      check ((status = 'failed') = (failure_reason is not null)),
      check (status = 'pending' or settled_at is not null)
    )`.execute(db);
  await sql`create trigger refunds_bump_version before update on refunds
    for each row execute function bump_version()`.execute(db);
  // An invoice's refunds, newest first.
  await sql`create index refunds_invoice_idx on refunds (tenant_id, invoice_id, id)`.execute(db);
  // The worker's sweep (findDueWork): refunds to submit, and refunds to settle.
  await sql`create index refunds_due_idx on refunds ((coalesce(settles_at, submit_after))) where status = 'pending'`.execute(
    db,
  );
  await sql`
    create function refunds_follow_lifecycle() returns trigger language plpgsql as $$
    begin
      if tg_op = 'DELETE' then
        if pg_trigger_depth() > 1 and not exists (select from tenants where id = old.tenant_id) then
          return old;
        end if;
        raise exception 'a refund is never deleted' using errcode = 'BIL04';
      end if;
      if (new.credit_note_id, new.invoice_id, new.payment_id, new.subscription_id, new.user_id, new.amount,
          new.rail, new.payment_method)
         is distinct from
         (old.credit_note_id, old.invoice_id, old.payment_id, old.subscription_id, old.user_id, old.amount,
          old.rail, old.payment_method)
         or (old.status in ('succeeded', 'failed') and new is distinct from old)
         or (new.status is distinct from old.status and old.status <> 'pending') then
        raise exception 'refund %: % cannot become %, and its amount and payment never change',
          old.id, old.status, new.status using errcode = 'BIL04';
      end if;
      return new;
    end $$`.execute(db);
  await sql`create trigger refunds_lifecycle before update or delete on refunds
    for each row execute function refunds_follow_lifecycle()`.execute(db);
  await sql`alter table refunds enable row level security, force row level security`.execute(db);
  await sql`create policy tenant_isolation on refunds
    using (tenant_id = ${CURRENT_TENANT}) with check (tenant_id = ${CURRENT_TENANT})`.execute(db);
  await sql`grant select, insert, update on refunds to ${sql.id(APP_ROLE)}`.execute(db);
  await sql`alter table customer_balance_transactions
    add constraint customer_balance_transactions_refund_fkey foreign key (tenant_id, refund_id)
      references refunds (tenant_id, id),
    add constraint customer_balance_transactions_refund_check check (type <> 'refund_failed' or refund_id is not null)`.execute(
    db,
  );
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`alter table customer_balance_transactions
    drop constraint customer_balance_transactions_refund_check,
    drop constraint customer_balance_transactions_refund_fkey`.execute(db);
  await sql`drop table refunds`.execute(db);
  await sql`drop function refunds_follow_lifecycle()`.execute(db);
}
