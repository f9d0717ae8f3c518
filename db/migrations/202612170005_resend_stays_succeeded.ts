// A delivered webhook sent again on request stays `succeeded` while that attempt waits and runs,
// not `pending` (retest15 #4). So a delivery is due (next_attempt_at set) when pending, or when
// succeeded and sent again on request (retry_requested); the deliveries retried through the API
// are those with retry_requested, pending or succeeded, and their index covers both. The check
// is added NOT VALID and validated after, so the scan holds no lock that stops writes.
import { type Kysely, sql } from 'kysely';

async function due(db: Kysely<any>, rule: string) {
  await sql`alter table webhook_deliveries drop constraint webhook_deliveries_check`.execute(db);
  await sql
    .raw(`alter table webhook_deliveries add constraint webhook_deliveries_check check (${rule}) not valid`)
    .execute(db);
  await sql`alter table webhook_deliveries validate constraint webhook_deliveries_check`.execute(db);
}

export async function up(db: Kysely<any>): Promise<void> {
  await due(
    db,
    `(status = 'pending' or (status = 'succeeded' and retry_requested)) = (next_attempt_at is not null)`,
  );
  await sql`drop index webhook_deliveries_requested_idx`.execute(db);
  await sql`create index webhook_deliveries_requested_idx on webhook_deliveries (next_attempt_at)
    where retry_requested`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`update webhook_deliveries set status = 'pending'
    where status = 'succeeded' and retry_requested`.execute(db);
  await due(db, `(status = 'pending') = (next_attempt_at is not null)`);
  await sql`drop index webhook_deliveries_requested_idx`.execute(db);
  await sql`create index webhook_deliveries_requested_idx on webhook_deliveries (next_attempt_at)
    where retry_requested and status = 'pending'`.execute(db);
}
