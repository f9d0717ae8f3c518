// Lists filtered by one status (GET /subscriptions?status=past_due, GET /invoices?status=open):
// they were read through the primary key, newest first, every row of the tenant compared with the
// status until a page was full. A status that is rare or absent, which is what these filters are
// for (the past-due, the open invoices), read the whole tenant: 225–400 ms for `paused` among the
// demo's 500,000 subscriptions. Ordered by id within each status, these indexes serve one status
// newest first from the cursor on (0.1 ms on the same tenant), with the values given or not (a
// prepared statement's generic plan uses them too). Several statuses in one filter still read
// through the primary key. A row's status changes a few times in its life: cheap to keep.
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`create index subscriptions_status_idx on subscriptions (tenant_id, status, id)`.execute(db);
  await sql`create index invoices_status_idx on invoices (tenant_id, status, id)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index invoices_status_idx`.execute(db);
  await sql`drop index subscriptions_status_idx`.execute(db);
}
