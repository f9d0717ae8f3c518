// A coupon for some plans (its plan_ids) reduces the charges of those plans only: a change's
// charge lands on the next invoice, whatever plan the subscription is on by then, so the item
// keeps the plan it charges for (null for one-off charges, and for items made before this, which
// go with the subscription's plan).
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table invoice_items add column plan_id uuid`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`alter table invoice_items drop column plan_id`.execute(db);
}
