// Dunning counts its own retries: how many of the schedule's retries (`dunning_retry_days`) an
// invoice has used, each run or passed on its day without a payment method. It was the invoice's
// payment count, which payments made through the API raised too (they are not dunning), and a
// retry that found no payment method dropped the rest of the schedule instead of using its turn.
// Existing invoices count the retries dunning made of them.
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table invoices add column dunning_retries smallint not null default 0`.execute(db);
  // Not a change a client can see: the invoices keep their versions (ETags).
  await sql`alter table invoices disable trigger invoices_bump_version`.execute(db);
  await sql`
    update invoices i set dunning_retries = d.n
    from (select tenant_id, invoice_id, count(*)::smallint as n from payments
          where initiated_by = 'dunning' group by tenant_id, invoice_id) d
    where i.tenant_id = d.tenant_id and i.id = d.invoice_id`.execute(db);
  await sql`alter table invoices enable trigger invoices_bump_version`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`alter table invoices drop column dunning_retries`.execute(db);
}
