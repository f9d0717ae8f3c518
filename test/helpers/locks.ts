// Holds row locks in a transaction of the owner's until released, so a test can put requests in
// flight behind them at a known point.
import { type RawBuilder, sql } from 'kysely';
import type { Db } from '../../src/database/connection.js';

export interface HeldLocks {
  release(): Promise<void>;
}

/** Runs the locking statement (e.g. `select ... for update`) and keeps its transaction open. */
export async function holdLocks(db: Db, statement: RawBuilder<unknown>): Promise<HeldLocks> {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let locked!: () => void;
  let failed!: (error: unknown) => void;
  const isLocked = new Promise<void>((resolve, reject) => ((locked = resolve), (failed = reject)));
  const transaction = db
    .transaction()
    .execute(async (trx) => {
      await statement.execute(trx);
      locked();
      await released;
    })
    .catch(failed);
  await isLocked;
  return {
    release: async () => {
      release();
      await transaction;
    },
  };
}

export const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Resolves once at least `count` sessions of this database wait on a lock: the requests a test put
 * in flight behind holdLocks have reached it. Waits for the condition, never for a fixed time.
 */
export async function waitForLockWaiters(db: Db, count = 1, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { rows } = await sql<{ n: number }>`
      select count(*)::int as n from pg_stat_activity
      where datname = current_database() and wait_event_type = 'Lock'`.execute(db);
    if ((rows[0]?.n ?? 0) >= count) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${count} session(s) to wait on a lock`);
    await pause(20);
  }
}
