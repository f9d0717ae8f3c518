// A payment's version counts the changes a client can see (its ETag, the event log). A gateway
// timeout reschedules the submission (submit_attempts, submit_after: no response shows them) and
// recorded no event, yet bumped the version and updated_at: GET answered version 2, then 3, while
// the feed held only payment.created, and payment.failed came as version 4 (ops5). Such an update
// keeps the version and updated_at, as a subscription's usage bookkeeping does (202612070001).
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create function payments_bump_version() returns trigger language plpgsql as $$
    begin
      if (to_jsonb(new) - 'submit_attempts' - 'submit_after' - 'updated_at')
         = (to_jsonb(old) - 'submit_attempts' - 'submit_after' - 'updated_at') then
        new.updated_at := old.updated_at;
        return new;
      end if;
      new.version := old.version + 1;
      return new;
    end $$`.execute(db);
  await sql`drop trigger payments_bump_version on payments`.execute(db);
  await sql`create trigger payments_bump_version before update on payments
    for each row execute function payments_bump_version()`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop trigger payments_bump_version on payments`.execute(db);
  await sql`create trigger payments_bump_version before update on payments
    for each row execute function bump_version()`.execute(db);
  await sql`drop function payments_bump_version()`.execute(db);
}
