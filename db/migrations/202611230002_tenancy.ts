// Tenants, API keys, and row-level security: every business row belongs to one tenant, and the
// app's role can only see the tenant its transaction names in app.tenant_id.
import { type Kysely, sql } from 'kysely';

const TENANT_TABLES = ['users', 'features', 'subscriptions', 'subscription_features'] as const;
// The role the API runs as: owns nothing, cannot bypass RLS. Roles are per cluster, not per
// database, so it is created only when missing and left in place by down().
const APP_ROLE = 'subscriptions_app';
const CURRENT_TENANT = sql`nullif(current_setting('app.tenant_id', true), '')::uuid`;

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('tenants')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`uuid_generate_v7()`))
    .addColumn('name', 'text', (c) => c.notNull().check(sql`length(btrim(name)) between 1 and 200`))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();

  await db.schema
    .createTable('api_keys')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`uuid_generate_v7()`))
    .addColumn('tenant_id', 'uuid', (c) =>
      c.notNull().references('tenants.id').onDelete('cascade').defaultTo(CURRENT_TENANT),
    )
    .addColumn('name', 'text', (c) => c.notNull().check(sql`length(btrim(name)) between 1 and 200`))
    // Public and unique: finds the key's row in one index probe; safe to show in logs.
    .addColumn('prefix', 'text', (c) => c.notNull().unique())
    // SHA-256 of the whole key. Keys are 256-bit random, so a fast hash is enough (no brute force).
    .addColumn('key_hash', 'bytea', (c) => c.notNull())
    .addColumn('role', 'text', (c) =>
      c.notNull().check(sql`role in ('viewer', 'editor', 'analyst', 'admin')`),
    )
    .addColumn('expires_at', 'timestamptz')
    .addColumn('revoked_at', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await sql`create index api_keys_tenant_id_id_idx on api_keys (tenant_id, id)`.execute(db);

  // Rows written before tenancy existed go to one tenant named "default".
  await sql`
    insert into tenants (name) select 'default'
    where exists (select from users) or exists (select from features)`.execute(db);
  for (const table of TENANT_TABLES) {
    await db.schema
      .alterTable(table)
      .addColumn('tenant_id', 'uuid', (c) => c.references('tenants.id'))
      .execute();
    await sql`update ${sql.table(table)} set tenant_id = (select id from tenants where name = 'default')`.execute(
      db,
    );
    await sql`alter table ${sql.table(table)}
      alter column tenant_id set not null,
      alter column tenant_id set default ${CURRENT_TENANT}`.execute(db);
  }

  // Uniqueness is per tenant: two businesses may each have ada@example.com or a "pro" feature.
  await sql`drop index users_email_key`.execute(db);
  await sql`create unique index users_email_key on users (tenant_id, lower(email))`.execute(db);
  await sql`alter table features drop constraint features_name_key`.execute(db);
  await sql`alter table features add constraint features_name_key unique (tenant_id, name)`.execute(db);

  // (tenant_id, id) keys serve the tenant's newest-first lists and let foreign keys include the
  // tenant, so no row can point at another tenant's row (foreign key checks bypass RLS).
  for (const table of ['users', 'features', 'subscriptions'] as const) {
    await sql`alter table ${sql.table(table)} add constraint ${sql.id(`${table}_tenant_id_id_key`)} unique (tenant_id, id)`.execute(
      db,
    );
  }
  await sql`alter table subscriptions drop constraint subscriptions_user_id_fkey`.execute(db);
  await sql`alter table subscriptions add constraint subscriptions_user_id_fkey
    foreign key (tenant_id, user_id) references users (tenant_id, id) on delete restrict`.execute(db);
  await sql`drop index subscriptions_user_id_id_idx`.execute(db);
  await sql`create index subscriptions_user_id_id_idx on subscriptions (tenant_id, user_id, id)`.execute(db);
  await sql`alter table subscription_features
    drop constraint subscription_features_subscription_id_fkey,
    drop constraint subscription_features_feature_id_fkey,
    add constraint subscription_features_subscription_id_fkey foreign key (tenant_id, subscription_id)
      references subscriptions (tenant_id, id) on delete cascade,
    add constraint subscription_features_feature_id_fkey foreign key (tenant_id, feature_id)
      references features (tenant_id, id) on delete restrict`.execute(db);
  await sql`drop index subscription_features_feature_id_idx`.execute(db);
  await sql`create index subscription_features_feature_id_idx on subscription_features (tenant_id, feature_id)`.execute(
    db,
  );

  await sql`
    do $$ begin
      if not exists (select from pg_roles where rolname = ${sql.lit(APP_ROLE)}) then
        create role ${sql.id(APP_ROLE)} nologin nobypassrls;
      end if;
    end $$`.execute(db);
  await sql`grant usage on schema public to ${sql.id(APP_ROLE)}`.execute(db);

  for (const table of [...TENANT_TABLES, 'api_keys'] as const) {
    await sql`alter table ${sql.table(table)} enable row level security, force row level security`.execute(
      db,
    );
    await sql`create policy tenant_isolation on ${sql.table(table)}
      using (tenant_id = ${CURRENT_TENANT}) with check (tenant_id = ${CURRENT_TENANT})`.execute(db);
    await sql`grant select, insert, update, delete on ${sql.table(table)} to ${sql.id(APP_ROLE)}`.execute(db);
  }
  // A tenant sees only itself; creating tenants is the platform operator's job, and inserts are
  // made in a transaction that then names the new tenant.
  await sql`alter table tenants enable row level security, force row level security`.execute(db);
  await sql`create policy tenant_isolation on tenants for select using (id = ${CURRENT_TENANT})`.execute(db);
  await sql`create policy tenant_creation on tenants for insert with check (true)`.execute(db);
  await sql`grant select, insert on tenants to ${sql.id(APP_ROLE)}`.execute(db);

  // Authentication must find a key before any tenant is known: this function (run with its
  // owner's rights) is the app role's only way past RLS, and answers only for a matching hash.
  await sql`
    create function authenticate_api_key(key_prefix text, hash bytea)
    returns table (key_id uuid, tenant_id uuid, role text)
    language sql stable security definer set search_path = public as $$
      select id, tenant_id, role from api_keys
      where prefix = key_prefix and key_hash = hash
        and revoked_at is null and (expires_at is null or expires_at > now())
    $$`.execute(db);
  await sql`revoke all on function authenticate_api_key(text, bytea) from public`.execute(db);
  await sql`grant execute on function authenticate_api_key(text, bytea) to ${sql.id(APP_ROLE)}`.execute(db);
  await sql`grant execute on function uuid_generate_v7() to ${sql.id(APP_ROLE)}`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop function authenticate_api_key(text, bytea)`.execute(db);
  for (const table of [...TENANT_TABLES, 'tenants'] as const) {
    await sql`drop policy if exists tenant_isolation on ${sql.table(table)}`.execute(db);
    await sql`alter table ${sql.table(table)} disable row level security, no force row level security`.execute(
      db,
    );
  }
  await sql`drop policy tenant_creation on tenants`.execute(db);
  await sql`revoke all on all tables in schema public from ${sql.id(APP_ROLE)}`.execute(db);
  await sql`revoke all on function uuid_generate_v7() from ${sql.id(APP_ROLE)}`.execute(db);
  await sql`revoke usage on schema public from ${sql.id(APP_ROLE)}`.execute(db);

  await sql`alter table subscription_features
    drop constraint subscription_features_subscription_id_fkey,
    drop constraint subscription_features_feature_id_fkey,
    add constraint subscription_features_subscription_id_fkey foreign key (subscription_id)
      references subscriptions (id) on delete cascade,
    add constraint subscription_features_feature_id_fkey foreign key (feature_id)
      references features (id) on delete restrict`.execute(db);
  await sql`drop index subscription_features_feature_id_idx`.execute(db);
  await sql`create index subscription_features_feature_id_idx on subscription_features (feature_id)`.execute(
    db,
  );
  await sql`alter table subscriptions drop constraint subscriptions_user_id_fkey`.execute(db);
  await sql`alter table subscriptions add constraint subscriptions_user_id_fkey
    foreign key (user_id) references users (id) on delete restrict`.execute(db);
  await sql`drop index subscriptions_user_id_id_idx`.execute(db);
  await sql`create index subscriptions_user_id_id_idx on subscriptions (user_id, id)`.execute(db);
  for (const table of ['users', 'features', 'subscriptions'] as const) {
    await sql`alter table ${sql.table(table)} drop constraint ${sql.id(`${table}_tenant_id_id_key`)}`.execute(
      db,
    );
  }
  await sql`alter table features drop constraint features_name_key`.execute(db);
  await sql`alter table features add constraint features_name_key unique (name)`.execute(db);
  await sql`drop index users_email_key`.execute(db);
  await sql`create unique index users_email_key on users (lower(email))`.execute(db);
  for (const table of TENANT_TABLES) {
    await db.schema.alterTable(table).dropColumn('tenant_id').execute();
  }
  await db.schema.dropTable('api_keys').execute();
  await db.schema.dropTable('tenants').execute();
}
