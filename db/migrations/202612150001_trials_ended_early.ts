// The day a trial was ended early (PATCH {"status": "active"} before its trial_end, or a trial
// without an end made active): trial_end becomes null then, as documented, and billing restarts
// on a schedule anchored that day. Without this day the trial's own period (start_date to that
// day) was lost: GET /subscriptions/{id}/usage?period_start=<start_date> answered 422 naming a
// period of the new schedule before the start, which answered 422 naming the start. Kept only
// for a trial that had days (it ended after start_date); a later start_date clears it.
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table subscriptions add column trial_ended_on date`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`alter table subscriptions drop column trial_ended_on`.execute(db);
}
