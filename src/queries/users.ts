import { sql } from 'kysely';
import { runCompiled } from '../database/compiled.js';
import type { Db } from '../database/connection.js';
import type { UserRow } from '../database/schema.js';
import type { Metadata } from '../database/metadata.js';

const columns = [
  'id',
  'name',
  'email',
  'region',
  'balance',
  'external_id',
  'metadata',
  'version',
  'created_at',
  'updated_at',
] as const;

export interface UserFilter {
  limit: number;
  after?: string | undefined;
  email?: string | undefined;
  externalId?: string | undefined;
}

/** Newest first; limit + 1 rows so the caller can tell whether another page follows. */
export function listUsers(db: Db, { limit, after, email, externalId }: UserFilter): Promise<UserRow[]> {
  // Compiled once per combination of filters; the values in the order the query uses them.
  const values: unknown[] = [limit + 1];
  if (after) values.push(after);
  if (email !== undefined) values.push(email);
  if (externalId !== undefined) values.push(externalId);
  const key = `users.listUsers:${Boolean(after)}:${email !== undefined}:${externalId !== undefined}`;
  return runCompiled(db, key, values, (...v) => {
    let at = 1;
    let query = db
      .selectFrom('users')
      .select(columns)
      .orderBy('id', 'desc')
      .limit(v[0] as number);
    if (after) query = query.where('id', '<', v[at++] as string);
    // email_key is lower(email), stored: an index condition under RLS, as lower(email) is not.
    if (email !== undefined) query = query.where('email_key', '=', sql<string>`lower(${v[at++]})`);
    if (externalId !== undefined) query = query.where('external_id', '=', v[at] as string);
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

export interface NewUser {
  name: string;
  email: string;
  region?: string | null | undefined;
  external_id?: string | null | undefined;
  metadata?: Metadata | null | undefined;
}

export async function insertUser(db: Db, values: NewUser): Promise<UserRow> {
  // Compiled once per set of columns given (the optional ones may be left out).
  const given = (['region', 'external_id', 'metadata'] as const).filter((c) => values[c] !== undefined);
  const [row] = await runCompiled(
    db,
    `users.insertUser:${given.join(',')}`,
    [
      values.name,
      values.email,
      ...given.map((c) => (c === 'metadata' && values[c] !== null ? JSON.stringify(values[c]) : values[c])),
    ],
    (name, email, ...rest) =>
      db
        .insertInto('users')
        .values({
          name: name as string,
          email: email as string,
          ...Object.fromEntries(given.map((c, i) => [c, rest[i]])),
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
  patch: Partial<Omit<NewUser, 'metadata'>> & { metadata?: Metadata | null | undefined },
): Promise<UserRow> {
  const { metadata, ...rest } = patch;
  return db
    .updateTable('users')
    .set({
      ...rest,
      ...(metadata !== undefined ? { metadata: metadata === null ? null : JSON.stringify(metadata) } : {}),
      updated_at: sql`now()`,
    })
    .where('id', '=', id)
    .returning(columns)
    .executeTakeFirstOrThrow();
}

/** The deleted user, undefined when there was none. A user with subscriptions raises 23503 (restrict). */
export function deleteUser(db: Db, id: string): Promise<UserRow | undefined> {
  return db.deleteFrom('users').where('id', '=', id).returning(columns).executeTakeFirst();
}
