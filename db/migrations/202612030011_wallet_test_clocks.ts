// Wallets on test clocks (docs/wallets.md, "Test clocks"): a wallet may live in a test clock's
// time, as subscriptions do: its holds and grants expire in that time, and the clock's advance
// sweeps them (the worker's due work), while the real-time expiry job leaves it alone.
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table wallets add column test_clock_id uuid,
    add constraint wallets_test_clock_fkey foreign key (tenant_id, test_clock_id)
      references test_clocks (tenant_id, id) on delete restrict`.execute(db);
  await sql`create index wallets_test_clock_idx on wallets (tenant_id, test_clock_id)
    where test_clock_id is not null`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index wallets_test_clock_idx`.execute(db);
  await sql`alter table wallets drop column test_clock_id`.execute(db);
}
