import { sql } from 'kysely';
import type { Db } from '../database/connection.js';
import type { ApiKeyRole, ApiKeyRow } from '../database/schema.js';

// Never key_hash: it stays in the database.
const columns = ['id', 'name', 'prefix', 'role', 'expires_at', 'revoked_at', 'created_at'] as const;

export function listApiKeys(db: Db): Promise<ApiKeyRow[]> {
  return db.selectFrom('api_keys').select(columns).orderBy('id', 'desc').execute();
}

export function insertApiKey(
  db: Db,
  values: { name: string; prefix: string; key_hash: Buffer; role: ApiKeyRole; expires_at: Date | null },
): Promise<ApiKeyRow> {
  return db.insertInto('api_keys').values(values).returning(columns).executeTakeFirstOrThrow();
}

/**
 * The key after revocation, and whether this revoked it (false: it was revoked already, and
 * keeps its first revoked_at); undefined when there is no such key.
 */
export async function revokeApiKey(
  db: Db,
  id: string,
): Promise<{ key: ApiKeyRow; revokedNow: boolean } | undefined> {
  // The self-join reads the row as it was before the update.
  const { rows } = await sql<ApiKeyRow & { revoked_now: boolean }>`
    update api_keys k set revoked_at = coalesce(o.revoked_at, now())
    from api_keys o
    where k.id = ${id}::uuid and o.id = k.id
    returning ${sql.join(columns.map((c) => sql.ref(`k.${c}`)))}, o.revoked_at is null as revoked_now`.execute(
    db,
  );
  const row = rows[0];
  if (!row) return undefined;
  const { revoked_now, ...key } = row;
  return { key, revokedNow: revoked_now };
}

/**
 * The unrevoked admin keys that never expire, locked until the transaction ends (in id order: no
 * deadlocks). A waiter re-reads each row it waited for, so a key revoked meanwhile drops out.
 */
export function lockPermanentAdminKeys(db: Db): Promise<Array<{ id: string }>> {
  return db
    .selectFrom('api_keys')
    .select('id')
    .where('role', '=', 'admin')
    .where('revoked_at', 'is', null)
    .where('expires_at', 'is', null)
    .orderBy('id')
    .forUpdate()
    .execute();
}

/**
 * The valid (unrevoked, unexpired) key with this prefix and hash. Runs before any tenant is
 * known, through the SECURITY DEFINER function that is the app role's only way past RLS.
 */
export async function authenticateApiKey(
  db: Db,
  prefix: string,
  hash: Buffer,
): Promise<{ key_id: string; tenant_id: string; role: ApiKeyRole; expires_at: Date | null } | undefined> {
  const { rows } = await sql<{
    key_id: string;
    tenant_id: string;
    role: ApiKeyRole;
    expires_at: Date | null;
  }>`
    select key_id, tenant_id, role, expires_at from authenticate_api_key(${prefix}, ${hash})`.execute(db);
  return rows[0];
}
