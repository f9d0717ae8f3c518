// authenticate_api_key also answers when the key expires, so that the process' key cache
// (auth/key-cache.ts) keeps a key no longer than it is valid: cached for 30 s, a key that expired
// meanwhile had its requests' bodies read and refused (400) before the 401.
import { type Kysely, sql } from 'kysely';

const APP_ROLE = 'subscriptions_app';

async function define(db: Kysely<any>, withExpiry: boolean): Promise<void> {
  await sql`drop function authenticate_api_key(text, bytea)`.execute(db);
  await sql`
    create function authenticate_api_key(key_prefix text, hash bytea)
    returns table (key_id uuid, tenant_id uuid, role text ${withExpiry ? sql`, expires_at timestamptz` : sql``})
    language sql stable security definer set search_path = public as $$
      select id, tenant_id, role ${withExpiry ? sql.raw(', expires_at') : sql``} from api_keys
      where prefix = key_prefix and key_hash = hash
        and revoked_at is null and (expires_at is null or expires_at > now())
    $$`.execute(db);
  await sql`revoke all on function authenticate_api_key(text, bytea) from public`.execute(db);
  await sql`grant execute on function authenticate_api_key(text, bytea) to ${sql.id(APP_ROLE)}`.execute(db);
}

export async function up(db: Kysely<any>): Promise<void> {
  await define(db, true);
}

export async function down(db: Kysely<any>): Promise<void> {
  await define(db, false);
}
