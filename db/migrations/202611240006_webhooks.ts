// Webhooks: endpoints a tenant registers, one delivery per endpoint and event (an outbox filled by
// a trigger on events, in the event's own transaction), and every attempt to deliver it.
import { type Kysely, sql } from 'kysely';

const APP_ROLE = 'subscriptions_app';
const CURRENT_TENANT = sql`nullif(current_setting('app.tenant_id', true), '')::uuid`;
const TENANT_TABLES = ['webhook_endpoints', 'webhook_deliveries', 'webhook_attempts'] as const;

export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create table webhook_endpoints (
      id uuid primary key default uuid_generate_v7(),
      tenant_id uuid not null default ${CURRENT_TENANT} references tenants (id) on delete cascade,
      url text not null check (length(url) between 1 and 2048),
      description text check (length(description) <= 500),
      enabled_events text[] not null check (cardinality(enabled_events) between 1 and 100),
      status text not null default 'enabled' check (status in ('enabled', 'disabled')),
      -- Why the system disabled it; null when enabled, or disabled through the API.
      disabled_reason text check (status = 'disabled' or disabled_reason is null),
      secret text not null check (secret ~ '^whsec_[A-Za-z0-9_-]{32,}$'),
      -- The secret before the last rotation, still signing until it expires.
      previous_secret text,
      previous_secret_expires_at timestamptz,
      -- Since when every attempt has failed (null after a success): 3 days of it disable the endpoint.
      failing_since timestamptz,
      version integer not null default 1,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      unique (tenant_id, id),
      check ((previous_secret is null) = (previous_secret_expires_at is null))
    )`.execute(db);
  // failing_since is bookkeeping, not part of the resource: it does not move the ETag.
  await sql`create trigger webhook_endpoints_bump_version before update on webhook_endpoints
    for each row when (
      (old.url, old.description, old.enabled_events, old.status, old.disabled_reason, old.secret,
       old.previous_secret, old.previous_secret_expires_at)
      is distinct from
      (new.url, new.description, new.enabled_events, new.status, new.disabled_reason, new.secret,
       new.previous_secret, new.previous_secret_expires_at))
    execute function bump_version()`.execute(db);
  // Serves the events trigger (a tenant's enabled endpoints) on every write's path, and the list.
  await sql`create index webhook_endpoints_enabled_idx on webhook_endpoints (tenant_id)
    where status = 'enabled'`.execute(db);

  await sql`
    create table webhook_deliveries (
      id uuid primary key default uuid_generate_v7(),
      tenant_id uuid not null default ${CURRENT_TENANT} references tenants (id) on delete cascade,
      endpoint_id uuid not null,
      event_id uuid not null,
      -- The event's key in events (its primary key with tenant_id), to read it back for the body.
      event_xid xid8 not null,
      event_seq bigint not null,
      event_type text not null,
      status text not null default 'pending' check (status in ('pending', 'succeeded', 'failed')),
      attempts integer not null default 0 check (attempts >= 0),
      first_attempted_at timestamptz,
      last_attempted_at timestamptz,
      last_status_code integer,
      last_error text,
      next_attempt_at timestamptz default now(),
      -- A dispatcher's claim: only the holder of the token records the attempt; after
      -- leased_until the claim is taken for a crashed worker's and the delivery is due again.
      lease_token uuid,
      leased_until timestamptz,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      unique (tenant_id, id),
      unique (endpoint_id, event_id),
      foreign key (tenant_id, endpoint_id) references webhook_endpoints (tenant_id, id) on delete cascade,
      foreign key (tenant_id, event_xid, event_seq) references events (tenant_id, xid, seq) on delete cascade,
      check ((status = 'pending') = (next_attempt_at is not null)),
      check ((lease_token is null) = (leased_until is null))
    )`.execute(db);
  // Serves the dispatcher's claim across tenants: only deliveries still to make are in it.
  await sql`create index webhook_deliveries_due_idx on webhook_deliveries (next_attempt_at)
    where status = 'pending'`.execute(db);
  // Serves GET /webhook-endpoints/{id}/deliveries, newest first.
  await sql`create index webhook_deliveries_endpoint_idx on webhook_deliveries (tenant_id, endpoint_id, id)`.execute(
    db,
  );

  await sql`
    create table webhook_attempts (
      id uuid primary key default uuid_generate_v7(),
      tenant_id uuid not null default ${CURRENT_TENANT} references tenants (id) on delete cascade,
      delivery_id uuid not null,
      number integer not null check (number >= 1),
      attempted_at timestamptz not null,
      status_code integer check (status_code between 100 and 599),
      error text check (length(error) <= 1000),
      duration_ms integer not null check (duration_ms >= 0),
      -- One record per attempt number: a worker whose lease was taken over cannot add a second.
      unique (delivery_id, number),
      foreign key (tenant_id, delivery_id) references webhook_deliveries (tenant_id, id) on delete cascade
    )`.execute(db);

  // The outbox: the deliveries of an insert's events are written by the same transaction, so an
  // event committed is an event delivered eventually, whether or not a dispatcher runs now.
  // Statement-level, and per tenant through the partial index: a tenant without enabled
  // endpoints pays one index probe per write. The notification wakes dispatchers at commit.
  await sql`
    create function events_to_webhook_deliveries() returns trigger language plpgsql as $$
    declare
      tenant uuid;
      made bigint;
      total bigint := 0;
    begin
      for tenant in select distinct tenant_id from new_events loop
        continue when not exists (
          select from webhook_endpoints where tenant_id = tenant and status = 'enabled');
        insert into webhook_deliveries (tenant_id, endpoint_id, event_id, event_xid, event_seq, event_type)
        select e.tenant_id, w.id, e.id, e.xid, e.seq, e.type
        from new_events e
        join webhook_endpoints w on w.tenant_id = e.tenant_id and w.status = 'enabled'
          and (e.type = any (w.enabled_events) or '*' = any (w.enabled_events))
        where e.tenant_id = tenant;
        get diagnostics made = row_count;
        total := total + made;
      end loop;
      if total > 0 then
        perform pg_notify('webhook_deliveries', total::text);
      end if;
      return null;
    end $$`.execute(db);
  await sql`create trigger events_webhook_deliveries after insert on events
    referencing new table as new_events
    for each statement execute function events_to_webhook_deliveries()`.execute(db);

  for (const table of TENANT_TABLES) {
    await sql`alter table ${sql.table(table)} enable row level security, force row level security`.execute(
      db,
    );
    await sql`create policy tenant_isolation on ${sql.table(table)}
      using (tenant_id = ${CURRENT_TENANT}) with check (tenant_id = ${CURRENT_TENANT})`.execute(db);
  }
  await sql`grant select, insert, update, delete on webhook_endpoints to ${sql.id(APP_ROLE)}`.execute(db);
  await sql`grant select, insert, update on webhook_deliveries to ${sql.id(APP_ROLE)}`.execute(db);
  await sql`grant select, insert on webhook_attempts to ${sql.id(APP_ROLE)}`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop trigger events_webhook_deliveries on events`.execute(db);
  await sql`drop function events_to_webhook_deliveries()`.execute(db);
  await sql`drop table webhook_attempts`.execute(db);
  await sql`drop table webhook_deliveries`.execute(db);
  await sql`drop table webhook_endpoints`.execute(db);
}
