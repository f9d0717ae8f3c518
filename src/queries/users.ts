import { sql } from 'kysely';
import { runCompiled } from '../database/compiled.js';
import type { Db } from '../database/connection.js';
import type { UserRow } from '../database/schema.js';

const columns = ['id', 'name', 'email', 'region', 'balance', 'version', 'created_at', 'updated_at'] as const;

export interface UserFilter {
  limit: number;
  after?: string | undefined;
  email?: string | undefined;
}

/** Newest first; limit + 1 rows so the caller can tell whether another page follows. */
export function listUsers(db: Db, { limit, after, email }: UserFilter): Promise<UserRow[]> {
  // Compiled once per combination of filters; the values in the order the query uses them.
  const values: unknown[] = [limit + 1];
  if (after) values.push(after);
  if (email !== undefined) values.push(email);
  return runCompiled(db, `users.listUsers:${Boolean(after)}:${email !== undefined}`, values, (...v) => {
    let query = db
      .selectFrom('users')
      .select(columns)
      .orderBy('id', 'desc')
      .limit(v[0] as number);
    if (after) query = query.where('id', '<', v[1] as string);
    if (email !== undefined) query = query.where(sql`lower(email)`, '=', sql`lower(${v.at(-1)})`);
    return query;
  });
}

/** The user with this id, or undefined (compiled once). */
export async function findUser(db: Db, id: string): Promise<UserRow | undefined> {
  const [row] = await runCompiled(db, 'users.findUser', [id] as const, (id) =>
    db.selectFrom('users').select(columns).where('id', '=', id),
  );
  return row;
}

/** The user, locked until the transaction ends: what an update starts from. */
export function lockUser(db: Db, id: string): Promise<UserRow | undefined> {
  return db.selectFrom('users').select(columns).where('id', '=', id).forUpdate().executeTakeFirst();
}

export async function insertUser(
  db: Db,
  values: { name: string; email: string; region?: string | null | undefined },
): Promise<UserRow> {
  // Compiled once per set of columns given (region may be left out).
  const region = values.region !== undefined;
  const [row] = await runCompiled(
    db,
    `users.insertUser:${region}`,
    region ? [values.name, values.email, values.region] : [values.name, values.email],
    (name, email, ...rest) =>
      db
        .insertInto('users')
        .values({
          name: name as string,
          email: email as string,
          ...(region ? { region: rest[0] as string | null } : {}),
        })
        .returning(columns),
  );
  if (!row) throw new Error('insert into users returned no row');
  return row;
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
