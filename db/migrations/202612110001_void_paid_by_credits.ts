// An invoice that prepaid credits alone paid (total 0.00, nothing from the balance: nothing was
// collected) may be voided once paid: the void gives the credits back to their wallets, and is
// the one way to, as no credit note can credit 0.00. Every other transition stays as it was.
import { type Kysely, sql } from 'kysely';

const finalFunction = (paidToVoid: string) => `
  create or replace function invoices_are_final() returns trigger language plpgsql as $$
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
      or (old.status = 'uncollectible' and new.status in ('paid', 'void'))${paidToVoid}) then
      raise exception 'invoice status % cannot become %', old.status, new.status using errcode = 'BIL03';
    end if;
    return new;
  end $$`;

export async function up(db: Kysely<any>): Promise<void> {
  await sql
    .raw(
      finalFunction(`
      or (old.status = 'paid' and new.status = 'void' and old.total = 0 and old.amount_from_balance = 0)`),
    )
    .execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql.raw(finalFunction('')).execute(db);
}
