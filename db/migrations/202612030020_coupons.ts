// Coupons and discounts (docs/billing.md, "Coupons and discounts").
// - coupons: a tenant's discounts, terms final once created; deleted ones stay (deleted_at), since
//   discounts made from them keep running. times_redeemed is counted under the coupon's row lock,
//   so max_redemptions holds with concurrent redemptions.
// - subscriptions.discount: the coupon applied, as a snapshot of its terms with its start and end
//   (jsonb, like scheduled_change): a subscription's price and discount are read with its row.
// - MRR is net of recurring discounts: a subscription's monthly amount in its versions is now
//   subscription_monthly_amount(...), its price less a repeating or forever discount; a change of
//   discount records a version (the triggers of 202612010002 and 202612030013, rewritten here).
import { type Kysely, sql } from 'kysely';

const APP_ROLE = 'subscriptions_app';
const CURRENT_TENANT = sql`nullif(current_setting('app.tenant_id', true), '')::uuid`;

const MONTHLY = `round(plan_cost / (interval_count * case billing_interval when 'year' then 12 else 1 end), 2)`;
const NET_MONTHLY = `subscription_monthly_amount(plan_cost, billing_interval, interval_count, discount, plan_id)`;
const PLAN_CHANGED = 'o.plan_id is distinct from n.plan_id';
const PLAN_OR_DISCOUNT_CHANGED = `${PLAN_CHANGED} or o.discount is distinct from n.discount`;

/** Replaces `from` by `to` in a function's definition, expecting it `count` times. */
async function rewrite(db: Kysely<any>, fn: string, from: string, to: string, count: number): Promise<void> {
  const { rows } = await sql<{ def: string }>`select pg_get_functiondef(${fn}::regproc) as def`.execute(db);
  const def = rows[0]!.def;
  const found = def.split(from).length - 1;
  if (found !== count) throw new Error(`${fn}: expected ${count} of "${from}", found ${found}`);
  await sql.raw(def.split(from).join(to)).execute(db);
}

export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create table coupons (
      tenant_id uuid not null default ${CURRENT_TENANT} references tenants (id) on delete cascade,
      id uuid not null default uuid_generate_v7(),
      name text not null check (length(btrim(name)) between 1 and 200),
      percent_off numeric(5, 2) check (percent_off > 0 and percent_off <= 100),
      amount_off numeric(12, 2) check (amount_off > 0),
      duration text not null check (duration in ('once', 'repeating', 'forever')),
      duration_in_months int check (duration_in_months between 1 and 120),
      max_redemptions int check (max_redemptions > 0),
      redeem_by timestamptz,
      plan_ids uuid[] not null default '{}',
      times_redeemed int not null default 0,
      deleted_at timestamptz,
      created_at timestamptz not null default now(),
      primary key (tenant_id, id),
      check ((percent_off is null) <> (amount_off is null)),
      check ((duration = 'repeating') = (duration_in_months is not null)),
      check (times_redeemed >= 0 and times_redeemed <= coalesce(max_redemptions, times_redeemed))
    )`.execute(db);
  await sql`alter table coupons enable row level security, force row level security`.execute(db);
  await sql`create policy tenant_isolation on coupons
    using (tenant_id = ${CURRENT_TENANT}) with check (tenant_id = ${CURRENT_TENANT})`.execute(db);
  await sql`grant select, insert, update on coupons to ${sql.id(APP_ROLE)}`.execute(db);

  await sql`alter table subscriptions add column discount jsonb`.execute(db);
  // A month's price less its recurring discount, per month of the interval, half up: the MRR
  // engine's cents. A once discount reduces one invoice, not the recurring price; one for other
  // plans reduces nothing.
  await sql`
    create function subscription_monthly_amount(
      p_cost numeric, p_interval text, p_count int, p_discount jsonb, p_plan uuid)
    returns numeric language sql immutable parallel safe as $$
      select round((p_cost - case
          when p_discount is null or p_discount ->> 'duration' = 'once'
            or (jsonb_array_length(p_discount -> 'plan_ids') > 0
                and not coalesce(p_discount -> 'plan_ids' ? p_plan::text, false)) then 0
          when p_discount ->> 'percent_off' is not null
            then round(p_cost * (p_discount ->> 'percent_off')::numeric / 100, 2)
          else least((p_discount ->> 'amount_off')::numeric, p_cost) end)
        / (p_count * case p_interval when 'year' then 12 else 1 end), 2)
    $$`.execute(db);
  await rewrite(db, 'mrr_subscriptions_insert', MONTHLY, NET_MONTHLY, 1);
  await rewrite(db, 'mrr_subscriptions_update', MONTHLY, NET_MONTHLY, 1);
  await rewrite(db, 'mrr_subscriptions_update', PLAN_CHANGED, PLAN_OR_DISCOUNT_CHANGED, 2);
  await rewrite(db, 'mrr_changed_subscriptions_update', PLAN_CHANGED, PLAN_OR_DISCOUNT_CHANGED, 1);
}

export async function down(db: Kysely<any>): Promise<void> {
  await rewrite(db, 'mrr_changed_subscriptions_update', PLAN_OR_DISCOUNT_CHANGED, PLAN_CHANGED, 1);
  await rewrite(db, 'mrr_subscriptions_update', PLAN_OR_DISCOUNT_CHANGED, PLAN_CHANGED, 2);
  await rewrite(db, 'mrr_subscriptions_update', NET_MONTHLY, MONTHLY, 1);
  await rewrite(db, 'mrr_subscriptions_insert', NET_MONTHLY, MONTHLY, 1);
  await sql`drop function subscription_monthly_amount(numeric, text, int, jsonb, uuid)`.execute(db);
  await sql`alter table subscriptions drop column discount`.execute(db);
  await sql`drop table coupons`.execute(db);
}
