// The worker's search for due renewals reads two indexes instead of every subscription.
//
// Why. Since usage billing (202612030004), a canceled subscription whose plan charges usage has
// one renewal step left (the invoice of its last period's usage), and the search for due
// renewals said so with "status <> 'canceled' or <its plan charges usage>". That condition
// matches no partial index, so each search read the whole subscriptions table: 200 ms at
// 500,000 subscriptions, run back to back while writers created subscriptions to invoice, which
// slowed everything else on the server (issue 20, reads under write load). The search is now two
// branches (src/queries/due-work.ts): active ones by subscriptions_billed_until_idx, and canceled
// ones from the plans that charge usage by this index.
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`create index subscriptions_canceled_billing_idx on subscriptions (tenant_id, plan_id, billed_until)
    where status = 'canceled' and billed_until is not null`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index subscriptions_canceled_billing_idx`.execute(db);
}
