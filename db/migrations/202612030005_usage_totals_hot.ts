// usage_totals rows are updated by every recording of their period's events: with room left in
// each page, an update can stay on the page (a HOT update) instead of adding a new entry to the
// unique index for every changed row. Measured: see docs/usage.md, "Speed".
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table usage_totals set (fillfactor = 50)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`alter table usage_totals reset (fillfactor)`.execute(db);
}
