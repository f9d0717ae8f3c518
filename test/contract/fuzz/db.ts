// What the database holds, as one digest per table, and the ids of a tenant's resources.
import { type RawBuilder, sql } from 'kysely';
import type { Db } from '../../../src/database/connection.js';

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
        sql`(select count(*) || ':' || coalesce(md5(string_agg(t::text, '|' order by t::text)), '')
             from ${sql.raw(table)} t) as ${sql.id(table)}`,
    );
    digestQuery = sql<Record<string, string>>`select ${sql.join(columns)}`;
  }
  const { rows } = await digestQuery.execute(db);
  return rows[0] ?? {};
}

/** The tables whose ids fill each id-like parameter or property name. */
const TABLES: Record<string, string[]> = {
  userId: ['users'],
  user_id: ['users'],
  featureId: ['features'],
  feature_id: ['features'],
  subscriptionId: ['subscriptions'],
  subscription_id: ['subscriptions'],
  planId: ['plans'],
  plan_id: ['plans'],
  taxRateId: ['tax_rates'],
  invoiceId: ['invoices'],
  invoice_id: ['invoices'],
  paymentId: ['payments'],
  testClockId: ['test_clocks'],
  test_clock_id: ['test_clocks'],
  webhookEndpointId: ['webhook_endpoints'],
  webhookDeliveryId: ['webhook_deliveries'],
  event_id: ['events'],
  resource_id: ['users', 'subscriptions', 'features', 'invoices'],
  keyId: ['api_keys'],
};

/** The newest ids of one tenant's rows, per id-like name; `exclude` keeps ids out (the fuzzer's own key). */
export async function tenantIds(
  db: Db,
  tenantId: string,
  exclude: readonly string[],
): Promise<Map<string, string[]>> {
  const tables = [...new Set(Object.values(TABLES).flat())];
  const ids = new Map<string, string[]>();
  for (const table of tables) {
    const { rows } = await sql<{ id: string }>`
      select id::text as id from ${sql.table(table)}
      where tenant_id = ${tenantId} order by id desc limit 25`.execute(db);
    ids.set(
      table,
      rows.map((r) => r.id).filter((id) => !exclude.includes(id)),
    );
  }
  return new Map(Object.entries(TABLES).map(([name, from]) => [name, from.flatMap((t) => ids.get(t) ?? [])]));
}
