// Metadata and external ids (docs/api-tour.md, "Your own ids and metadata"): what a tenant's own
// systems need to find their customers and subscriptions here, never read by billing.
//
// - users.external_id: the tenant's own id for a customer, unique per tenant (a partial unique
//   index: most customers have none, and the index holds only those that do).
// - users.metadata, subscriptions.metadata: free key-value pairs as a jsonb object; null when
//   there are none (answered as {}), so existing rows and the seed's millions store nothing.
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table users
    add column external_id text check (external_id ~ '^[\\x21-\\x7E]{1,255}$'),
    add column metadata jsonb check (jsonb_typeof(metadata) = 'object')`.execute(db);
  await sql`create unique index users_external_id_key on users (tenant_id, external_id)
    where external_id is not null`.execute(db);
  await sql`alter table subscriptions
    add column metadata jsonb check (jsonb_typeof(metadata) = 'object')`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`alter table subscriptions drop column metadata`.execute(db);
  await sql`drop index users_external_id_key`.execute(db);
  await sql`alter table users drop column metadata, drop column external_id`.execute(db);
}
