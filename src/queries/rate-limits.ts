import { sql } from 'kysely';
import type { Db } from '../database/connection.js';

export interface HitsDelta {
  key: string;
  windowStart: Date;
  hits: number;
}

/** Adds this instance's new hits, then reads each key's total over all instances for its window. */
export async function addHits(
  db: Db,
  instance: string,
  deltas: readonly HitsDelta[],
): Promise<Array<{ key: string; window_start: Date; total: string }>> {
  const keys = deltas.map((d) => d.key);
  const windows = deltas.map((d) => d.windowStart.toISOString());
  const hits = deltas.map((d) => String(d.hits));
  await sql`
    insert into rate_limit_hits as r (key, window_start, instance, hits)
    select key, window_start, ${instance}::uuid, hits
    from unnest(${keys}::text[], ${windows}::timestamptz[], ${hits}::bigint[]) as d (key, window_start, hits)
    order by key, window_start
    on conflict (key, window_start, instance) do update set hits = r.hits + excluded.hits`.execute(db);
  const { rows } = await sql<{ key: string; window_start: Date; total: string }>`
    select key, window_start, sum(hits)::text as total from rate_limit_hits
    where (key, window_start) in (select * from unnest(${keys}::text[], ${windows}::timestamptz[]))
    group by key, window_start`.execute(db);
  return rows;
}

/** Forgets windows that ended before `before`. */
export async function purgeHits(db: Db, before: Date): Promise<void> {
  await db.deleteFrom('rate_limit_hits').where('window_start', '<', before).execute();
}
