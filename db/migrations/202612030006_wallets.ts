// Prepaid credits (docs/wallets.md): wallets, the grants that fill them, the holds that reserve
// credits, and the ledger of every change.
//
// Tables, and why each:
// - wallets: one row per wallet. Every change to a wallet's credits locks this row first, so
//   changes to one wallet happen one at a time and the balance is checked and changed together:
//   it can never go below zero, whatever runs concurrently.
// - wallet_grants: credits added, each with what is left (remaining) and what pending holds
//   reserve of it (reserved, 0 <= reserved <= remaining). A wallet's balances are sums over its
//   few live grants: available = remaining - reserved, held = reserved.
// - wallet_holds and wallet_hold_parts: a hold, and which grants its credits are reserved from
//   (taken in consumption order: highest priority, soonest to expire, oldest), so that a capture
//   consumes from those grants and a release gives back to them.
// - wallet_ledger: every grant, hold, capture, release and expiry, with the balances after it and
//   who caused it, in order (seq). Append-only: a trigger refuses any update or delete (only a
//   tenant's deletion removes it).
import { type Kysely, sql } from 'kysely';

const APP_ROLE = 'subscriptions_app';
const CURRENT_TENANT = sql`nullif(current_setting('app.tenant_id', true), '')::uuid`;
const TABLES = ['wallets', 'wallet_grants', 'wallet_holds', 'wallet_hold_parts', 'wallet_ledger'] as const;
const CREDITS = sql`numeric(24, 6)`;

export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create table wallets (
      tenant_id uuid not null default ${CURRENT_TENANT} references tenants (id) on delete cascade,
      id uuid not null default uuid_generate_v7(),
      user_id uuid not null,
      name text not null check (length(btrim(name)) between 1 and 200),
      rate ${CREDITS} not null check (rate > 0),
      version integer not null default 1,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      primary key (tenant_id, id),
      foreign key (tenant_id, user_id) references users (tenant_id, id)
    )`.execute(db);
  // Serves GET /wallets?user_id=.
  await sql`create index wallets_user_idx on wallets (tenant_id, user_id, id)`.execute(db);
  await sql`create trigger wallets_bump_version before update on wallets
    for each row execute function bump_version()`.execute(db);

  await sql`
    create table wallet_grants (
      tenant_id uuid not null default ${CURRENT_TENANT} references tenants (id) on delete cascade,
      id uuid not null default uuid_generate_v7(),
      wallet_id uuid not null,
      kind text not null check (kind in ('free')),
      credits ${CREDITS} not null check (credits > 0),
      remaining ${CREDITS} not null check (remaining >= 0 and remaining <= credits),
      reserved ${CREDITS} not null default 0 check (reserved >= 0 and reserved <= remaining),
      priority integer not null default 0 check (priority between 0 and 1000),
      expires_at timestamptz,
      expired_at timestamptz,
      created_at timestamptz not null default now(),
      primary key (tenant_id, id),
      foreign key (tenant_id, wallet_id) references wallets (tenant_id, id)
    )`.execute(db);
  // A wallet's live grants (the balances, consumption order), and the expiry job's due grants.
  await sql`create index wallet_grants_live_idx on wallet_grants (tenant_id, wallet_id)
    where remaining > 0`.execute(db);
  await sql`create index wallet_grants_expiry_idx on wallet_grants (expires_at)
    where remaining > 0 and expires_at is not null`.execute(db);

  await sql`
    create table wallet_holds (
      tenant_id uuid not null default ${CURRENT_TENANT} references tenants (id) on delete cascade,
      id uuid not null default uuid_generate_v7(),
      wallet_id uuid not null,
      status text not null default 'pending' check (status in ('pending', 'captured', 'released', 'expired')),
      credits ${CREDITS} not null check (credits > 0),
      captured ${CREDITS},
      expires_at timestamptz not null,
      settled_at timestamptz,
      created_at timestamptz not null default now(),
      primary key (tenant_id, id),
      foreign key (tenant_id, wallet_id) references wallets (tenant_id, id),
      check ((status = 'pending') = (settled_at is null)),
      check ((status = 'captured') = (captured is not null))
    )`.execute(db);
  // The expiry job's due holds.
  await sql`create index wallet_holds_pending_idx on wallet_holds (expires_at) where status = 'pending'`.execute(
    db,
  );
  await sql`
    create table wallet_hold_parts (
      tenant_id uuid not null default ${CURRENT_TENANT} references tenants (id) on delete cascade,
      hold_id uuid not null,
      grant_id uuid not null,
      credits ${CREDITS} not null check (credits > 0),
      primary key (tenant_id, hold_id, grant_id),
      foreign key (tenant_id, hold_id) references wallet_holds (tenant_id, id),
      foreign key (tenant_id, grant_id) references wallet_grants (tenant_id, id)
    )`.execute(db);

  await sql`
    create table wallet_ledger (
      tenant_id uuid not null default ${CURRENT_TENANT} references tenants (id) on delete cascade,
      id uuid not null default uuid_generate_v7(),
      -- The order of the entries: a wallet's are written under its lock, so in this order (ids
      -- made in the same millisecond are not).
      seq bigint generated always as identity,
      wallet_id uuid not null,
      type text not null check (type in ('grant', 'hold', 'capture', 'release', 'expiry')),
      credits ${CREDITS} not null check (credits >= 0),
      available_after ${CREDITS} not null check (available_after >= 0),
      held_after ${CREDITS} not null check (held_after >= 0),
      grant_id uuid,
      hold_id uuid,
      -- An API key's id, or null for the system (an expiry).
      api_key_id uuid,
      created_at timestamptz not null default now(),
      primary key (tenant_id, id),
      foreign key (tenant_id, wallet_id) references wallets (tenant_id, id)
    )`.execute(db);
  // Serves GET /wallets/{id}/transactions, newest first.
  await sql`create index wallet_ledger_wallet_idx on wallet_ledger (tenant_id, wallet_id, seq)`.execute(db);
  await sql`
    create function wallet_ledger_is_append_only() returns trigger language plpgsql as $$
    begin
      if tg_op = 'DELETE' and pg_trigger_depth() > 1
         and not exists (select from tenants where id = old.tenant_id) then
        return old;
      end if;
      raise exception 'the wallet ledger is append-only: % refused', lower(tg_op) using errcode = 'WAL01';
    end $$`.execute(db);
  await sql`create trigger wallet_ledger_append_only before update or delete on wallet_ledger
    for each row execute function wallet_ledger_is_append_only()`.execute(db);
  await sql`create trigger wallet_ledger_no_truncate before truncate on wallet_ledger
    for each statement execute function wallet_ledger_is_append_only()`.execute(db);

  for (const table of TABLES) {
    await sql`alter table ${sql.table(table)} enable row level security, force row level security`.execute(
      db,
    );
    await sql`create policy tenant_isolation on ${sql.table(table)}
      using (tenant_id = ${CURRENT_TENANT}) with check (tenant_id = ${CURRENT_TENANT})`.execute(db);
  }
  await sql`grant select, insert, update, delete on wallets, wallet_grants, wallet_holds, wallet_hold_parts
    to ${sql.id(APP_ROLE)}`.execute(db);
  await sql`grant select, insert on wallet_ledger to ${sql.id(APP_ROLE)}`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop table wallet_ledger`.execute(db);
  await sql`drop function wallet_ledger_is_append_only()`.execute(db);
  await sql`drop table wallet_hold_parts`.execute(db);
  await sql`drop table wallet_holds`.execute(db);
  await sql`drop table wallet_grants`.execute(db);
  await sql`drop table wallets`.execute(db);
}
