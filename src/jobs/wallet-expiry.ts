// Expiries of prepaid credits, swept every few seconds: holds past their expiry are released and
// what is left of grants past theirs is removed, each as a ledger entry of the system
// (src/services/wallets.ts, sweepWallet). Balances and operations are exact before the sweep too:
// every wallet operation sweeps its wallet first, and reads count what is due as swept.
import { Counter } from 'prom-client';
import type { Db } from '../database/connection.js';
import type { Logger } from '../logger.js';
import { walletsWithExpiryDue } from '../queries/wallets.js';
import { sweepWallet } from '../services/wallets.js';

const BATCH = 500;

const sweptTotal = new Counter({
  name: 'wallet_expiry_sweeps_total',
  help: 'Wallets whose expired holds and grants the worker swept into the ledger.',
});

export interface RunningWalletExpiry {
  stop(): Promise<void>;
}

export function startWalletExpiry(
  ctx: { db: Db; ownerDb: Db },
  logger: Logger,
  intervalMs = 5000,
): RunningWalletExpiry {
  let stopping = false;
  let timer: NodeJS.Timeout | undefined;
  let wake: (() => void) | undefined;

  /** One pass over the wallets with something due; how many were swept. */
  async function round(): Promise<number> {
    let swept = 0;
    for (const due of await walletsWithExpiryDue(ctx.ownerDb, new Date(), BATCH)) {
      if (stopping) break;
      await sweepWallet(ctx, due.tenant_id, due.wallet_id);
      sweptTotal.inc();
      swept++;
    }
    return swept;
  }

  const loop = (async () => {
    while (!stopping) {
      try {
        // A full batch means more may be due: go again at once.
        while ((await round()) === BATCH && !stopping);
      } catch (error) {
        logger.warn({ err: error }, 'wallet expiry failed; retrying in a moment');
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
        timer = setTimeout(resolve, intervalMs);
      });
    }
  })();

  return {
    async stop() {
      stopping = true;
      clearTimeout(timer);
      wake?.();
      await loop;
    },
  };
}
