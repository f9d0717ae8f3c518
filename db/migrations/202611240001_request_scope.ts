// One statement that both re-checks a request's API key and names its tenant, so a request's
// transaction can be scoped in the same round trip as its first query (pipelined). It raises
// instead of returning nothing: an invalid key must abort the transaction, so that statements
// already sent behind it fail too ("current transaction is aborted") instead of running unscoped.
import { type Kysely, sql } from 'kysely';

const APP_ROLE = 'subscriptions_app';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create function api_key_tenant(key_prefix text, hash bytea) returns uuid
    language plpgsql stable security definer set search_path = public as $$
    declare
      found uuid;
    begin
      select tenant_id into found from api_keys
      where prefix = key_prefix and key_hash = hash
        and revoked_at is null and (expires_at is null or expires_at > now());
      if found is null then
        raise exception 'the API key is not valid: unknown, expired or revoked'
          using errcode = 'KEY01'; -- this project's own code: not a connection's 28000
      end if;
      return found;
    end
    $$`.execute(db);
  await sql`revoke all on function api_key_tenant(text, bytea) from public`.execute(db);
  await sql`grant execute on function api_key_tenant(text, bytea) to ${sql.id(APP_ROLE)}`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop function api_key_tenant(text, bytea)`.execute(db);
}
