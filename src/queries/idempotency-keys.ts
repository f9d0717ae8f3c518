import { type CompiledQuery, sql } from 'kysely';
import type { Db } from '../database/connection.js';

/** Keys are kept, and honoured, for at least this long; purgeExpired deletes them after it. */
export const RETENTION = '24 hours';

export interface Claim {
  /** False while another transaction works on the same key. */
  locked: boolean;
  stored?: { fingerprint: string; status: number; headers: Record<string, string>; body: string };
}

/**
 * Takes the key's lock for the rest of the transaction (without waiting: a request still running
 * with it holds it) and reads what a finished request stored for it.
 */
export async function claim(db: Db, apiKeyId: string, key: string): Promise<Claim> {
  const [lock, stored] = await Promise.all([
    sql<{ locked: boolean }>`
      select pg_try_advisory_xact_lock(
        hashtextextended(current_setting('app.tenant_id') || ' ' || ${apiKeyId} || ' ' || ${key}, 0)) as locked`.execute(
      db,
    ),
    db
      .selectFrom('idempotency_keys')
      .select(['fingerprint', 'status', 'headers', 'body'])
      .where('api_key_id', '=', apiKeyId)
      .where('key', '=', key)
      .where('created_at', '>', sql<Date>`now() - ${RETENTION}::interval`)
      .executeTakeFirst(),
  ]);
  return { locked: lock.rows[0]?.locked === true, ...(stored ? { stored } : {}) };
}

/** The insert of a finished request's reply (over an expired record of the same key), compiled. */
export function store(
  db: Db,
  apiKeyId: string,
  request: { key: string; fingerprint: string },
  reply: { status: number; headers: Record<string, string>; body: string },
): CompiledQuery {
  return db
    .insertInto('idempotency_keys')
    .values({
      api_key_id: apiKeyId,
      key: request.key,
      fingerprint: request.fingerprint,
      status: reply.status,
      headers: JSON.stringify(reply.headers),
      body: reply.body,
    })
    .onConflict((oc) =>
      oc.columns(['tenant_id', 'api_key_id', 'key']).doUpdateSet((eb) => ({
        fingerprint: eb.ref('excluded.fingerprint'),
        status: eb.ref('excluded.status'),
        headers: eb.ref('excluded.headers'),
        body: eb.ref('excluded.body'),
        created_at: sql`now()`,
      })),
    )
    .compile();
}

/** Deletes keys older than the retention, across tenants (a SECURITY DEFINER function). */
export async function purgeExpired(db: Db): Promise<number> {
  const { rows } = await sql<{
    n: string;
  }>`select purge_idempotency_keys(${RETENTION}::interval) as n`.execute(db);
  return Number(rows[0]?.n ?? 0);
}
