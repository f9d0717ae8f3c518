// Trials with an end (docs/billing.md, "Trials"): a trialing subscription becomes active on its
// trial_end, with its first invoice, by the worker; 3 days before, a subscription.trial_will_end
// event.
// - subscriptions.trial_end: the first day after the trial; trial_notified_at: when the event was
//   sent (null until then, and again when the end moves).
// - plans.trial_days: the trial a subscription created trialing on the plan gets by default.
// - The worker looks for trials to announce with an index of its own (the search runs every
//   minute across tenants): only trials with an end that were not announced yet are in it.
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table subscriptions
    add column trial_end date,
    add column trial_notified_at timestamptz,
    add constraint subscriptions_trial_end_check check (trial_end > start_date)`.execute(db);
  await sql`alter table plans add column trial_days integer check (trial_days between 1 and 730)`.execute(db);
  await sql`create index subscriptions_trial_will_end_idx on subscriptions (trial_end)
    where status = 'trialing' and trial_end is not null and trial_notified_at is null`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index subscriptions_trial_will_end_idx`.execute(db);
  await sql`alter table plans drop column trial_days`.execute(db);
  await sql`alter table subscriptions drop column trial_notified_at, drop column trial_end`.execute(db);
}
