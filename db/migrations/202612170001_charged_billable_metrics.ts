// The metrics a plan ever charged (docs/usage.md: DELETE works only for a metric that no event,
// no plan and no wallet hold ever used). A plan's charges live in plans.usage_charges (jsonb),
// which forgets a charge once the plan drops it, while the invoices that charge billed still name
// the metric: deleting it then left usage lines and the margin report naming a metric that was
// gone. A plan write adds its charges' metrics here, never removes them; the foreign key makes a
// delete of such a metric fail (409) however the two interleave.
// Filled from the plans' charges and the invoices' usage lines of today.
import { type Kysely, sql } from 'kysely';

const APP_ROLE = 'subscriptions_app';
const CURRENT_TENANT = sql`nullif(current_setting('app.tenant_id', true), '')::uuid`;
// Evaluated once per statement (202612040001_tenant_policies_once.ts).
const CURRENT_TENANT_ONCE = sql`(select ${CURRENT_TENANT})`;

export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create table charged_billable_metrics (
      tenant_id uuid not null default ${CURRENT_TENANT} references tenants (id) on delete cascade,
      billable_metric_id uuid not null,
      primary key (tenant_id, billable_metric_id),
      foreign key (tenant_id, billable_metric_id) references billable_metrics (tenant_id, id)
    )`.execute(db);
  await sql`
    insert into charged_billable_metrics (tenant_id, billable_metric_id)
    select distinct m.tenant_id, m.id
    from billable_metrics m
    where exists (select from plans p where p.tenant_id = m.tenant_id
                  and p.usage_charges @> jsonb_build_array(jsonb_build_object('billable_metric_id', m.id)))
       or exists (select from invoices i where i.tenant_id = m.tenant_id
                  and i.lines @> jsonb_build_array(jsonb_build_object('usage',
                        jsonb_build_object('billable_metric_id', m.id))))`.execute(db);
  await sql`alter table charged_billable_metrics enable row level security, force row level security`.execute(
    db,
  );
  await sql`create policy tenant_isolation on charged_billable_metrics
    using (tenant_id = ${CURRENT_TENANT_ONCE}) with check (tenant_id = ${CURRENT_TENANT_ONCE})`.execute(db);
  await sql`grant select, insert on charged_billable_metrics to ${sql.id(APP_ROLE)}`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop table charged_billable_metrics`.execute(db);
}
