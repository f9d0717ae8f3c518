import { sql } from 'kysely';
import type { Db } from '../database/connection.js';
import type { TestClockRow } from '../database/schema.js';

const columns = [
  'id',
  'name',
  'frozen_time',
  'advanced_from',
  'status',
  'version',
  'created_at',
  'updated_at',
] as const;

export function listTestClocks(db: Db, limit: number, after?: string): Promise<TestClockRow[]> {
  let query = db
    .selectFrom('test_clocks')
    .select(columns)
    .orderBy('id', 'desc')
    .limit(limit + 1);
  if (after) query = query.where('id', '<', after);
  return query.execute();
}

export function findTestClock(db: Db, id: string): Promise<TestClockRow | undefined> {
  return db.selectFrom('test_clocks').select(columns).where('id', '=', id).executeTakeFirst();
}

export function lockTestClock(db: Db, id: string): Promise<TestClockRow | undefined> {
  return db.selectFrom('test_clocks').select(columns).where('id', '=', id).forUpdate().executeTakeFirst();
}

/** Share-locked: an advance (which locks it for update) waits for the caller's write, or it for the advance. */
export function shareLockTestClock(db: Db, id: string): Promise<TestClockRow | undefined> {
  return db.selectFrom('test_clocks').select(columns).where('id', '=', id).forShare().executeTakeFirst();
}

export function insertTestClock(db: Db, values: { name: string; frozen_time: Date }): Promise<TestClockRow> {
  return db.insertInto('test_clocks').values(values).returning(columns).executeTakeFirstOrThrow();
}

export function updateTestClock(
  db: Db,
  id: string,
  patch: { frozen_time?: Date; advanced_from?: Date; status: 'ready' | 'advancing' },
): Promise<TestClockRow> {
  return db
    .updateTable('test_clocks')
    .set({ ...patch, updated_at: sql`now()` })
    .where('id', '=', id)
    .returning(columns)
    .executeTakeFirstOrThrow();
}
