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
  /** SET ROLE on every new connection, so even a superuser's URL is subject to row-level security. */
  role?: string;
}

export function createDb(connectionString: string, { poolSize = 10, role }: DbOptions = {}): Db {
  const pool = new pg.Pool({ connectionString, max: poolSize });
  // An idle connection can die (server restart, shutdown); without a listener that crashes the process.
  pool.on('error', (error) => console.error(`idle database connection lost: ${error.message}`));
  if (role) {
    // Queued before any query the pool hands the client out for, so it always runs first.
    pool.on('connect', (client) => {
      client.query(`set role ${client.escapeIdentifier(role)}`).catch((error: Error) => {
        console.error(`set role ${role} failed: ${error.message}`);
      });
    });
  }
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
}

/**
 * Runs fn in a transaction whose rows are those of one tenant: app.tenant_id is set with
 * set_config(..., true), local to the transaction, so a pooled connection never carries one
 * request's tenant into the next.
 */
export function withTenant<T>(db: Db, tenantId: string, fn: (trx: Db) => Promise<T>): Promise<T> {
  return db.transaction().execute(async (trx) => {
    await sql`select set_config('app.tenant_id', ${tenantId}, true)`.execute(trx);
    return fn(trx);
  });
}
