// The tax a subscription's ending credit gave back (services/invoices.ts, withTaxTheyBore): its
// balance entry (`subscription_ended`) keeps it per invoice that charged it and per rate, in the
// shape of an invoice's and a credit note's tax lines plus `invoice_id`, so that the tax report
// nets it as it nets credit notes, while that invoice stands. Null for the other entries, and for
// ending credits made before this version (the report cannot net those).
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table customer_balance_transactions add column taxes jsonb
    check (taxes is null or (type = 'subscription_ended' and jsonb_typeof(taxes) = 'array'))`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`alter table customer_balance_transactions drop column taxes`.execute(db);
}
