// Reads a query's rows in batches through a cursor, inside the caller's transaction: a result of
// millions of rows (a whole tenant's MRR inputs) is never held in memory at once.
import { type RawBuilder, sql } from 'kysely';
import type { Db } from './connection.js';

let opened = 0;

/** Runs `query` as a cursor of the transaction and hands its rows to `each`, `size` at a time. */
export async function forEachBatch<R>(
  db: Db,
  query: RawBuilder<R>,
  size: number,
  each: (rows: R[]) => void | Promise<void>,
): Promise<void> {
  const name = sql.id(`batches_${++opened}`);
  await sql`declare ${name} no scroll cursor for ${query}`.execute(db);
  for (;;) {
    const { rows } = await sql<R>`fetch ${sql.lit(size)} from ${name}`.execute(db);
    if (rows.length === 0) break;
    await each(rows);
  }
  await sql`close ${name}`.execute(db);
}
