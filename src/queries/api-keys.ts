import { sql } from 'kysely';
import type { Db } from '../db.js';
import type { ApiKeyRole, ApiKeyRow } from '../schema.js';

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

/** False when there is no such key; revoking a revoked key keeps its first revoked_at. */
export async function revokeApiKey(db: Db, id: string): Promise<boolean> {
  const result = await db
    .updateTable('api_keys')
    .set({ revoked_at: sql`coalesce(revoked_at, now())` })
    .where('id', '=', id)
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

/** The unrevoked, unexpired admin keys, locked until the transaction ends (in id order: no deadlocks). */
export function lockActiveAdminKeys(db: Db): Promise<Array<{ id: string }>> {
  return db
    .selectFrom('api_keys')
    .select('id')
    .where('role', '=', 'admin')
    .where('revoked_at', 'is', null)
    .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', sql<Date>`now()`)]))
    .orderBy('id')
    .forUpdate()
    .execute();
}
