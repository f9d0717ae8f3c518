// Where a test clock's advance started. A step due before then was not due on the clock until
// then: the subscription was created (or changed) at that time, backdated. It happens at that
// time, not at its due time, so that no event of it is dated before the subscription's own.
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table test_clocks add column advanced_from timestamptz`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`alter table test_clocks drop column advanced_from`.execute(db);
}
