// Jobs go into pg-boss's queue in the caller's transaction: a job exists if and only if the
// write that asked for it committed (pg-boss's `db` option runs its insert on our connection).
import { CompiledQuery, sql } from 'kysely';
import PgBoss from 'pg-boss';
import type { Db } from '../database/connection.js';

/** The one queue: "perform the billing work due in this scope" (src/services/due-work.ts). */
export const DUE_QUEUE = 'billing.due';

/** Whose due work a job performs: one test clock's, or real time's (one tenant's or all). */
export interface DueScope {
  tenantId?: string;
  clockId?: string;
}

export const scopeKey = (scope: DueScope) =>
  scope.clockId ? `clock:${scope.clockId}` : `real:${scope.tenantId ?? '*'}`;

// Only ever used with a `db` per call: it never opens a connection of its own.
const sender = new PgBoss({
  db: { executeSql: () => Promise.reject(new Error('jobs are only enqueued inside a transaction')) },
});

/**
 * Enqueues due work for the scope. Without startAfter, at most one job per scope waits (pg-boss's
 * stately policy: a second request while one waits is the same job); a wake-up for a later time
 * gets its own key.
 */
export async function enqueueDue(db: Db, scope: DueScope, startAfter?: Date): Promise<void> {
  await sender.send(
    DUE_QUEUE,
    { ...scope },
    {
      singletonKey: startAfter ? `${scopeKey(scope)}@${startAfter.toISOString()}` : scopeKey(scope),
      ...(startAfter ? { startAfter } : {}),
      db: {
        executeSql: async (text: string, values: unknown[]) => {
          const result = await db.executeQuery(CompiledQuery.raw(text, values));
          return { rows: result.rows };
        },
      },
    },
  );
}

/**
 * Test clocks left `advancing` for `quietFor` with no job waiting or running to finish their
 * catch-up: their last job failed for good (JOB_RETRY_LIMIT, e.g. through a long database
 * outage). Real time's due work is found again by the minute schedule; a clock's has no schedule
 * of its own, so without this the clock would stay `advancing`, and its subscriptions refuse
 * every change, for ever. Read as the owner, across tenants.
 */
export async function findStalledClocks(
  db: Db,
  quietFor = '1 minute',
): Promise<Array<{ tenant_id: string; id: string }>> {
  const { rows } = await sql<{ tenant_id: string; id: string }>`
    select c.tenant_id, c.id from test_clocks c
    where c.status = 'advancing' and c.updated_at < now() - ${quietFor}::interval
      and not exists (
        select 1 from pgboss.job j
        where j.name = ${DUE_QUEUE} and j.singleton_key = 'clock:' || c.id::text
          and j.state in ('created', 'retry', 'active'))
    order by c.updated_at
    limit 100`.execute(db);
  return rows;
}
