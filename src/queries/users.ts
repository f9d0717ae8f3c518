import { sql } from 'kysely';
import type { Db } from '../database/connection.js';
import type { UserRow } from '../database/schema.js';

const columns = ['id', 'name', 'email', 'region', 'version', 'created_at', 'updated_at'] as const;

export interface UserFilter {
  limit: number;
  after?: string | undefined;
  email?: string | undefined;
}

/** Newest first; limit + 1 rows so the caller can tell whether another page follows. */
export function listUsers(db: Db, { limit, after, email }: UserFilter): Promise<UserRow[]> {
  let query = db
    .selectFrom('users')
    .select(columns)
    .orderBy('id', 'desc')
    .limit(limit + 1);
  if (after) query = query.where('id', '<', after);
  if (email !== undefined) query = query.where(sql`lower(email)`, '=', sql`lower(${email})`);
  return query.execute();
}

export function findUser(db: Db, id: string): Promise<UserRow | undefined> {
  return db.selectFrom('users').select(columns).where('id', '=', id).executeTakeFirst();
}

/** The user, locked until the transaction ends: what an update starts from. */
export function lockUser(db: Db, id: string): Promise<UserRow | undefined> {
  return db.selectFrom('users').select(columns).where('id', '=', id).forUpdate().executeTakeFirst();
}

export function insertUser(
  db: Db,
  values: { name: string; email: string; region?: string | null | undefined },
): Promise<UserRow> {
  return db.insertInto('users').values(values).returning(columns).executeTakeFirstOrThrow();
}

/** Run on a locked row (lockUser): the version trigger bumps `version`. */
export function updateUser(
  db: Db,
  id: string,
  patch: { name?: string | undefined; email?: string | undefined; region?: string | null | undefined },
): Promise<UserRow> {
  return db
    .updateTable('users')
    .set({ ...patch, updated_at: sql`now()` })
    .where('id', '=', id)
    .returning(columns)
    .executeTakeFirstOrThrow();
}

/** The deleted user, undefined when there was none. A user with subscriptions raises 23503 (restrict). */
export function deleteUser(db: Db, id: string): Promise<UserRow | undefined> {
  return db.deleteFrom('users').where('id', '=', id).returning(columns).executeTakeFirst();
}
