// Overdrafts (docs/wallets.md, "Overdrafts"): a wallet's available balance may go below zero, down
// to minus its overdraft_limit.
//
// - wallets.overdraft_limit: the setting.
// - The overdraft itself is a grant of kind 'overdraft' (one per wallet, made with the setting):
//   its credits are the limit, its remaining what is not overdrawn yet, its reserved what holds
//   reserve of it. So holds, captures and usage take from it as from any grant, last, and the
//   grants' checks (remaining >= 0, reserved <= remaining) are what keep a wallet within its
//   overdraft; a wallet without one still never goes below zero. Grants that add credits repay
//   what is overdrawn first. Its credits may be 0 (the limit set back to 0).
// - The ledger's available_after may be negative from now on: the check moves to the grants.
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table wallets
    add column overdraft_limit numeric(24, 6) not null default 0 check (overdraft_limit >= 0)`.execute(db);
  await sql`alter table wallet_grants
    drop constraint wallet_grants_kind_check,
    add constraint wallet_grants_kind_check check (kind in ('free', 'refund', 'paid', 'overdraft')),
    drop constraint wallet_grants_credits_check,
    add constraint wallet_grants_credits_check check (credits > 0 or (kind = 'overdraft' and credits = 0))`.execute(
    db,
  );
  await sql`create unique index wallet_grants_overdraft_idx on wallet_grants (tenant_id, wallet_id)
    where kind = 'overdraft'`.execute(db);
  await sql`alter table wallet_ledger drop constraint wallet_ledger_available_after_check`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`delete from wallet_grants where kind = 'overdraft'`.execute(db);
  await sql`alter table wallet_ledger add constraint wallet_ledger_available_after_check
    check (available_after >= 0) not valid`.execute(db);
  await sql`drop index wallet_grants_overdraft_idx`.execute(db);
  await sql`alter table wallet_grants
    drop constraint wallet_grants_credits_check,
    add constraint wallet_grants_credits_check check (credits > 0),
    drop constraint wallet_grants_kind_check,
    add constraint wallet_grants_kind_check check (kind in ('free', 'refund', 'paid'))`.execute(db);
  await sql`alter table wallets drop column overdraft_limit`.execute(db);
}
