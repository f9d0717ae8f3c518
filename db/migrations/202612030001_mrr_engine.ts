// The MRR aggregates, counted by the MRR engine (src/analytics/mrr-engine.ts) instead of SQL.
//
// Why. 202612010002 derived each customer's MRR series and their contributions to the daily
// buckets in SQL: a dozen window passes over every point. At 500,000 subscriptions the full
// derivation took 155 s even with 1 GB of work_mem (2.5M points), the rebuild 164 s, the seed's
// rebuild did not finish at 5,000,000, and a read paid ~0.6 s for each dirty customer with many
// subscriptions. The engine computes the same numbers (checked: identical buckets at 500k) in
// about 8 s at 500k, from inputs read by key or in ranges of customers, on several connections.
//
// Tables (the design is in docs/metrics.md, "How the metrics stay exact and fast"):
// - mrr_days: per dimension (plan or any × feature or any), region ('*' = any) and UTC day, what
//   every counted customer adds that day: 14 sums (money in cents). A read of one dimension sums
//   at most a few thousand rows, however large the tenant. Only the engine writes it: compaction
//   and rebuild, one at a time per tenant (advisory lock); writers never touch it, so it has no
//   hot rows and no shards.
// - mrr_counted: per customer, the input the engine counted it with (its region and
//   subscriptions, JSON). Compaction subtracts what that input contributed and adds what the
//   customer's current input contributes, so it never needs to re-derive anything else.
// - mrr_dirty (kept from 202612010002): customers whose data changed since they were counted,
//   marked by the writing statement's triggers (which also keep subscription_versions). Reads add
//   the engine's difference for them until compaction catches up, so every read is exact.
//
// Existing deployments: every customer is marked dirty here; the worker's compaction counts
// them (or `make rebuild`), and reads are exact meanwhile.
//
// Down rebuilds the previous design (202612010002 and 202612010005 run again on the data as it is
// then: the version history recorded since is rebuilt from the rows).
import { type Kysely, sql } from 'kysely';
import * as previousMrr from './202612010002_mrr.js';
import * as previousKeyLookups from './202612010005_mrr_key_lookups.js';

const APP_ROLE = 'subscriptions_app';
const CURRENT_TENANT = sql`nullif(current_setting('app.tenant_id', true), '')::uuid`;
const COLUMNS = [
  'mrr',
  'customers',
  'new_amount',
  'new_count',
  'reactivation_amount',
  'reactivation_count',
  'expansion_amount',
  'expansion_count',
  'contraction_amount',
  'contraction_count',
  'churn_amount',
  'churn_count',
  'nrr_base',
  'nrr_num',
];
const OLD_FUNCTIONS = [
  'mrr_live(uuid, uuid, uuid)',
  'mrr_correction(uuid)',
  'mrr_compact(uuid, int)',
  'mrr_expected(uuid)',
  'mrr_rebuild(uuid)',
  'mrr_refresh(uuid, uuid[])',
  'mrr_points_all(uuid)',
  'mrr_points_of(uuid, uuid[])',
];

export async function up(db: Kysely<any>): Promise<void> {
  for (const fn of OLD_FUNCTIONS) await sql.raw(`drop function ${fn}`).execute(db);
  await sql`drop table mrr_buckets`.execute(db);
  await sql`drop table mrr_series`.execute(db);

  await sql`
    create table mrr_days (
      tenant_id uuid not null default ${CURRENT_TENANT} references tenants (id) on delete cascade,
      plan_id uuid not null,
      feature_id uuid not null,
      region text not null,
      day date not null,
      ${sql.raw(COLUMNS.map((col) => `${col} bigint not null`).join(', '))},
      primary key (tenant_id, plan_id, feature_id, region, day)
    )`.execute(db);
  await sql`comment on table mrr_days is
    'Per dimension (plan_id, feature_id; all zeros = any), region (* = any) and day, what counted customers add: amounts in cents. Written by the MRR engine only.'`.execute(
    db,
  );
  await sql`
    create table mrr_counted (
      tenant_id uuid not null default ${CURRENT_TENANT},
      user_id uuid not null,
      input json not null,
      -- The consistency check compares this with the digest of the customer's input now.
      digest text generated always as (md5(input::text)) stored,
      primary key (tenant_id, user_id),
      -- Not to users: deleting a user's last subscription leaves its row until compaction, and the
      -- check's lock on the user could wait for a writer that waits for this compaction.
      foreign key (tenant_id) references tenants (id) on delete cascade
    )`.execute(db);
  await sql`comment on table mrr_counted is
    'The input (region and subscriptions) the MRR engine counted each customer with, in mrr_days.'`.execute(
    db,
  );
  for (const table of ['mrr_days', 'mrr_counted']) {
    await sql`alter table ${sql.table(table)} enable row level security, force row level security`.execute(
      db,
    );
    await sql`create policy tenant_isolation on ${sql.table(table)}
      using (tenant_id = ${CURRENT_TENANT}) with check (tenant_id = ${CURRENT_TENANT})`.execute(db);
    await sql`grant select, insert, update, delete on ${sql.table(table)} to ${sql.id(APP_ROLE)}`.execute(db);
  }

  // Everything counted so far is counted again by the engine.
  await sql`
    insert into mrr_dirty (tenant_id, user_id)
    select distinct tenant_id, user_id from subscriptions where test_clock_id is null
    on conflict do nothing`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop table mrr_counted`.execute(db);
  await sql`drop table mrr_days`.execute(db);
  // The previous design whole, created again by its own migrations: first what is left of it
  // (its triggers, the versions, the marks), as its down drops them.
  await sql`drop trigger mrr_users_update on users`.execute(db);
  await sql`drop function mrr_users_update()`.execute(db);
  for (const op of ['insert', 'delete']) {
    await sql.raw(`drop trigger mrr_subscription_features_${op} on subscription_features`).execute(db);
    await sql.raw(`drop function mrr_subscription_features_${op}()`).execute(db);
  }
  for (const op of ['insert', 'update', 'delete']) {
    await sql.raw(`drop trigger mrr_subscriptions_${op} on subscriptions`).execute(db);
    await sql.raw(`drop function mrr_subscriptions_${op}()`).execute(db);
  }
  await sql`drop table mrr_dirty`.execute(db);
  await sql`drop table subscription_versions`.execute(db);
  await previousMrr.up(db);
  await previousKeyLookups.up(db);
}
