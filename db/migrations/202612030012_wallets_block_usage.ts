// A wallet that pays usage may block it (docs/wallets.md, "Usage paid from credits"): while its
// customer's wallets that pay usage have no available credits, their usage events are refused.
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table wallets add column blocks_usage boolean not null default false,
    add constraint wallets_blocks_usage_check check (not blocks_usage or pays_usage)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`alter table wallets drop column blocks_usage`.execute(db);
}
