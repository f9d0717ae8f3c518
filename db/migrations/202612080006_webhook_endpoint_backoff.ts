// One failing endpoint must not hold up the others (docs/webhooks.md, "One failing endpoint does
// not hold up the others"). An endpoint backs off as a whole: after a failed attempt, none of its
// deliveries is claimed before its retry_at, so a dead endpoint with a backlog costs one attempt
// per backoff step, not one per delivery. A claim walks the enabled endpoints and takes a few due
// deliveries of each (up to a few in flight per endpoint), through an index by endpoint and due
// time; a delivery retried through the API (retry_requested) is claimed at once, whatever its
// endpoint's backoff.
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  // Bookkeeping, not part of the resource: the version trigger lists its columns, so neither
  // moves the ETag.
  await sql`alter table webhook_endpoints
    add column retry_at timestamptz,
    add column consecutive_failures integer not null default 0 check (consecutive_failures >= 0)`.execute(db);
  await sql`alter table webhook_deliveries
    add column retry_requested boolean not null default false`.execute(db);
  // Each endpoint's due deliveries, earliest first: the claim's per-endpoint probe.
  await sql`create index webhook_deliveries_endpoint_due_idx
    on webhook_deliveries (tenant_id, endpoint_id, next_attempt_at) where status = 'pending'`.execute(db);
  // Deliveries retried through the API, and claims in flight (counted per endpoint by the claim,
  // whose lease ends the next wake-up may be): few rows each.
  await sql`create index webhook_deliveries_requested_idx on webhook_deliveries (next_attempt_at)
    where retry_requested and status = 'pending'`.execute(db);
  await sql`create index webhook_deliveries_leased_idx on webhook_deliveries (tenant_id, endpoint_id)
    where leased_until is not null`.execute(db);
  // Every query it served now goes through the endpoint's index.
  await sql`drop index webhook_deliveries_due_idx`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`create index webhook_deliveries_due_idx on webhook_deliveries (next_attempt_at)
    where status = 'pending'`.execute(db);
  await sql`drop index webhook_deliveries_leased_idx`.execute(db);
  await sql`drop index webhook_deliveries_requested_idx`.execute(db);
  await sql`drop index webhook_deliveries_endpoint_due_idx`.execute(db);
  await sql`alter table webhook_deliveries drop column retry_requested`.execute(db);
  await sql`alter table webhook_endpoints drop column retry_at, drop column consecutive_failures`.execute(db);
}
