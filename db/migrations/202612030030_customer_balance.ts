// The customer balance (docs/billing.md, "Customer balance"): money the business owes a customer,
// credited by credit notes (and by refunds that failed), consumed by the customer's next invoices
// when they are issued, after tax.
// - users.balance: the customer's balance now, never below zero; changed only with an entry of
//   the ledger, in the same transaction, under the user's row lock (the last lock of a money
//   decision: subscription, invoice, payment, refund, then the customer).
// - customer_balance_transactions: the append-only ledger; each entry says why (its type, and
//   the credit note, invoice or refund) and the balance after it.
// - invoices.amount_from_balance: what the balance paid of the invoice when it was issued; what
//   is due is total - amount_credited - amount_from_balance, never below zero.
// - credit_notes.refund_to: where the money of a credit note went beyond what was still due on
//   its invoice ('payment': refunded through the gateway; 'balance': credited to the customer;
//   null when all of it lowered what was due); refund_amount and credit_amount: how much.
import { type Kysely, sql } from 'kysely';

const APP_ROLE = 'subscriptions_app';
const CURRENT_TENANT = sql`nullif(current_setting('app.tenant_id', true), '')::uuid`;

export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table users
    add column balance numeric(16, 2) not null default 0,
    add constraint users_balance_check check (balance >= 0)`.execute(db);
  await sql`alter table invoices
    add column amount_from_balance numeric(16, 2) not null default 0,
    add constraint invoices_amount_from_balance_check check (amount_from_balance >= 0 and amount_from_balance <= total)`.execute(
    db,
  );
  // Added with defaults: the final-rows trigger of credit notes does not fire (no row is updated).
  await sql`alter table credit_notes
    add column refund_to text check (refund_to in ('payment', 'balance')),
    add column refund_amount numeric(16, 2) not null default 0 check (refund_amount >= 0),
    add column credit_amount numeric(16, 2) not null default 0 check (credit_amount >= 0),
    add constraint credit_notes_post_payment_check check (refund_amount + credit_amount <= total),
    add constraint credit_notes_refund_to_set_check check (refund_to is not null or refund_amount + credit_amount = 0)`.execute(
    db,
  );
  await sql`
    create table customer_balance_transactions (
      tenant_id uuid not null default ${CURRENT_TENANT} references tenants (id) on delete cascade,
      id uuid not null default uuid_generate_v7(),
      user_id uuid not null,
      -- credit_note: a credit note's money credited; invoice: applied to an invoice when issued;
      -- invoice_voided: what an invoice took, given back when it was voided; refund_failed: a
      -- refund the rail could not make, credited instead.
      type text not null check (type in ('credit_note', 'invoice', 'invoice_voided', 'refund_failed')),
      amount numeric(16, 2) not null check (amount <> 0),
      balance_after numeric(16, 2) not null check (balance_after >= 0),
      invoice_id uuid,
      credit_note_id uuid,
      refund_id uuid,
      created_at timestamptz not null,
      primary key (tenant_id, id),
      foreign key (tenant_id, user_id) references users (tenant_id, id),
      foreign key (tenant_id, invoice_id) references invoices (tenant_id, id),
      foreign key (tenant_id, credit_note_id) references credit_notes (tenant_id, id),
      check ((type = 'invoice') = (amount < 0)),
      check (type <> 'credit_note' or credit_note_id is not null),
      check (type not in ('invoice', 'invoice_voided') or invoice_id is not null)
    )`.execute(db);
  // A customer's entries, newest first (GET /users/{id}/balance-transactions).
  await sql`create index customer_balance_transactions_user_idx
    on customer_balance_transactions (tenant_id, user_id, id)`.execute(db);
  await sql`
    create function customer_balance_transactions_are_final() returns trigger language plpgsql as $$
    begin
      if tg_op = 'DELETE' and pg_trigger_depth() > 1
         and not exists (select from tenants where id = old.tenant_id) then
        return old;
      end if;
      raise exception 'a customer balance transaction is final: % refused', lower(tg_op) using errcode = 'BIL05';
    end $$`.execute(db);
  await sql`create trigger customer_balance_transactions_final before update or delete on customer_balance_transactions
    for each row execute function customer_balance_transactions_are_final()`.execute(db);
  await sql`alter table customer_balance_transactions enable row level security, force row level security`.execute(
    db,
  );
  await sql`create policy tenant_isolation on customer_balance_transactions
    using (tenant_id = ${CURRENT_TENANT}) with check (tenant_id = ${CURRENT_TENANT})`.execute(db);
  await sql`grant select, insert on customer_balance_transactions to ${sql.id(APP_ROLE)}`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop table customer_balance_transactions`.execute(db);
  await sql`drop function customer_balance_transactions_are_final()`.execute(db);
  await sql`alter table credit_notes
    drop constraint credit_notes_refund_to_set_check, drop constraint credit_notes_post_payment_check,
    drop column refund_to, drop column refund_amount, drop column credit_amount`.execute(db);
  await sql`alter table invoices drop constraint invoices_amount_from_balance_check, drop column amount_from_balance`.execute(
    db,
  );
  await sql`alter table users drop constraint users_balance_check, drop column balance`.execute(db);
}
