// Migrations: all listed, and reversible. (That src/database/schema.ts matches the tables they
// create is checked by the compiler against generated/database.ts, which make check-gen keeps true.)
import { randomUUID } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { NO_MIGRATIONS, sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { migrations } from '../../db/migrations/index.js';
import { createDb, type Db } from '../../src/database/connection.js';
import { createMigrator, unwrap } from '../../src/database/migrator.js';
import { databaseUrl, dropDatabase, ensureDatabase } from '../../src/database/embedded.js';
import { testServerUrl } from '../helpers/app.js';

describe('the database schema', () => {
  it('lists every migration file in db/migrations/index.ts', () => {
    const files = readdirSync('db/migrations')
      .filter((f) => /^\d{12}_.+\.ts$/.test(f))
      .map((f) => f.replace(/\.ts$/, ''));
    expect(Object.keys(migrations)).toEqual(files.sort());
  });
});

/** Rows that no operation deletes (a tenant's deletion aside): a key to them is never checked. */
const NEVER_DELETED = [
  'events',
  'invoices',
  'payments',
  'refunds',
  'credit_notes',
  'customer_balance_transactions',
  'wallets',
  'wallet_grants',
  'test_clocks',
];

/**
 * Foreign keys to rows that can be deleted, with no index to check them by: the index's leading
 * columns are the key's, whole or for the rows where the key is set (`col IS NOT NULL`).
 */
async function unindexedForeignKeys(db: Db): Promise<string[]> {
  const { rows } = await sql<{ key: string }>`
    select c.conrelid::regclass || '.' || c.conname as key
    from pg_constraint c
    where c.contype = 'f' and c.connamespace = 'public'::regnamespace
      and c.confrelid::regclass::text <> all (${NEVER_DELETED})
      and not exists (
        select from pg_index i
        where i.indrelid = c.conrelid
          and (i.indkey::int2[])[0:cardinality(c.conkey) - 1] @> c.conkey
          and (i.indkey::int2[])[0:cardinality(c.conkey) - 1] <@ c.conkey
          and (i.indpred is null or pg_get_expr(i.indpred, i.indrelid) ~ '^\\(\\w+ IS NOT NULL\\)$'))
    order by 1`.execute(db);
  return rows.map((r) => r.key);
}

describe('migrations', () => {
  it('go up, all the way down, and up again', async () => {
    const serverUrl = testServerUrl();
    const name = `migrations_${randomUUID().replaceAll('-', '')}`;
    await ensureDatabase(serverUrl, name);
    const db = createDb(databaseUrl(serverUrl, name), { poolSize: 1 });
    try {
      const migrator = createMigrator(db);
      const count = Object.keys(migrations).length;
      expect(unwrap(await migrator.migrateToLatest())).toHaveLength(count);
      // Every policy reads the tenant once per statement (an InitPlan), not once per row.
      const policies = await sql<{ table: string; qual: string; check: string | null }>`
        select tablename as table, qual, with_check as check from pg_policies
        where schemaname = 'public' and qual is not null order by tablename`.execute(db);
      expect(policies.rows.length).toBeGreaterThan(40);
      const once =
        /^\((tenant_)?id = \( SELECT \(NULLIF\(current_setting\('app\.tenant_id'::text, true\), ''::text\)\)::uuid AS "nullif"\)\)$/;
      for (const policy of policies.rows) {
        expect(policy.qual, policy.table).toMatch(once);
        if (policy.check !== null) expect(policy.check, policy.table).toBe(policy.qual);
      }
      expect(await unindexedForeignKeys(db)).toEqual([]);
      unwrap(await migrator.migrateTo(NO_MIGRATIONS));
      const left = await sql<{ n: number }>`
        select count(*)::int as n from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'public' and c.relname not like 'kysely_%' and c.relkind in ('r', 'i', 'S', 'v')`.execute(
        db,
      );
      const functions = await sql<{ n: number }>`
        select count(*)::int as n from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where n.nspname = 'public'`.execute(db);
      expect([left.rows[0]?.n, functions.rows[0]?.n]).toEqual([0, 0]);
      expect(unwrap(await migrator.migrateToLatest())).toHaveLength(count);
    } finally {
      await db.destroy();
      await dropDatabase(serverUrl, name);
    }
  });
});
