// Paid grants (docs/wallets.md): credits bought. A paid grant is billed by a `purchase` invoice on
// one of its customer's subscriptions (its account: region and taxes, payment method, test clock),
// and becomes available when that invoice is paid; voided unpaid, it is canceled.
//
// - invoices.kind: `period` (a subscription's billing period, one per period) or `purchase` (any
//   number a day): the one-per-period rule becomes a unique index on period invoices only.
// - wallet_grants: a paid grant has its invoice and price; until paid, nothing of it is left
//   (remaining 0, so it is no live grant), and available_at is null.
// - payments.initiated_by gains `purchase`: the collection of a purchase invoice, which never
//   starts dunning (a failed purchase leaves the grant pending; it may be paid or voided).
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table invoices
    add column kind text not null default 'period' check (kind in ('period', 'purchase')),
    drop constraint invoices_tenant_id_subscription_id_period_start_key`.execute(db);
  await sql`create unique index invoices_period_key on invoices (tenant_id, subscription_id, period_start)
    where kind = 'period'`.execute(db);

  await sql`alter table wallet_grants
    add column invoice_id uuid,
    add column amount numeric(16, 2) check (amount > 0),
    add column available_at timestamptz default now(),
    add column canceled_at timestamptz,
    add constraint wallet_grants_invoice_fkey foreign key (tenant_id, invoice_id) references invoices (tenant_id, id),
    drop constraint wallet_grants_kind_check,
    add constraint wallet_grants_kind_check check (kind in ('free', 'refund', 'paid')),
    add constraint wallet_grants_paid_check check ((kind = 'paid') = (invoice_id is not null and amount is not null))`.execute(
    db,
  );
  await sql`update wallet_grants set available_at = created_at`.execute(db);
  await sql`alter table wallet_grants
    add constraint wallet_grants_pending_check check (available_at is not null or remaining = 0)`.execute(db);
  // A purchase invoice's grant, found when the invoice is paid or voided.
  await sql`create unique index wallet_grants_invoice_idx on wallet_grants (tenant_id, invoice_id)
    where invoice_id is not null`.execute(db);

  await sql`alter table payments
    drop constraint payments_initiated_by_check,
    add constraint payments_initiated_by_check check (initiated_by in ('api', 'renewal', 'dunning', 'purchase'))`.execute(
    db,
  );
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`alter table payments
    drop constraint payments_initiated_by_check,
    add constraint payments_initiated_by_check check (initiated_by in ('api', 'renewal', 'dunning'))`.execute(
    db,
  );
  await sql`drop index wallet_grants_invoice_idx`.execute(db);
  await sql`alter table wallet_grants
    drop constraint wallet_grants_pending_check,
    drop constraint wallet_grants_paid_check,
    drop constraint wallet_grants_kind_check,
    add constraint wallet_grants_kind_check check (kind in ('free', 'refund')),
    drop constraint wallet_grants_invoice_fkey,
    drop column canceled_at, drop column available_at, drop column amount, drop column invoice_id`.execute(
    db,
  );
  await sql`drop index invoices_period_key`.execute(db);
  await sql`alter table invoices drop column kind,
    add constraint invoices_tenant_id_subscription_id_period_start_key unique (tenant_id, subscription_id, period_start)`.execute(
    db,
  );
}
