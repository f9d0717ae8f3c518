// A voided period invoice no longer holds its period: POST /subscriptions/{id}/invoices makes a
// new draft for it (void a draft to change it, then invoice again). One live (not void) period
// invoice per subscription and period, as before; voided ones stay beside it.
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`drop index invoices_period_key`.execute(db);
  await sql`create unique index invoices_period_key on invoices (tenant_id, subscription_id, period_start, period_end)
    where kind = 'period' and status <> 'void'`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index invoices_period_key`.execute(db);
  await sql`create unique index invoices_period_key on invoices (tenant_id, subscription_id, period_start, period_end)
    where kind = 'period'`.execute(db);
}
