// mrr_rebuild in batches of customers. The first version derived every series of the tenant in
// one query: its window functions sort every subscription's marks and points together, which at
// 5,000,000 subscriptions spilled tens of GB to disk and ran for more than 42 minutes. A batch
// of customers is what the compaction refreshes all day (mrr_refresh, by key lookups), and
// contributions to the buckets add up across customers, so the same result comes from refreshing
// every customer, p_batch (5,000) at a time, from empty series and buckets. Still one
// transaction, under the tenant's MRR lock.
import { type Kysely, sql } from 'kysely';
import { REBUILD_AT_ONCE } from './202612010002_mrr.js';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`drop function mrr_rebuild(uuid)`.execute(db);
  await sql
    .raw(
      `
    create function mrr_rebuild(p_tenant uuid, p_batch int default 5000) returns void language plpgsql as $$
    declare v_users uuid[];
    begin
      perform pg_advisory_xact_lock(hashtextextended('mrr:' || p_tenant::text, 0));
      delete from mrr_dirty where tenant_id = p_tenant;
      insert into subscription_versions (tenant_id, subscription_id, valid_from, status, monthly_amount, plan_id)
      select s.tenant_id, s.id, s.created_at,
             case s.status when 'canceled' then 'active' else s.status end,
             round(s.plan_cost / (s.interval_count * case s.billing_interval when 'year' then 12 else 1 end), 2),
             s.plan_id
      from subscriptions s
      where s.tenant_id = p_tenant and s.test_clock_id is null
        and not exists (select from subscription_versions v where v.tenant_id = s.tenant_id and v.subscription_id = s.id);
      delete from mrr_buckets where tenant_id = p_tenant;
      delete from mrr_series where tenant_id = p_tenant;
      for v_users in
        select array_agg(id) from (
          select u.id, (row_number() over (order by u.id) - 1) / p_batch as batch
          from users u where u.tenant_id = p_tenant) numbered
        group by batch
      loop
        perform mrr_refresh(p_tenant, v_users);
      end loop;
    end $$`,
    )
    .execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop function mrr_rebuild(uuid, int)`.execute(db);
  await sql.raw(`create ${REBUILD_AT_ONCE}`).execute(db);
}
