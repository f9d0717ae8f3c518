// Invoice items pending when a subscription ends are not lost (docs/billing.md, "Changing a
// subscription mid-period"): the worker bills them on a last invoice, and a credit left after it
// goes to the customer's balance. invoice_items.balance_transaction_id names that balance entry;
// such an item is settled, and final, as a billed one is. A new balance entry type says why.
import { type Kysely, sql } from 'kysely';

const FINAL = (settled: string) => `
  create or replace function invoice_items_are_final() returns trigger language plpgsql as $$
  begin
    if ${settled} then return coalesce(new, old); end if;
    if tg_op = 'DELETE' and pg_trigger_depth() > 1
       and not exists (select from tenants where id = old.tenant_id) then
      return old;
    end if;
    raise exception 'invoice item % is billed: it cannot change', old.id using errcode = 'BIL04';
  end $$`;

export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table invoice_items add column balance_transaction_id uuid,
    add foreign key (tenant_id, balance_transaction_id) references customer_balance_transactions (tenant_id, id),
    add check (invoice_id is null or balance_transaction_id is null)`.execute(db);
  await sql`drop index invoice_items_pending_idx`.execute(db);
  await sql`create index invoice_items_pending_idx on invoice_items (tenant_id, subscription_id)
    where invoice_id is null and balance_transaction_id is null`.execute(db);
  await sql.raw(FINAL('old.invoice_id is null and old.balance_transaction_id is null')).execute(db);
  await sql`alter table customer_balance_transactions drop constraint customer_balance_transactions_type_check,
    add constraint customer_balance_transactions_type_check
      check (type in ('credit_note', 'invoice', 'invoice_voided', 'refund_failed', 'subscription_ended'))`.execute(
    db,
  );
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`delete from customer_balance_transactions where type = 'subscription_ended'`.execute(db);
  await sql`alter table customer_balance_transactions drop constraint customer_balance_transactions_type_check,
    add constraint customer_balance_transactions_type_check
      check (type in ('credit_note', 'invoice', 'invoice_voided', 'refund_failed'))`.execute(db);
  await sql.raw(FINAL('old.invoice_id is null')).execute(db);
  await sql`drop index invoice_items_pending_idx`.execute(db);
  await sql`alter table invoice_items drop column balance_transaction_id`.execute(db);
  await sql`create index invoice_items_pending_idx on invoice_items (tenant_id, subscription_id)
    where invoice_id is null`.execute(db);
}
