// A paid grant still unpaid at its expires_at lapses: the worker voids its purchase invoice (the
// grant is canceled; docs/wallets.md, "Buying credits"). The worker looks for such grants at every
// pass, so they get a partial index of their own: only the unpaid purchases with an expiry, few.
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`create index wallet_grants_unpaid_expiry_idx on wallet_grants (expires_at)
    where invoice_id is not null and available_at is null and canceled_at is null
      and expires_at is not null`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index wallet_grants_unpaid_expiry_idx`.execute(db);
}
