import { sql } from 'kysely';
import type { Db } from '../database/connection.js';
import type { TenantRow } from '../database/schema.js';

/** A fresh time-ordered id, so the tenant can be named in app.tenant_id before its row exists. */
export async function newTenantId(db: Db): Promise<string> {
  const { rows } = await sql<{ id: string }>`select uuid_generate_v7() as id`.execute(db);
  return rows[0]!.id;
}

/** Must run in a transaction whose app.tenant_id is `id` (RLS lets a tenant read only itself). */
export function insertTenant(db: Db, values: { id: string; name: string }): Promise<TenantRow> {
  return db
    .insertInto('tenants')
    .values(values)
    .returning(['id', 'name', 'created_at'])
    .executeTakeFirstOrThrow();
}
