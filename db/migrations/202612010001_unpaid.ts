// A subscription status for dunning's other ending: `unpaid` (dunning_final_action mark_unpaid),
// invoiced each period but never collected automatically, until a payment of its failed invoices
// makes it active again.
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table subscriptions drop constraint subscriptions_status_check,
    add constraint subscriptions_status_check
      check (status in ('trialing', 'active', 'past_due', 'unpaid', 'canceled'))`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  // Unpaid subscriptions go back to what they were before this status existed.
  await sql`update subscriptions set status = 'past_due' where status = 'unpaid'`.execute(db);
  await sql`alter table subscriptions drop constraint subscriptions_status_check,
    add constraint subscriptions_status_check
      check (status in ('trialing', 'active', 'past_due', 'canceled'))`.execute(db);
}
