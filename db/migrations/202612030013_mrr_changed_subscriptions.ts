// Which of a dirty customer's subscriptions changed, so that counting the customer again costs
// what changed, not the customer's size.
//
// Why. A read adds, for every customer waiting for compaction, the engine's count of the customer
// now minus the count it is stored with; compaction writes the same difference. Both loaded every
// subscription of the customer. Customers are skewed: the largest of the 500,000-subscription demo
// holds 5,990 subscriptions, and loading them took 250-350 ms, so while writers touched such a
// customer every second, GET /analytics and GET /metrics/mrr paid that on most reads (p95 1.9 s
// under 12 writers) and blocked the event loop that served the writes (49 writes/s).
//
// Now the statement that changes a subscription or its feature links also records the
// subscription (mrr_dirty_subscriptions). The customer's input now is the input it is counted with
// (mrr_counted, which names each subscription since this migration) with the recorded
// subscriptions read again; the difference is counted only in the dimensions those subscriptions
// touch. A region change needs no subscription: the region is always read again.
//
// mrr_dirty.whole: the customer must be counted again from all of its rows (marks made before
// this migration, marks a person or a script adds). The triggers set it false; any other insert
// gets true. Counted inputs stored before this migration name no subscription: those customers are
// marked whole here, and the worker's compaction (or `make rebuild`) counts them again.
import { type Kysely, sql } from 'kysely';

const APP_ROLE = 'subscriptions_app';
const CURRENT_TENANT = sql`nullif(current_setting('app.tenant_id', true), '')::uuid`;
// As in 202612010002: the columns whose change changes what a subscription counts.
const RELEVANT = [
  'status',
  'plan_cost',
  'billing_interval',
  'interval_count',
  'plan_id',
  'start_date',
  'end_date',
  'canceled_at',
  'user_id',
  'test_clock_id',
];
const changed = RELEVANT.map((col) => `o.${col} is distinct from n.${col}`).join(' or ');

const record = (pairs: string) => `
  insert into mrr_dirty_subscriptions (tenant_id, user_id, subscription_id)
  select distinct x.tenant_id, x.user_id, x.subscription_id from (${pairs}) x
  on conflict do nothing`;

const BODIES: Record<string, { table: string; event: string; transitions: string; body: string }> = {
  mrr_changed_subscriptions_insert: {
    table: 'subscriptions',
    event: 'insert',
    transitions: 'new table as new_rows',
    body: record(
      'select tenant_id, user_id, id as subscription_id from new_rows where test_clock_id is null',
    ),
  },
  mrr_changed_subscriptions_update: {
    table: 'subscriptions',
    event: 'update',
    transitions: 'old table as old_rows new table as new_rows',
    body: record(`
      select n.tenant_id, n.user_id, n.id as subscription_id from new_rows n join old_rows o on o.id = n.id
      where (n.test_clock_id is null or o.test_clock_id is null) and (${changed})
      union all
      select o.tenant_id, o.user_id, o.id from new_rows n join old_rows o on o.id = n.id
      where o.test_clock_id is null and o.user_id <> n.user_id`),
  },
  mrr_changed_subscriptions_delete: {
    table: 'subscriptions',
    event: 'delete',
    transitions: 'old table as old_rows',
    body: record(
      'select tenant_id, user_id, id as subscription_id from old_rows where test_clock_id is null',
    ),
  },
  ...Object.fromEntries(
    (['insert', 'delete'] as const).map((op) => {
      const rows = op === 'insert' ? 'new_rows' : 'old_rows';
      return [
        `mrr_changed_subscription_features_${op}`,
        {
          table: 'subscription_features',
          event: op,
          transitions: `${op === 'insert' ? 'new' : 'old'} table as ${rows}`,
          body: record(`select s.tenant_id, s.user_id, s.id as subscription_id from ${rows} l
            join subscriptions s on s.tenant_id = l.tenant_id and s.id = l.subscription_id
            where s.test_clock_id is null`),
        },
      ];
    }),
  ),
};

/**
 * Each trigger fires after the one of 202612010002 that marks the customer (PostgreSQL fires a
 * relation's triggers for one event in name order): the customer's mark is locked first. A
 * compaction holding that mark has then committed before the subscription is recorded, so it
 * cannot delete a record this transaction relies on ("on conflict do nothing" with its own).
 */
const triggerName = (fn: string) => `${fn.replace('mrr_changed_', 'mrr_')}_then_subscriptions`;

/** The mark statement of 202612010002's triggers, and the same saying the mark is not whole. */
const WHOLE = 'insert into mrr_dirty (tenant_id, user_id) select distinct x.tenant_id, x.user_id from';
const PARTIAL =
  'insert into mrr_dirty (tenant_id, user_id, whole) select distinct x.tenant_id, x.user_id, false from';
const MARKING_FUNCTIONS = [
  'mrr_subscriptions_insert',
  'mrr_subscriptions_update',
  'mrr_subscriptions_delete',
  'mrr_subscription_features_insert',
  'mrr_subscription_features_delete',
  'mrr_users_update',
];

/** Rewrites each marking function's insert into mrr_dirty (exactly one each). */
async function rewriteMarks(db: Kysely<any>, from: string, to: string): Promise<void> {
  for (const fn of MARKING_FUNCTIONS) {
    const { rows } = await sql<{ def: string }>`select pg_get_functiondef(${fn}::regproc) as def`.execute(db);
    const def = rows[0]!.def;
    const count = def.split(from).length - 1;
    if (count !== 1) throw new Error(`${fn}: expected one "${from}", found ${count}`);
    await sql.raw(def.replace(from, to)).execute(db);
  }
}

export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table mrr_dirty add column whole boolean not null default true`.execute(db);
  await sql`
    create table mrr_dirty_subscriptions (
      tenant_id uuid not null default ${CURRENT_TENANT},
      user_id uuid not null,
      subscription_id uuid not null,
      primary key (tenant_id, user_id, subscription_id),
      foreign key (tenant_id) references tenants (id) on delete cascade
    )`.execute(db);
  await sql`comment on table mrr_dirty_subscriptions is
    'The subscriptions of dirty customers (mrr_dirty) that changed since they were counted: only these are read again.'`.execute(
    db,
  );
  await sql`alter table mrr_dirty_subscriptions enable row level security, force row level security`.execute(
    db,
  );
  await sql`create policy tenant_isolation on mrr_dirty_subscriptions
    using (tenant_id = ${CURRENT_TENANT}) with check (tenant_id = ${CURRENT_TENANT})`.execute(db);
  await sql`grant select, insert, update, delete on mrr_dirty_subscriptions to ${sql.id(APP_ROLE)}`.execute(
    db,
  );

  for (const [name, { table, event, transitions, body }] of Object.entries(BODIES)) {
    await sql
      .raw(
        `create function ${name}() returns trigger language plpgsql as $$
        begin
          ${body};
          return null;
        end $$`,
      )
      .execute(db);
    await sql
      .raw(
        `create trigger ${triggerName(name)} after ${event} on ${table}
        referencing ${transitions} for each statement execute function ${name}()`,
      )
      .execute(db);
  }
  await rewriteMarks(db, WHOLE, PARTIAL);

  // Counted inputs without subscription ids: counted again whole.
  await sql`
    insert into mrr_dirty (tenant_id, user_id, whole)
    select tenant_id, user_id, true from mrr_counted
    on conflict (tenant_id, user_id) do update set whole = true`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await rewriteMarks(db, PARTIAL, WHOLE);
  for (const [name, { table }] of Object.entries(BODIES)) {
    await sql.raw(`drop trigger ${triggerName(name)} on ${table}`).execute(db);
    await sql.raw(`drop function ${name}()`).execute(db);
  }
  await sql`drop table mrr_dirty_subscriptions`.execute(db);
  await sql`alter table mrr_dirty drop column whole`.execute(db);
}
