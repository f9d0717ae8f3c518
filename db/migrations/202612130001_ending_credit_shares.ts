// What each invoice's days gave of a subscription's ending credit (services/invoices.ts,
// withTaxTheyBore): its balance entry (`subscription_ended`) keeps, per invoice that charged the
// days it gives back, that invoice's share with its tax, `[{ "invoice_id", "amount" }]`. A void or
// a credit note of one of those invoices later withholds its share only (the rest of the credit,
// for days another invoice charged, is still the customer's). Null for the other entries, and for
// ending credits made before this version (their share is found from the days, as before).
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table customer_balance_transactions add column invoice_shares jsonb
    check (invoice_shares is null or (type = 'subscription_ended' and jsonb_typeof(invoice_shares) = 'array'))`.execute(
    db,
  );
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`alter table customer_balance_transactions drop column invoice_shares`.execute(db);
}
