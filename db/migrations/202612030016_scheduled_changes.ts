// Scheduled changes (docs/billing.md, "Changing a subscription mid-period"): a price change that
// waits for the end of the current period, made by the worker at that renewal. Kept on the
// subscription, as sent ({plan_id, quantity, plan_cost, billing_interval, effective_date,
// scheduled_at}), so that reading it costs nothing and at most one waits.
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table subscriptions add column scheduled_change jsonb`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`alter table subscriptions drop column scheduled_change`.execute(db);
}
