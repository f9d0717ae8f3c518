// Pauses (docs/billing.md, "Pauses"): a subscription `paused` from paused_at until it is resumed
// by hand or by the worker on resumes_at. The worker looks for pauses to end with an index of its
// own (the search runs every minute across tenants): only paused subscriptions with a day to resume.
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table subscriptions drop constraint subscriptions_status_check,
    add constraint subscriptions_status_check
      check (status in ('trialing', 'active', 'past_due', 'unpaid', 'paused', 'canceled')),
    add column paused_at timestamptz,
    add column resumes_at date,
    add constraint subscriptions_pause_check check ((status = 'paused') = (paused_at is not null)),
    add constraint subscriptions_resumes_at_check check (resumes_at is null or status = 'paused')`.execute(
    db,
  );
  await sql`create index subscriptions_resume_due_idx on subscriptions (resumes_at)
    where status = 'paused' and resumes_at is not null`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index subscriptions_resume_due_idx`.execute(db);
  await sql`alter table subscriptions drop constraint subscriptions_resumes_at_check,
    drop constraint subscriptions_pause_check, drop column resumes_at, drop column paused_at`.execute(db);
  // Paused subscriptions go back to what they were before this status existed.
  await sql`update subscriptions set status = 'active' where status = 'paused'`.execute(db);
  await sql`alter table subscriptions drop constraint subscriptions_status_check,
    add constraint subscriptions_status_check
      check (status in ('trialing', 'active', 'past_due', 'unpaid', 'canceled'))`.execute(db);
}
