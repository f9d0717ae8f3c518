// GET /subscriptions?plan_id= pages a plan's subscriptions newest first. The plan index gains the
// id so that page is read in order from the index (21 rows, whatever the plan's size) instead of
// every subscription of the plan sorted; it still serves "is this plan in use?" and the metrics'
// plan filter. Replaced rather than added: one index on plan_id to maintain per write, not two.
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`create index subscriptions_plan_id_id_idx on subscriptions (tenant_id, plan_id, id)
    where plan_id is not null`.execute(db);
  await sql`drop index subscriptions_plan_id_idx`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`create index subscriptions_plan_id_idx on subscriptions (tenant_id, plan_id)
    where plan_id is not null`.execute(db);
  await sql`drop index subscriptions_plan_id_id_idx`.execute(db);
}
