// Keeps the MRR aggregates compact: five times a second, and twenty times while writes keep
// coming, the tenants with customers marked dirty by writes have them brought up to date
// (src/services/metrics.ts, compactMetrics), in batches. Reads are exact either way (they correct
// for what is still dirty); this keeps them cheap: a read pays for the customers written since
// the last round, so the rounds come often (at 50 writes/s, p95 of GET /analytics 45 -> 39 ms
// with 50 ms instead of 200 between busy rounds, one run each of bench/write-load.ts).
// A tenant whose compaction fails (its MRR past 2^53 cents: MrrRangeError) is logged and left
// waiting, retried after a pause that doubles with each failure in a row; the round goes on with
// the other tenants. A database that is away fails the round instead, as before (periodic.ts).
import { Counter } from 'prom-client';
import { tenantsToCompact } from '../analytics/mrr.js';
import type { Db } from '../database/connection.js';
import { isDatabaseUnavailable } from '../database/errors.js';
import type { Logger } from '../logger.js';
import { compactMetrics } from '../services/metrics.js';
import { MAX_BACKOFF_MS, type RunningJob, startPeriodic } from './periodic.js';

const BATCH = 1000;

const compactedTotal = new Counter({
  name: 'mrr_customers_compacted_total',
  help: 'Customers whose MRR series the worker brought up to date after writes marked them.',
});

export function startMrrCompaction(
  ctx: { db: Db; ownerDb: Db },
  logger: Logger,
  intervalMs = 200,
  busyIntervalMs = 50,
): RunningJob {
  /** Tenants whose compaction failed: failures in a row, and when to try again. */
  const failing = new Map<string, { failures: number; retryAt: number }>();
  return startPeriodic(
    async (stopping) => {
      const tenants = await tenantsToCompact(ctx.ownerDb, 100);
      // A tenant no longer waiting (rebuilt, or past the list's limit) starts afresh.
      for (const tenantId of failing.keys()) if (!tenants.includes(tenantId)) failing.delete(tenantId);
      // Busy when a tenant was compacted: one that keeps failing alone leaves the job idle.
      let busy = false;
      for (const tenantId of tenants) {
        const failed = failing.get(tenantId);
        if (failed && Date.now() < failed.retryAt) continue;
        try {
          for (let done = BATCH; done === BATCH && !stopping();) {
            done = await compactMetrics(ctx, tenantId, BATCH);
            if (done > 0) compactedTotal.inc(done);
          }
          failing.delete(tenantId);
          busy = true;
        } catch (err) {
          if (isDatabaseUnavailable(err)) throw err;
          const failures = (failed?.failures ?? 0) + 1;
          const pause = Math.min(intervalMs * 2 ** (failures - 1), Math.max(MAX_BACKOFF_MS, intervalMs));
          failing.set(tenantId, { failures, retryAt: Date.now() + pause });
          logger.warn(
            { tenantId, err, failedRounds: failures },
            `MRR compaction of a tenant failed; it waits ${pause} ms, the other tenants go on`,
          );
        }
        if (stopping()) break;
      }
      return busy;
    },
    { intervalMs, busyIntervalMs, logger, name: 'MRR compaction' },
  );
}
