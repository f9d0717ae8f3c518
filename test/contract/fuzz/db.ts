// The ids of a tenant's resources, to fill generated requests with real ones.
import { sql } from 'kysely';
import type { Db } from '../../../src/database/connection.js';

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
