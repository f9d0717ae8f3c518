// A draft invoice voided billed no one: the invoice items it took go back to pending, for the
// invoice made again (or the next one), as the once discount it used is given back. Before, they
// stayed billed by the void draft, so voiding a draft "to change it" dropped a pending credit the
// customer was owed, or a charge (retest6 #4). The trigger that keeps billed items final lets
// exactly that change through: invoice_id back to null, nothing else, while the invoice is void
// and was never issued (no number). An issued invoice voided keeps its items (voiding forgave
// them).
import { type Kysely, sql } from 'kysely';

const FINAL = (draftVoided: string) => `
  create or replace function invoice_items_are_final() returns trigger language plpgsql as $$
  begin
    if old.invoice_id is null and old.balance_transaction_id is null then return coalesce(new, old); end if;
    ${draftVoided}
    if tg_op = 'DELETE' and pg_trigger_depth() > 1
       and not exists (select from tenants where id = old.tenant_id) then
      return old;
    end if;
    raise exception 'invoice item % is billed: it cannot change', old.id using errcode = 'BIL04';
  end $$`;

export async function up(db: Kysely<any>): Promise<void> {
  await sql
    .raw(
      FINAL(`
    if tg_op = 'UPDATE' and new.invoice_id is null
       and to_jsonb(new) - 'invoice_id' = to_jsonb(old) - 'invoice_id'
       and exists (select from invoices i where i.id = old.invoice_id and i.status = 'void' and i.number is null) then
      return new;
    end if;`),
    )
    .execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql.raw(FINAL('')).execute(db);
}
