// Expiries of prepaid credits, swept every few seconds: holds past their expiry are released and
// what is left of grants past theirs is removed, each as a ledger entry of the system
// (src/services/wallets.ts, sweepWallet). Balances and operations are exact before the sweep too:
// every wallet operation sweeps its wallet first, and reads count what is due as swept.
import { Counter } from 'prom-client';
import type { Db } from '../database/connection.js';
import type { Logger } from '../logger.js';
import { walletsWithExpiryDue } from '../queries/wallets.js';
import { sweepWallet } from '../services/wallets.js';
import { type RunningJob, startPeriodic } from './periodic.js';

const BATCH = 500;

const sweptTotal = new Counter({
  name: 'wallet_expiry_sweeps_total',
  help: 'Wallets whose expired holds and grants the worker swept into the ledger.',
});

export function startWalletExpiry(
  ctx: { db: Db; ownerDb: Db },
  logger: Logger,
  intervalMs = 5000,
): RunningJob {
  return startPeriodic(
    async (stopping) => {
      // A full batch means more may be due: go again at once.
      for (let swept = BATCH; swept === BATCH && !stopping();) {
        swept = 0;
        for (const due of await walletsWithExpiryDue(ctx.ownerDb, new Date(), BATCH)) {
          if (stopping()) return;
          await sweepWallet(ctx, due.tenant_id, due.wallet_id);
          sweptTotal.inc();
          swept++;
        }
      }
    },
    { intervalMs, logger, name: 'wallet expiry' },
  );
}
