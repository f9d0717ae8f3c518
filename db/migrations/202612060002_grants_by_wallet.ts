// A wallet's grants, all of them: GET /wallets/{id}/grants pages them newest first, and a grant
// or purchase counts the credits of the wallet's unpaid purchases against the 10^18 cap. The
// live index holds only grants with credits left (not pending purchases, not used-up grants).
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`create index wallet_grants_wallet_idx on wallet_grants (tenant_id, wallet_id, id)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index wallet_grants_wallet_idx`.execute(db);
}
