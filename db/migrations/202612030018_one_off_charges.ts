// One-off charges (docs/billing.md, "One-off charges"): an invoice item of kind `one_off` for the
// subscription's next invoice, and `one_off` invoices made as drafts with custom lines.
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table invoices
    drop constraint invoices_kind_check,
    add constraint invoices_kind_check check (kind in ('period', 'purchase', 'proration', 'one_off'))`.execute(
    db,
  );
  await sql`alter table invoice_items
    drop constraint invoice_items_kind_check,
    add constraint invoice_items_kind_check check (kind in ('proration_credit', 'proration_charge', 'one_off')),
    add constraint invoice_items_one_off_check check (kind <> 'one_off' or amount > 0)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`alter table invoice_items
    drop constraint invoice_items_one_off_check,
    drop constraint invoice_items_kind_check,
    add constraint invoice_items_kind_check check (kind in ('proration_credit', 'proration_charge'))`.execute(
    db,
  );
  await sql`alter table invoices
    drop constraint invoices_kind_check,
    add constraint invoices_kind_check check (kind in ('period', 'purchase', 'proration'))`.execute(db);
}
