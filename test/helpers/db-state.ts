import { sql } from 'kysely';
import type { Db } from '../../src/database/connection.js';

const TABLES = [
  'tenants',
  'api_keys',
  'users',
  'features',
  'subscriptions',
  'subscription_features',
  'plans',
  'plan_versions',
  'tax_rates',
  'invoices',
  'payments',
  'coupons',
  'credit_notes',
  'refunds',
  'customer_balance_transactions',
] as const;

/** A fingerprint of every row of every table: equal fingerprints mean nothing was written. */
export async function fingerprint(db: Db): Promise<Record<string, string>> {
  const result: Record<string, string> = {};
  for (const table of TABLES) {
    const { rows } = await sql<{ digest: string }>`
      select count(*) || ':' || coalesce(md5(string_agg(t::text, '|' order by t::text)), '') as digest
      from ${sql.table(table)} t`.execute(db);
    result[table] = rows[0]?.digest ?? '';
  }
  return result;
}
