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
 * with it holds it) and reads what a finished request stored for it, in one statement.
 */
export async function claim(db: Db, apiKeyId: string, key: string): Promise<Claim> {
  const { query, answer } = claimStatement(db, apiKeyId, key);
  return answer((await db.executeQuery(query)).rows);
}

/**
 * claim's statement, and what its rows say: for a transaction that sends it ahead of its work
 * (withTenant's `lead`).
 */
export function claimStatement(
  db: Db,
  apiKeyId: string,
  key: string,
): { query: CompiledQuery; answer: (rows: readonly unknown[]) => Claim } {
  const query = sql`
    select
      pg_try_advisory_xact_lock(
        hashtextextended(current_setting('app.tenant_id') || ' ' || ${apiKeyId} || ' ' || ${key}, 0)) as locked,
      (select json_build_object('fingerprint', fingerprint, 'status', status, 'headers', headers, 'body', body)
       from idempotency_keys
       where api_key_id = ${apiKeyId} and key = ${key} and created_at > now() - ${RETENTION}::interval) as stored`.compile(
    db,
  );
  return { query, answer: answerOfClaim };
}

function answerOfClaim(rows: readonly unknown[]): Claim {
  const row = rows[0] as { locked: boolean; stored: Claim['stored'] | null } | undefined;
  return { locked: row?.locked === true, ...(row?.stored ? { stored: row.stored } : {}) };
}

/** Deletes keys older than the retention, across tenants (a SECURITY DEFINER function). */
export async function purgeExpired(db: Db): Promise<number> {
  const { rows } = await sql<{
    n: string;
  }>`select purge_idempotency_keys(${RETENTION}::interval) as n`.execute(db);
  return Number(rows[0]?.n ?? 0);
}
