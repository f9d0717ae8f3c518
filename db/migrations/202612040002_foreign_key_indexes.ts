// A foreign key is checked from the referencing side whenever a referenced row is deleted: with
// no index on the referencing columns, each check reads all of the tenant's rows. Deleting one
// subscription read every invoice of the tenant (23 ms a subscription with 65,000 invoices), and
// deleting an unused plan read every subscription through its versions (260 ms at 500,000,
// growing with the tenant). These indexes serve the checks of every row the API deletes, and the
// lists filtered by subscription. Foreign keys to rows never deleted (events, invoices, payments,
// refunds, wallets, grants, test clocks) need none; test/db/schema.test.ts keeps this true.
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`create index invoices_subscription_idx on invoices (tenant_id, subscription_id, id)`.execute(db);
  await sql`create index payments_subscription_idx on payments (tenant_id, subscription_id, id)`.execute(db);
  await sql`create index refunds_subscription_idx on refunds (tenant_id, subscription_id, id)`.execute(db);
  await sql`create index subscriptions_plan_version_idx on subscriptions (tenant_id, plan_version_id)
    where plan_version_id is not null`.execute(db);
  await sql`create index wallet_holds_metric_idx on wallet_holds (tenant_id, billable_metric_id)
    where billable_metric_id is not null`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const index of [
    'invoices_subscription_idx',
    'payments_subscription_idx',
    'refunds_subscription_idx',
    'subscriptions_plan_version_idx',
    'wallet_holds_metric_idx',
  ])
    await sql`drop index ${sql.id(index)}`.execute(db);
}
