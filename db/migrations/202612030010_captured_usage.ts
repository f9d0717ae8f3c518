// Credits captured as usage revenue (docs/wallets.md, "Margins"): a capture may name the billable
// metric (and dimension value) its operation was, so that the usage margin report counts the
// credits it consumed (÷ the wallet's rate) as that metric's revenue.
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table wallet_holds
    add column billable_metric_id uuid,
    add column dimension text,
    add constraint wallet_holds_metric_fkey foreign key (tenant_id, billable_metric_id)
      references billable_metrics (tenant_id, id),
    add constraint wallet_holds_dimension_check check (dimension is null or billable_metric_id is not null)`.execute(
    db,
  );
  // The margin report's captures in a range of time.
  await sql`create index wallet_holds_captured_idx on wallet_holds (tenant_id, settled_at)
    where status = 'captured'`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index wallet_holds_captured_idx`.execute(db);
  await sql`alter table wallet_holds drop column dimension, drop column billable_metric_id`.execute(db);
}
