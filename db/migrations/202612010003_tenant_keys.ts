// Every key of a tenant table includes tenant_id, so the tables can be distributed by it (Citus,
// README "Scaling"; test/db/distribution.test.ts checks the catalog). Primary keys on id alone
// become (tenant_id, id): the unique (tenant_id, id) constraints that foreign keys referenced
// until now are dropped with them, and those foreign keys recreated on the new primary keys. The
// other unique keys gain tenant_id in front. api_keys keeps its global unique prefix: a key is
// looked up by prefix before its tenant is known, so it would be a reference table there.
import { type Kysely, sql } from 'kysely';

const TABLES = [
  'users',
  'features',
  'subscriptions',
  'plans',
  'plan_versions',
  'tax_rates',
  'invoices',
  'test_clocks',
  'payments',
  'webhook_endpoints',
  'webhook_deliveries',
  'webhook_attempts',
  'api_keys',
] as const;

/** Other unique keys: [table, constraint, old columns]. */
const UNIQUES: Array<[string, string, string]> = [
  ['plan_versions', 'plan_versions_plan_id_number_key', 'plan_id, number'],
  ['webhook_attempts', 'webhook_attempts_delivery_id_number_key', 'delivery_id, number'],
  ['webhook_deliveries', 'webhook_deliveries_endpoint_id_event_id_key', 'endpoint_id, event_id'],
];

/**
 * Replaces each table's primary key by `key` (and, going back, adds the unique (tenant_id, id)
 * again). Foreign keys that reference the tables are dropped first and recreated after, bound to
 * the new keys.
 */
async function replacePrimaryKeys(db: Kysely<any>, key: string, tenantUnique = false): Promise<void> {
  const { rows: references } = await sql<{ table: string; name: string; definition: string }>`
    select con.conrelid::regclass::text as table, con.conname as name, pg_get_constraintdef(con.oid) as definition
    from pg_constraint con
    where con.contype = 'f' and con.confrelid = any (${sql.raw(`array[${TABLES.map((t) => `'${t}'::regclass`).join(', ')}]`)})`.execute(
    db,
  );
  for (const ref of references) {
    await sql.raw(`alter table ${ref.table} drop constraint ${ref.name}`).execute(db);
  }
  for (const table of TABLES) {
    const { rows } = await sql<{ name: string }>`
      select conname as name from pg_constraint
      where conrelid = ${table}::regclass and contype = 'u'
        and pg_get_constraintdef(oid) = 'UNIQUE (tenant_id, id)'`.execute(db);
    for (const { name } of rows) await sql.raw(`alter table ${table} drop constraint ${name}`).execute(db);
    await sql.raw(`alter table ${table} drop constraint ${table}_pkey`).execute(db);
    await sql.raw(`alter table ${table} add constraint ${table}_pkey primary key (${key})`).execute(db);
    if (tenantUnique) {
      await sql
        .raw(`alter table ${table} add constraint ${table}_tenant_id_id_key unique (tenant_id, id)`)
        .execute(db);
    }
  }
  for (const ref of references) {
    await sql.raw(`alter table ${ref.table} add constraint ${ref.name} ${ref.definition}`).execute(db);
  }
}

export async function up(db: Kysely<any>): Promise<void> {
  await replacePrimaryKeys(db, 'tenant_id, id');
  for (const [table, name, columns] of UNIQUES) {
    await sql
      .raw(
        `alter table ${table} drop constraint ${name},
      add constraint ${name} unique (tenant_id, ${columns})`,
      )
      .execute(db);
  }
  await sql`alter table subscription_features drop constraint subscription_features_pkey,
    add constraint subscription_features_pkey primary key (tenant_id, subscription_id, feature_id)`.execute(
    db,
  );
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`alter table subscription_features drop constraint subscription_features_pkey,
    add constraint subscription_features_pkey primary key (subscription_id, feature_id)`.execute(db);
  for (const [table, name, columns] of UNIQUES) {
    await sql
      .raw(`alter table ${table} drop constraint ${name}, add constraint ${name} unique (${columns})`)
      .execute(db);
  }
  // Back to primary keys on id, with the unique (tenant_id, id) the foreign keys referenced.
  await replacePrimaryKeys(db, 'id', true);
}
