// Wallet settings (docs/wallets.md): a low balance threshold for the wallet.balance_low webhook,
// and whether the wallet's credits pay its customer's usage charges. The ledger's `usage` entries
// name the invoice whose usage lines they paid; voiding that invoice gives the credits back as a
// `refund` grant and entry naming it too.
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table wallets
    add column low_balance_threshold numeric(24, 6) check (low_balance_threshold > 0),
    add column pays_usage boolean not null default false`.execute(db);
  // The wallets that pay a customer's usage, read by every invoice that bills usage.
  await sql`create index wallets_pays_usage_idx on wallets (tenant_id, user_id, id) where pays_usage`.execute(
    db,
  );
  await sql`alter table wallet_ledger
    add column invoice_id uuid,
    drop constraint wallet_ledger_type_check,
    add constraint wallet_ledger_type_check
      check (type in ('grant', 'hold', 'capture', 'release', 'expiry', 'usage', 'refund')),
    add constraint wallet_ledger_invoice_fkey foreign key (tenant_id, invoice_id)
      references invoices (tenant_id, id)`.execute(db);
  await sql`alter table wallet_grants
    drop constraint wallet_grants_kind_check,
    add constraint wallet_grants_kind_check check (kind in ('free', 'refund'))`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`alter table wallet_grants
    drop constraint wallet_grants_kind_check,
    add constraint wallet_grants_kind_check check (kind in ('free'))`.execute(db);
  await sql`alter table wallet_ledger
    drop constraint wallet_ledger_invoice_fkey,
    drop constraint wallet_ledger_type_check,
    add constraint wallet_ledger_type_check check (type in ('grant', 'hold', 'capture', 'release', 'expiry')),
    drop column invoice_id`.execute(db);
  await sql`drop index wallets_pays_usage_idx`.execute(db);
  await sql`alter table wallets drop column low_balance_threshold, drop column pays_usage`.execute(db);
}
