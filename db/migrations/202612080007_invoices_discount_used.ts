// The once discount an invoice used up, as the subscription had it: a draft voided (to change it,
// then invoice again) never billed anyone, so its voiding gives the discount back. It was lost:
// the invoice made again billed the full price. Null for invoices that used none (and for those
// issued before this column: an issued invoice's voiding does not give it back).
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table invoices add column discount_used jsonb`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`alter table invoices drop column discount_used`.execute(db);
}
