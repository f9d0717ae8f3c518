// A subscription's version counts the changes a client can see (its ETag, the event log). Closing
// a period's usage (usage_invoiced_until, which no response shows) is bookkeeping: since every
// renewal closes the period before it, each renewal bumped the version twice and recorded one
// event, so an ETag taken from a webhook's data never matched. Such an update keeps the version
// and updated_at.
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create function subscriptions_bump_version() returns trigger language plpgsql as $$
    begin
      if new.usage_invoiced_until is distinct from old.usage_invoiced_until
         and (to_jsonb(new) - 'usage_invoiced_until' - 'updated_at')
           = (to_jsonb(old) - 'usage_invoiced_until' - 'updated_at') then
        new.updated_at := old.updated_at;
        return new;
      end if;
      new.version := old.version + 1;
      return new;
    end $$`.execute(db);
  await sql`drop trigger subscriptions_bump_version on subscriptions`.execute(db);
  await sql`create trigger subscriptions_bump_version before update on subscriptions
    for each row execute function subscriptions_bump_version()`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop trigger subscriptions_bump_version on subscriptions`.execute(db);
  await sql`create trigger subscriptions_bump_version before update on subscriptions
    for each row execute function bump_version()`.execute(db);
  await sql`drop function subscriptions_bump_version()`.execute(db);
}
