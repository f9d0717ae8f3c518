// Row-level security checks the tenant once per statement, not once per row. A policy written as
// `tenant_id = nullif(current_setting(...), '')::uuid` evaluates current_setting for every row a
// scan reads: about 1 µs each, so a read summing the 966 rollup rows of a tenant spent half its
// time on it. As `tenant_id = (select ...)` the setting becomes an InitPlan, evaluated once, and
// each row compares two uuids. Who sees which row does not change, and index scans still use the
// tenant as their key. A later table's policy must take the same form (test/db/schema.test.ts checks).
import { type Kysely, sql } from 'kysely';

const PER_ROW = sql`nullif(current_setting('app.tenant_id', true), '')::uuid`;
const CURRENT_TENANT_ONCE = sql`(select nullif(current_setting('app.tenant_id', true), '')::uuid)`;

async function rewrite(db: Kysely<any>, tenant: typeof PER_ROW): Promise<void> {
  const { rows } = await sql<{ table: string }>`
    select tablename as table from pg_policies
    where schemaname = 'public' and policyname = 'tenant_isolation' and cmd = 'ALL'
    order by tablename`.execute(db);
  for (const { table } of rows) {
    await sql`alter policy tenant_isolation on ${sql.table(table)}
      using (tenant_id = ${tenant}) with check (tenant_id = ${tenant})`.execute(db);
  }
  await sql`alter policy tenant_isolation on tenants using (id = ${tenant})`.execute(db);
}

export async function up(db: Kysely<any>): Promise<void> {
  await rewrite(db, CURRENT_TENANT_ONCE);
}

export async function down(db: Kysely<any>): Promise<void> {
  await rewrite(db, PER_ROW);
}
