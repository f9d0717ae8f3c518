// Payments and refunds as wide as the invoices they pay: numeric(14, 2) stopped at
// 999,999,999,999.99 while an invoice total goes to numeric(16, 2), so an invoice the API issued
// (100 lines at the most a line may cost, plus tax) could never be paid (422), and its renewal's
// collection failed on every run. Raising a numeric's precision at the same scale rewrites nothing.
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table payments alter column amount type numeric(16, 2)`.execute(db);
  await sql`alter table refunds alter column amount type numeric(16, 2)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`alter table refunds alter column amount type numeric(14, 2)`.execute(db);
  await sql`alter table payments alter column amount type numeric(14, 2)`.execute(db);
}
