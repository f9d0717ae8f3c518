// src/schema.ts (Kysely's view) must describe exactly the tables the migrations create.
import { randomUUID } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { NO_MIGRATIONS, sql } from 'kysely';
import { describe, expect, inject, it } from 'vitest';
import { migrations } from '../../db/migrations/index.js';
import { createDb } from '../../src/database/connection.js';
import { createMigrator, unwrap } from '../../src/database/migrator.js';
import { databaseUrl, dropDatabase, ensureDatabase } from '../../src/database/embedded.js';
import type { Database } from '../../src/database/schema.js';
import { useTestApp } from '../helpers/app.js';

const ctx = useTestApp();

// Every table and column of src/schema.ts with its PostgreSQL type; `?` marks a nullable column.
// The `satisfies` clause makes TypeScript reject a missing or extra column on this side.
const EXPECTED = {
  tenants: { id: 'uuid', name: 'text', created_at: 'timestamptz' },
  api_keys: {
    id: 'uuid',
    tenant_id: 'uuid',
    name: 'text',
    prefix: 'text',
    key_hash: 'bytea',
    role: 'text',
    expires_at: 'timestamptz?',
    revoked_at: 'timestamptz?',
    created_at: 'timestamptz',
  },
  users: {
    id: 'uuid',
    tenant_id: 'uuid',
    name: 'text',
    email: 'text',
    created_at: 'timestamptz',
    updated_at: 'timestamptz',
  },
  features: {
    id: 'uuid',
    tenant_id: 'uuid',
    name: 'text',
    description: 'text?',
    created_at: 'timestamptz',
    updated_at: 'timestamptz',
  },
  subscriptions: {
    id: 'uuid',
    tenant_id: 'uuid',
    user_id: 'uuid',
    status: 'text',
    plan_cost: 'numeric',
    billing_interval: 'text',
    start_date: 'date',
    end_date: 'date?',
    canceled_at: 'timestamptz?',
    created_at: 'timestamptz',
    updated_at: 'timestamptz',
  },
  subscription_features: {
    tenant_id: 'uuid',
    subscription_id: 'uuid',
    feature_id: 'uuid',
    created_at: 'timestamptz',
  },
  subscription_rollups: {
    tenant_id: 'uuid',
    month: 'date',
    status: 'text',
    shard: 'int2',
    subscription_count: 'int8',
    plan_cost_total: 'numeric',
  },
  user_totals: { tenant_id: 'uuid', user_id: 'uuid', subscription_count: 'int8', total_value: 'numeric' },
  rate_limit_hits: { key: 'text', window_start: 'timestamptz', instance: 'uuid', hits: 'int8' },
} satisfies { [T in keyof Database]: Record<keyof Database[T], string> };

describe('the database schema', () => {
  it('matches src/schema.ts table for table, column for column', async () => {
    const { rows } = await sql<{ table_name: string; column_name: string; type: string }>`
      select table_name, column_name, udt_name || case when is_nullable = 'YES' then '?' else '' end as type
      from information_schema.columns
      where table_schema = 'public' and table_name not like 'kysely_%'`.execute(ctx.db);
    const actual: Record<string, Record<string, string>> = {};
    for (const row of rows) (actual[row.table_name] ??= {})[row.column_name] = row.type;
    expect(actual).toEqual(EXPECTED);
  });

  it('lists every migration file in db/migrations/index.ts', () => {
    const files = readdirSync('db/migrations')
      .filter((f) => /^\d{12}_.+\.ts$/.test(f))
      .map((f) => f.replace(/\.ts$/, ''));
    expect(Object.keys(migrations)).toEqual(files.sort());
  });
});

describe('migrations', () => {
  it('go up, all the way down, and up again', async () => {
    const serverUrl = inject('serverUrl');
    const name = `migrations_${randomUUID().replaceAll('-', '')}`;
    await ensureDatabase(serverUrl, name);
    const db = createDb(databaseUrl(serverUrl, name), { poolSize: 1 });
    try {
      const migrator = createMigrator(db);
      const count = Object.keys(migrations).length;
      expect(unwrap(await migrator.migrateToLatest())).toHaveLength(count);
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
