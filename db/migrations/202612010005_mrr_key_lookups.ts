// The MRR functions that work on a few customers plan by key lookups only. 202612010002 turned
// nested loops off in them (a loop chosen on stale statistics had scanned a whole tenant per row);
// that made the planner hash-join the customers' rows against every subscription, version and
// feature link of the tenant instead: at 5,000,000 subscriptions, 5.4 s to derive 10 customers'
// series (every compaction, and every read while a customer awaited one). Measured with EXPLAIN
// ANALYZE there: 13 ms once the joins are index lookups.
//
// mrr_points_of reads the tables only by key (customer → subscriptions → versions, feature
// links), so it is now held to that: no hash or merge joins, no sequential scans, whatever the
// statistics say. mrr_refresh and mrr_correction get the planner's defaults back: their joins are
// between their own derived rows, where hashing is right.
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter function mrr_points_of(uuid, uuid[]) reset enable_nestloop
    set enable_hashjoin = off set enable_mergejoin = off set enable_seqscan = off`.execute(db);
  await sql`alter function mrr_refresh(uuid, uuid[]) reset enable_nestloop`.execute(db);
  await sql`alter function mrr_correction(uuid) reset enable_nestloop`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`alter function mrr_points_of(uuid, uuid[]) reset enable_hashjoin reset enable_mergejoin
    reset enable_seqscan set enable_nestloop = off`.execute(db);
  await sql`alter function mrr_refresh(uuid, uuid[]) set enable_nestloop = off`.execute(db);
  await sql`alter function mrr_correction(uuid) set enable_nestloop = off`.execute(db);
}
