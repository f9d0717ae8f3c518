// The event feed filtered by type (GET /events?type=), in feed order: the feed was read through
// its primary key (tenant_id, xid, seq), every event of the tenant filtered, until a page was
// full. A type that is rare or absent read the whole feed: 943 ms for 168,000 events, linear in
// the feed, which only grows. Ordered by (xid, seq) within each type, this index serves one type
// in feed order from the cursor on, and several types from their own entries only (0.1 and 13 ms
// on the same feed). Events are appended at the end of their type's range: a cheap index to keep.
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`create index events_type_idx on events (tenant_id, type, xid, seq)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index events_type_idx`.execute(db);
}
