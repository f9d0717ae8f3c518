// Every index on usage_events is paid by every event recorded. (tenant_id, subscription_id, id)
// took a quarter of the insert of a batch of 1,000 events (EXPLAIN ANALYZE, 1,000,000 events in
// the tenant: 76 ms with it, 51 ms without), as its entries land on random pages. A subscription
// belongs to one customer, so the list filtered by subscription reads the customer's events
// through usage_events_user_idx instead, keeping those of the subscription (a customer has a few
// subscriptions): src/queries/usage.ts, listEvents.
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`drop index usage_events_subscription_idx`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`create index usage_events_subscription_idx on usage_events (tenant_id, subscription_id, id)
    where subscription_id is not null`.execute(db);
}
