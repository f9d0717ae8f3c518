// Safe writes: a version on every mutable resource (ETags, If-Match), cancellations scheduled
// for a date, an append-only event log, and idempotency keys.
import { type Kysely, sql } from 'kysely';

const APP_ROLE = 'subscriptions_app';
const CURRENT_TENANT = sql`nullif(current_setting('app.tenant_id', true), '')::uuid`;
const VERSIONED = ['users', 'features', 'subscriptions'] as const;

export async function up(db: Kysely<any>): Promise<void> {
  // Every update bumps the version, whoever makes it: the ETag changes with every change.
  await sql`
    create function bump_version() returns trigger language plpgsql as $$
    begin
      new.version := old.version + 1;
      return new;
    end $$`.execute(db);
  for (const table of VERSIONED) {
    await sql`alter table ${sql.table(table)} add column version integer not null default 1`.execute(db);
    await sql`create trigger ${sql.id(`${table}_bump_version`)} before update on ${sql.table(table)}
      for each row execute function bump_version()`.execute(db);
  }

  // A cancellation scheduled for the end of a period; performed when due (services/subscriptions.ts).
  await sql`alter table subscriptions
    add column cancel_at timestamptz,
    add column cancel_reason text check (length(cancel_reason) <= 500)`.execute(db);
  // Serves the search for cancellations that are due: only subscriptions with one pending.
  await sql`create index subscriptions_cancel_at_idx on subscriptions (tenant_id, cancel_at)
    where cancel_at is not null and status <> 'canceled'`.execute(db);

  // The event log. `xid` is the writing transaction's id: the feed hands out only events of
  // transactions older than every transaction still running (pg_snapshot_xmin), in (xid, seq)
  // order, so an event committed late can never land behind a position a reader has passed.
  await sql`
    create table events (
      seq bigint generated always as identity,
      -- Random, not time-ordered: the order is the position (xid, seq), and no index is needed.
      id uuid not null default gen_random_uuid(),
      tenant_id uuid not null default ${CURRENT_TENANT} references tenants (id) on delete cascade,
      xid xid8 not null default pg_current_xact_id(),
      type text not null check (type ~ '^[a-z_]+\\.[a-z_]+$'),
      resource_type text not null,
      resource_id uuid not null,
      actor text not null,
      request_id text,
      occurred_at timestamptz not null default now(),
      data jsonb not null,
      previous jsonb,
      primary key (tenant_id, xid, seq)
    )`.execute(db);
  // Serves GET /subscriptions/{id}/events and the feed filtered by resource_id.
  await sql`create index events_resource_idx on events (tenant_id, resource_id, xid, seq)`.execute(db);

  // Immutable, for the owner too. Only a tenant's deletion removes its events (the foreign key
  // cascade, which runs inside the referential trigger: pg_trigger_depth() > 1).
  await sql`
    create function events_are_immutable() returns trigger language plpgsql as $$
    begin
      if tg_op = 'DELETE' and pg_trigger_depth() > 1
         and not exists (select from tenants where id = old.tenant_id) then
        return old;
      end if;
      raise exception 'events are immutable: % refused', lower(tg_op)
        using errcode = 'EVT01';
    end $$`.execute(db);
  await sql`create trigger events_immutable before update or delete on events
    for each row execute function events_are_immutable()`.execute(db);
  await sql`create trigger events_no_truncate before truncate on events
    for each statement execute function events_are_immutable()`.execute(db);

  // Idempotency keys, per tenant and API key. The stored reply is what a retry gets back.
  await sql`
    create table idempotency_keys (
      -- No foreign key: a key record needs no referential check on every write, and the purge
      -- removes what a deleted tenant leaves.
      tenant_id uuid not null default ${CURRENT_TENANT},
      api_key_id uuid not null,
      key text not null check (length(key) between 1 and 255),
      fingerprint text not null,
      status integer not null,
      headers jsonb not null,
      body text not null,
      created_at timestamptz not null default now(),
      primary key (tenant_id, api_key_id, key)
    )`.execute(db);
  // Serves the purge of keys older than a day: rows arrive in created_at order, so a BRIN index
  // finds the old ones while costing next to nothing on each insert.
  await sql`create index idempotency_keys_created_at_brin on idempotency_keys using brin (created_at)`.execute(
    db,
  );

  for (const table of ['events', 'idempotency_keys']) {
    await sql`alter table ${sql.table(table)} enable row level security, force row level security`.execute(
      db,
    );
    await sql`create policy tenant_isolation on ${sql.table(table)}
      using (tenant_id = ${CURRENT_TENANT}) with check (tenant_id = ${CURRENT_TENANT})`.execute(db);
  }
  await sql`grant select, insert on events to ${sql.id(APP_ROLE)}`.execute(db);
  await sql`grant select, insert, update on idempotency_keys to ${sql.id(APP_ROLE)}`.execute(db);

  // The purge crosses tenants, so it runs with its owner's rights; it deletes only expired keys.
  await sql`
    create function purge_idempotency_keys(older_than interval) returns bigint
    language sql security definer set search_path = public as $$
      with gone as (delete from idempotency_keys where created_at < now() - older_than returning 1)
      select count(*) from gone
    $$`.execute(db);
  await sql`revoke all on function purge_idempotency_keys(interval) from public`.execute(db);
  await sql`grant execute on function purge_idempotency_keys(interval) to ${sql.id(APP_ROLE)}`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop function purge_idempotency_keys(interval)`.execute(db);
  await sql`drop table idempotency_keys`.execute(db);
  await sql`drop table events`.execute(db);
  await sql`drop function events_are_immutable()`.execute(db);
  await sql`drop index subscriptions_cancel_at_idx`.execute(db);
  await sql`alter table subscriptions drop column cancel_at, drop column cancel_reason`.execute(db);
  for (const table of VERSIONED) {
    await sql`drop trigger ${sql.id(`${table}_bump_version`)} on ${sql.table(table)}`.execute(db);
    await sql`alter table ${sql.table(table)} drop column version`.execute(db);
  }
  await sql`drop function bump_version()`.execute(db);
}
