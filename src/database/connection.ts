import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import type { Database } from './schema.js';

// `date` columns stay 'YYYY-MM-DD' strings: pg would turn them into Dates at local midnight.
// numeric (money) and bigint (counts) already arrive as strings, which keeps them exact.
pg.types.setTypeParser(pg.types.builtins.DATE, (value) => value);

export type Db = Kysely<Database>;

/** The role the API runs as (created by the tenancy migration): owns nothing, cannot bypass RLS. */
export const APP_ROLE = 'subscriptions_app';

export interface DbOptions {
  poolSize?: number;
  /** How long a query may wait for a connection (a free one, or a new one) before failing: 503. */
  connectTimeoutMs?: number;
}

export function createDb(
  connectionString: string,
  { poolSize = 10, connectTimeoutMs = 5000 }: DbOptions = {},
): Db {
  const pool = new pg.Pool({ connectionString, max: poolSize, connectionTimeoutMillis: connectTimeoutMs });
  // A connection can die (server restart, shutdown, network). pg emits 'error' on its client even
  // while a query is running, and an 'error' event without a listener crashes the process; the
  // running query fails with the same error, which answers 503, so these listeners only report.
  pool.on('error', (error) => console.error(`idle database connection lost: ${error.message}`));
  pool.on('connect', (client) => {
    client.on('error', () => {});
  });
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
}

/** Whose rows a transaction sees: one tenant's. */
export interface TenantScope {
  readonly tenantId: string;
}

/**
 * Runs fn in a transaction whose rows are those of one tenant. Both settings are local to the
 * transaction (set_config(..., true)), so a pooled connection never carries one request's tenant
 * into the next; and the role switch fails the transaction when refused, never running fn with
 * the login user's rights (which may bypass RLS).
 */
export function withTenant<T>(db: Db, scope: TenantScope, fn: (trx: Db) => Promise<T>): Promise<T> {
  return db.transaction().execute(async (trx) => {
    await sql`select set_config('role', ${APP_ROLE}, true), set_config('app.tenant_id', ${scope.tenantId}, true)`.execute(
      trx,
    );
    return fn(trx);
  });
}
