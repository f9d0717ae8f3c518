// Holds row locks in a transaction of the owner's until released, so a test can put requests in
// flight behind them at a known point.
import type { RawBuilder } from 'kysely';
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
