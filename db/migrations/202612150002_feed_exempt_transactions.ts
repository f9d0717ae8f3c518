// The event feed hands out events of transactions older than every transaction still running
// (queries/events.ts): a transaction that can still commit events must come after every position
// read. A long transaction anywhere in the database therefore held every tenant's feed back: a
// rebuild of one tenant's MRR sums (`POST /analytics/rebuild`, `make rebuild`, `make seed`'s last
// step) holds a transaction id for its whole count, 33 s at 500,000 subscriptions and minutes at
// 5,000,000, and no tenant's feed moved meanwhile. Such a transaction never records an event, so
// the feed need not wait for it: it registers its id here (committed apart, before the long part),
// and the horizon (feed_horizon) skips the ids registered. A statement trigger refuses events from
// a registered transaction, so the skip can never lose one. No tenant data: no row-level security.
import { type Kysely, sql } from 'kysely';

const APP_ROLE = 'subscriptions_app';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create table feed_exempt_transactions (
      xid xid8 primary key,
      reason text not null,
      created_at timestamptz not null default now()
    )`.execute(db);
  await sql`grant select, insert, delete on feed_exempt_transactions to ${sql.id(APP_ROLE)}`.execute(db);
  // The oldest transaction still running that may record events, or the snapshot's xmax when none
  // is: every event of a transaction older than it is committed (or never will be).
  await sql`
    create function feed_horizon() returns xid8 language sql stable as $$
      select coalesce(
        (select min(x) from pg_snapshot_xip(pg_current_snapshot()) as x
          where not exists (select 1 from feed_exempt_transactions e where e.xid = x)),
        pg_snapshot_xmax(pg_current_snapshot()))
    $$`.execute(db);
  await sql`grant execute on function feed_horizon() to ${sql.id(APP_ROLE)}`.execute(db);
  await sql`
    create function refuse_events_of_exempt_transactions() returns trigger language plpgsql as $$
    begin
      if exists (select 1 from feed_exempt_transactions where xid = pg_current_xact_id_if_assigned()) then
        raise exception 'transaction % is exempt from the event feed''s horizon and may not record events',
          pg_current_xact_id_if_assigned();
      end if;
      return null;
    end $$`.execute(db);
  await sql`
    create trigger events_not_from_exempt_transactions before insert on events
    for each statement execute function refuse_events_of_exempt_transactions()`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop trigger events_not_from_exempt_transactions on events`.execute(db);
  await sql`drop function refuse_events_of_exempt_transactions()`.execute(db);
  await sql`drop function feed_horizon()`.execute(db);
  await sql`drop table feed_exempt_transactions`.execute(db);
}
