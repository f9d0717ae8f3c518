// What the database holds, as one digest per table: equal digests before and after a request
// mean it wrote nothing.
import { type RawBuilder, sql } from 'kysely';
import type { Db } from '../../src/database/connection.js';

/**
 * Every table a request could write: the app's (events, idempotency keys, aggregates and the
 * webhook outbox included) and pg-boss's jobs. Not rate_limit_hits, which counts every request
 * by design, nor the migration bookkeeping.
 */
async function writableTables(db: Db): Promise<string[]> {
  const { rows } = await sql<{ name: string }>`
    select format('%I.%I', table_schema, table_name) as name
    from information_schema.tables
    where table_type = 'BASE TABLE'
      and (table_schema = 'public' or (table_schema = 'pgboss' and table_name = 'job'))
      and table_name not in ('rate_limit_hits', 'kysely_migration', 'kysely_migration_lock')
    order by 1`.execute(db);
  return rows.map((r) => r.name);
}

let digestQuery: RawBuilder<Record<string, string>> | undefined;

/** A digest of every row of every writable table, in one query: equal means nothing was written. */
export async function fingerprint(db: Db): Promise<Record<string, string>> {
  if (!digestQuery) {
    const columns = (await writableTables(db)).map(
      (table) =>
        // A sum of row hashes: order-independent, so no sort of every table per request.
        sql`(select count(*) || ':' || coalesce(sum(hashtextextended(t::text, 0)), 0)
             from ${sql.raw(table)} t) as ${sql.id(table)}`,
    );
    digestQuery = sql<Record<string, string>>`select ${sql.join(columns)}`;
  }
  const { rows } = await digestQuery.execute(db);
  return rows[0] ?? {};
}
