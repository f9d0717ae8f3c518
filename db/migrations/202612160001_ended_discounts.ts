// A repeating discount removed because it ran out (its `end` passed: the first period invoice at
// or after it removes it) is kept here, internal and never shown. Its months' periods invoiced
// again after a void (a correction made after the next renewal) are still reduced by it: without
// it, voiding March's invoice in April to fix a tax region billed March without the coupon that
// was one of its months. A discount removed by hand is not kept ("invoices made from now on are
// not discounted").
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table subscriptions add column ended_discount jsonb`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`alter table subscriptions drop column ended_discount`.execute(db);
}
