// Reads a query's rows in batches through a cursor, inside the caller's transaction: a result of
// millions of rows (a whole tenant's MRR inputs) is never held in memory at once.
import { type RawBuilder, sql } from 'kysely';
import type { Db } from './connection.js';

let opened = 0;

export interface BatchOptions {
  /**
   * Planner settings (e.g. enable_hashjoin: 'off') in force only while the cursor is planned: a
   * cursor's plan is made when it is declared, so the transaction's later statements keep theirs.
   */
  planWith?: Record<string, string>;
}

/** Runs `query` as a cursor of the transaction and hands its rows to `each`, `size` at a time. */
export async function forEachBatch<R>(
  db: Db,
  query: RawBuilder<R>,
  size: number,
  each: (rows: R[]) => void | Promise<void>,
  { planWith = {} }: BatchOptions = {},
): Promise<void> {
  const name = sql.id(`batches_${++opened}`);
  const settings = Object.entries(planWith);
  const names = settings.map(([setting]) => setting);
  const { rows: before } =
    settings.length === 0
      ? { rows: [] }
      : await sql<{
          value: string;
        }>`select current_setting(name) as value from unnest(${names}::text[]) with ordinality as s (name, n) order by n`.execute(
          db,
        );
  const setAll = (values: readonly string[]) =>
    sql`select set_config(name, value, true) from unnest(${names}::text[], ${values}::text[]) as s (name, value)`.execute(
      db,
    );
  if (settings.length > 0) await setAll(settings.map(([, value]) => value));
  await sql`declare ${name} no scroll cursor for ${query}`.execute(db);
  if (settings.length > 0) await setAll(before.map((b) => b.value));
  for (;;) {
    const { rows } = await sql<R>`fetch ${sql.lit(size)} from ${name}`.execute(db);
    if (rows.length === 0) break;
    await each(rows);
  }
  await sql`close ${name}`.execute(db);
}
